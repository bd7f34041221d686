"""Kubernetes ``Status`` failure objects and the exception that carries them to the HTTP layer.

Messages, reasons and codes follow what a real kube-apiserver answers (k8s.io/apimachinery
``pkg/api/errors``), because clients such as lightkube surface ``status.message``/``status.code`` verbatim
and HA code branches on the code (409 conflict, 404 not found, 410 expired).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._types import JsonObject

# Reason strings of metav1.StatusReason, by HTTP code, used when a fault names only a code.
_REASON_BY_CODE: dict[int, str] = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    413: "RequestEntityTooLarge",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


def reason_for_code(code: int) -> str:
    """The metav1.StatusReason a real apiserver uses for an HTTP code ("" when it has none)."""
    return _REASON_BY_CODE.get(code, "")


@dataclass(frozen=True)
class Cause:
    """One ``details.causes[]`` entry of an Invalid status (a field validation error)."""

    reason: str
    message: str
    field: str

    def to_json(self) -> JsonObject:
        return {"reason": self.reason, "message": self.message, "field": self.field}

    def full_message(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


def status_object(
    code: int,
    message: str,
    reason: str | None = None,
    details: JsonObject | None = None,
    *,
    success: bool = False,
) -> JsonObject:
    """A ``v1.Status`` object as the apiserver serialises it (empty fields omitted)."""
    status: JsonObject = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success" if success else "Failure",
    }
    if message:
        status["message"] = message
    if reason is None:
        reason = reason_for_code(code)
    if reason:
        status["reason"] = reason
    if details:
        status["details"] = details
    status["code"] = code
    return status


class ApiStatusError(Exception):
    """A request failed; ``status`` is the ``v1.Status`` body to send with HTTP ``code``."""

    def __init__(self, status: JsonObject, headers: list[tuple[str, str]] | None = None) -> None:
        super().__init__(str(status.get("message", "")))
        self.status = status
        self.code: int = int(status["code"])
        self.headers = headers or []

    @classmethod
    def of(
        cls,
        code: int,
        message: str,
        reason: str | None = None,
        details: JsonObject | None = None,
    ) -> ApiStatusError:
        return cls(status_object(code, message, reason, details))


def _details(qualified_kind: str, name: str, group: str, **extra: Any) -> JsonObject:
    details: JsonObject = {}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    details["kind"] = qualified_kind
    details.update(extra)
    return details


def not_found(plural: str, group: str, name: str) -> ApiStatusError:
    qualified = f"{plural}.{group}" if group else plural
    return ApiStatusError.of(
        404, f'{qualified} "{name}" not found', "NotFound", _details(plural, name, group)
    )


def already_exists(plural: str, group: str, name: str) -> ApiStatusError:
    qualified = f"{plural}.{group}" if group else plural
    return ApiStatusError.of(
        409, f'{qualified} "{name}" already exists', "AlreadyExists", _details(plural, name, group)
    )


# The apiserver's wording for an optimistic-concurrency failure (storage.NewResourceVersionConflictsError /
# registry OptimisticLockErrorMsg); client code and humans both recognise this sentence.
OPTIMISTIC_LOCK_MESSAGE = (
    "the object has been modified; please apply your changes to the latest version and try again"
)


def conflict(plural: str, group: str, name: str, why: str) -> ApiStatusError:
    qualified = f"{plural}.{group}" if group else plural
    return ApiStatusError.of(
        409,
        f'Operation cannot be fulfilled on {qualified} "{name}": {why}',
        "Conflict",
        _details(plural, name, group),
    )


def invalid(kind: str, group: str, name: str, causes: list[Cause]) -> ApiStatusError:
    qualified_kind = f"{kind}.{group}" if group else kind
    if len(causes) == 1:
        summary = causes[0].full_message()
    else:
        summary = "[" + ", ".join(c.full_message() for c in causes) + "]"
    details = _details(kind, name, group, causes=[c.to_json() for c in causes])
    return ApiStatusError.of(422, f'{qualified_kind} "{name}" is invalid: {summary}', "Invalid", details)


def bad_request(message: str) -> ApiStatusError:
    return ApiStatusError.of(400, message, "BadRequest")


def internal_error(message: str) -> ApiStatusError:
    # registry errors that are plain Go errors reach the client as 500 with no reason
    # (e.g. "resourceVersion should not be set on objects to be created").
    return ApiStatusError(status_object(500, message, reason=""))


def expired(message: str) -> ApiStatusError:
    return ApiStatusError.of(410, message, "Expired")


def too_large_resource_version(requested: int, current: int) -> ApiStatusError:
    # storage.NewTooLargeResourceVersionError: a 504 Timeout carrying a ResourceVersionTooLarge cause.
    return ApiStatusError.of(
        504,
        f"Timeout: Too large resource version: {requested}, current: {current}",
        "Timeout",
        {
            "causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
            "retryAfterSeconds": 1,
        },
    )


def method_not_allowed() -> ApiStatusError:
    return ApiStatusError.of(
        405, "the server does not allow this method on the requested resource", "MethodNotAllowed"
    )


def unknown_path() -> ApiStatusError:
    return ApiStatusError.of(404, "the server could not find the requested resource", "NotFound", {})


def unauthorized() -> ApiStatusError:
    return ApiStatusError.of(401, "Unauthorized", "Unauthorized")


def unsupported_media_type(content_type: str, accepted: list[str]) -> ApiStatusError:
    return ApiStatusError.of(
        415,
        f"the body of the request was in an unknown format ({content_type or 'no content type'}) "
        f"- accepted media types include: {', '.join(accepted)}",
        "UnsupportedMediaType",
    )


def not_acceptable(accepted: list[str]) -> ApiStatusError:
    """406: no media type of the request's ``Accept`` header can be served (apiserver's NewNotAcceptableError)."""
    return ApiStatusError.of(
        406, f"only the following media types are accepted: {', '.join(accepted)}", "NotAcceptable"
    )
