"""The ASGI application: Kubernetes REST paths for ConfigMaps and Leases over :class:`ObjectStore`.

Plain ASGI (no framework) so the server controls exactly what goes on the wire: ``Content-Type`` is exactly
``application/json`` (lightkube only decodes a Status body when it is), watch streams are chunked
newline-delimited JSON, and a dropped watch can close the connection mid-body.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
import math
import re
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from . import _errors as errors
from ._errors import ApiStatusError
from ._faults import FailureRule, FaultState, WatchDrop
from ._resources import RESOURCES, ResourceType
from ._selectors import (
    FieldRequirement,
    FieldSelector,
    LabelSelector,
    parse_field_selector,
    parse_label_selector,
)
from ._store import ObjectStore, PatchType, Watch
from ._types import JsonObject

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_ROUTE = re.compile(
    r"^/(?:api/(?P<core_version>v1)|apis/(?P<group>[^/]+)/(?P<version>[^/]+))"
    r"(?P<watch_prefix>/watch)?"
    r"(?:/namespaces/(?P<namespace>[^/]+))?"
    r"/(?P<plural>[^/]+)(?:/(?P<name>[^/]+))?(?P<subresource>/.*)?$"
)
_PATCH_TYPES: dict[str, PatchType] = {
    "application/merge-patch+json": "merge",
    "application/strategic-merge-patch+json": "strategic",
    "application/json-patch+json": "json",
}
_ACCEPTED_PATCH_TYPES = [*_PATCH_TYPES, "application/apply-patch+yaml"]
_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")
_SERVER_VERSION = {
    "major": "1",
    "minor": "31",
    "gitVersion": "v1.31.0+standby-test",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2024-08-13T00:00:00Z",
    "goVersion": "go1.22.5",
    "compiler": "gc",
    "platform": "linux/amd64",
}

# Set in a request's task when the handler deliberately drops its connection mid-stream, so the
# "returned without completing response" error uvicorn logs for it is recognised as intended.
_DELIBERATE_RESET: contextvars.ContextVar[bool] = contextvars.ContextVar("_deliberate_reset", default=False)


class _SuppressDeliberateReset(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (_DELIBERATE_RESET.get() and "without completing response" in str(record.msg))


_RESET_FILTER = _SuppressDeliberateReset()


def install_reset_log_filter() -> None:
    """Keep uvicorn from logging deliberately dropped watch connections as application errors."""
    logger = logging.getLogger("uvicorn.error")
    if _RESET_FILTER not in logger.filters:
        logger.addFilter(_RESET_FILTER)


@dataclass(frozen=True)
class ServerSettings:
    """Behaviour knobs of the app that are fixed for a server's lifetime."""

    #: bearer token clients must present (None: no authentication)
    token: str | None = None
    #: watch length when the client gives no ``timeoutSeconds`` (kube-apiserver: --min-request-timeout 1800)
    watch_timeout: float = 1800.0
    #: interval of BOOKMARK events on watches that allow them (kube-apiserver: about a minute)
    bookmark_interval: float = 60.0
    #: how long a request for a future resourceVersion waits before 504 (kube-apiserver: 3 s)
    too_large_resource_version_wait: float = 3.0
    #: largest request body (kube-apiserver: 3 MiB)
    max_body_bytes: int = 3 * 1024 * 1024
    #: how many request records :attr:`KubernetesApiApp.requests` keeps
    request_log_size: int = 1000


@dataclass(frozen=True)
class RequestRecord:
    """One API request as the server answered it (for assertions such as "no PUT was sent")."""

    method: str
    path: str
    query: str
    status: int
    watch: bool
    #: the request's ``Accept`` header ("" when absent), e.g. to tell metadata-only reads from full ones
    accept: str = ""


@dataclass(frozen=True)
class _Route:
    resource: ResourceType
    namespace: str | None
    name: str | None
    watch_path: bool


class _ClientGone(Exception):
    pass


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


PARTIAL_OBJECT_METADATA = "PartialObjectMetadata"
PARTIAL_OBJECT_METADATA_LIST = "PartialObjectMetadataList"
_META_GROUP = "meta.k8s.io"
_META_VERSIONS = ("v1", "v1beta1")


def _negotiate(accept: str | None, partial_kind: str) -> str | None:
    """The representation an ``Accept`` header asks for: None for the object itself, or the apiVersion of
    ``partial_kind`` (``application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1``: metadata only).

    The first alternative that can be served wins, as in the apiserver's content negotiation; 406 when none
    can (e.g. only ``as=Table``, or ``as=PartialObjectMetadata`` for a list). Media types are not checked
    beyond that: the server answers JSON whatever else is asked (see the package docstring).
    """
    if not accept or not accept.strip():
        return None
    for alternative in accept.split(","):
        parts = [part.strip() for part in alternative.split(";")]
        parameters = dict(
            (key.strip().lower(), value.strip()) for key, _, value in (p.partition("=") for p in parts[1:])
        )
        parameters.pop("q", None)
        wanted = parameters.get("as")
        if wanted is None:
            return None
        group, version = parameters.get("g", ""), parameters.get("v", "")
        if wanted == partial_kind and group == _META_GROUP and version in _META_VERSIONS:
            return f"{group}/{version}"
    raise errors.not_acceptable(
        [
            "application/json",
            *(f"application/json;as={partial_kind};g={_META_GROUP};v={v}" for v in _META_VERSIONS),
        ]
    )


def _partial(obj: JsonObject, api_version: str) -> JsonObject:
    """An object as ``PartialObjectMetadata``: its metadata only (the apiserver's metadata-only representation)."""
    return {"kind": PARTIAL_OBJECT_METADATA, "apiVersion": api_version, "metadata": obj["metadata"]}


def _param_bool(params: dict[str, str], name: str) -> bool | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise errors.bad_request(f'{name}: Invalid value: "{value}": must be a boolean')


def _param_int(params: dict[str, str], name: str) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except ValueError:
        raise errors.bad_request(f'{name}: Invalid value: "{value}": must be an integer') from None
    if number < 0:
        raise errors.bad_request(f'{name}: Invalid value: "{value}": must be greater than or equal to 0')
    return number


def _dry_run(values: list[str]) -> bool:
    for value in values:
        if value != "All":
            raise errors.bad_request(f'dryRun: Unsupported value: "{value}": supported values: "All"')
    return bool(values)


def _field_validation(params: dict[str, str]) -> str:
    value = params.get("fieldValidation", "") or "Warn"
    if value not in ("Ignore", "Warn", "Strict"):
        raise errors.bad_request(
            f'fieldValidation: Unsupported value: "{value}": supported values: "Ignore", "Strict", "Warn"'
        )
    return value


class KubernetesApiApp:
    """ASGI callable serving the Kubernetes API subset; see the package docstring for what is modelled."""

    def __init__(self, store: ObjectStore, faults: FaultState, settings: ServerSettings) -> None:
        self.store = store
        self.faults = faults
        self.settings = settings
        self.requests: deque[RequestRecord] = deque(maxlen=settings.request_log_size)
        self._shutting_down = False
        self._shutdown = asyncio.Event()

    def begin_shutdown(self) -> None:
        """End watch streams and release paused requests so the HTTP server can stop promptly."""
        self._shutting_down = True
        self._shutdown.set()
        self.store.finish_watches("end")
        self.faults.resume()

    # ------------------------------------------------------------------ ASGI entry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        method: str = scope["method"]
        path: str = scope["path"]
        raw_query: str = scope.get("query_string", b"").decode("latin-1")
        multi = parse_qs(raw_query, keep_blank_values=True)
        params = {k: v[-1] for k, v in multi.items()}
        if path.startswith("/_test/"):
            await self._admin(method, path, receive, send)
            return
        watch = False
        status = 500
        try:
            try:
                watch = _param_bool(params, "watch") is True or "/watch/" in path
            except ApiStatusError:
                watch = False
            status = await self._serve(scope, method, path, params, multi, receive, send)
        except ApiStatusError as error:
            status = error.code
            await self._respond(send, error.code, error.status, error.headers)
        except _ClientGone:
            status = 499
        accept = self._header(scope, b"accept") or ""
        self.requests.append(RequestRecord(method, path, raw_query, status, watch, accept))

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        for _ in range(2):
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _respond(
        self,
        send: Send,
        code: int,
        body: Any,
        headers: list[tuple[str, str]] | None = None,
        *,
        content_type: str = "application/json",
    ) -> None:
        payload = body if isinstance(body, bytes) else _json_bytes(body)
        raw_headers = [
            (b"content-type", content_type.encode()),
            (b"content-length", str(len(payload)).encode()),
            (b"cache-control", b"no-cache, private"),
        ]
        raw_headers.extend((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers or [])
        await send({"type": "http.response.start", "status": code, "headers": raw_headers})
        await send({"type": "http.response.body", "body": payload, "more_body": False})

    async def _read_body(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.settings.max_body_bytes:
                raise ApiStatusError.of(
                    413,
                    f"Request entity too large: limit is {self.settings.max_body_bytes}",
                    "RequestEntityTooLarge",
                )
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    @staticmethod
    def _content_type(scope: Scope) -> str:
        for key, value in scope.get("headers", []):
            if key.lower() == b"content-type":
                return str(value.decode("latin-1").split(";")[0].strip().lower())
        return ""

    @staticmethod
    def _header(scope: Scope, name: bytes) -> str | None:
        for key, value in scope.get("headers", []):
            if key.lower() == name:
                return str(value.decode("latin-1"))
        return None

    async def _read_json(self, scope: Scope, receive: Receive, *, allow_empty: bool = False) -> Any:
        body = await self._read_body(receive)
        if not body.strip():
            if allow_empty:
                return None
            raise errors.bad_request(
                "couldn't get version/kind; json parse error: unexpected end of JSON input"
            )
        try:
            return json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise errors.bad_request(f"couldn't get version/kind; json parse error: {error}") from None

    # ------------------------------------------------------------------ routing

    def _route(self, path: str) -> _Route:
        match = _ROUTE.match(path)
        if match is None:
            raise errors.unknown_path()
        if match.group("subresource"):
            raise errors.unknown_path()
        if match.group("core_version"):
            key = ("", match.group("core_version"), match.group("plural"))
        else:
            key = (match.group("group"), match.group("version"), match.group("plural"))
        resource = RESOURCES.get(key)
        if resource is None:
            raise errors.unknown_path()
        namespace = match.group("namespace")
        name = match.group("name")
        if name is not None and namespace is None:
            # both kinds are namespaced: /api/v1/configmaps/<x> is not a path
            raise errors.unknown_path()
        return _Route(resource, namespace, name, bool(match.group("watch_prefix")))

    async def _serve(
        self,
        scope: Scope,
        method: str,
        path: str,
        params: dict[str, str],
        multi: dict[str, list[str]],
        receive: Receive,
        send: Send,
    ) -> int:
        discovery = self._discovery(path, scope)
        if discovery is not None:
            if method != "GET":
                raise errors.method_not_allowed()
            if isinstance(discovery, bytes):
                await self._respond(send, 200, discovery, content_type="text/plain; charset=utf-8")
            else:
                await self._respond(send, 200, discovery)
            return 200
        route = self._route(path)
        watch = route.watch_path or _param_bool(params, "watch") is True

        # faults come first, as a sick apiserver or proxy would answer before looking at the request
        await self.faults.wait_unpaused()
        if self.faults.latency > 0:
            # injected latency, cut short when the server stops so shutdown stays prompt
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._shutdown.wait(), timeout=self.faults.latency)
        rule = self.faults.take_failure(method, path, watch)
        if rule is not None:
            await self._fail(send, rule, method, path)
            return rule.code
        self._authenticate(scope)

        resource, namespace, name = route.resource, route.namespace, route.name
        if watch:
            if method != "GET":
                raise errors.method_not_allowed()
            await self._watch(receive, send, resource, namespace, name, params)
            return 200
        if name is None:
            if method == "GET":
                return await self._list(scope, send, resource, namespace, params)
            if method == "POST" and namespace is not None:
                return await self._create(scope, receive, send, resource, namespace, params, multi)
            if method == "DELETE":
                return await self._delete_collection(scope, receive, send, resource, namespace, params, multi)
            raise errors.method_not_allowed()
        assert namespace is not None
        if method == "GET":
            partial = _negotiate(self._header(scope, b"accept"), PARTIAL_OBJECT_METADATA)
            obj = self.store.get(resource, namespace, name)
            await self._respond(send, 200, obj if partial is None else _partial(obj, partial))
            return 200
        if method == "PUT":
            return await self._replace(scope, receive, send, resource, namespace, name, params, multi)
        if method == "PATCH":
            return await self._patch(scope, receive, send, resource, namespace, name, params, multi)
        if method == "DELETE":
            return await self._delete(scope, receive, send, resource, namespace, name, params, multi)
        raise errors.method_not_allowed()

    def _authenticate(self, scope: Scope) -> None:
        if self.settings.token is None:
            return
        header = self._header(scope, b"authorization")
        if header != f"Bearer {self.settings.token}":
            raise errors.unauthorized()

    async def _fail(self, send: Send, rule: FailureRule, method: str, path: str) -> None:
        headers: list[tuple[str, str]] = []
        if rule.retry_after_seconds is not None:
            headers.append(("Retry-After", str(rule.retry_after_seconds)))
        await self._respond(send, rule.code, rule.status(method, path), headers)

    def _discovery(self, path: str, scope: Scope) -> JsonObject | bytes | None:
        if path in ("/healthz", "/livez", "/readyz"):
            return b"ok"
        if path == "/version":
            return dict(_SERVER_VERSION)
        if path == "/api":
            server = scope.get("server") or ("127.0.0.1", 0)
            return {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [
                    {"clientCIDR": "0.0.0.0/0", "serverAddress": f"{server[0]}:{server[1]}"}
                ],
            }
        groups = sorted({r.group for r in RESOURCES.values() if r.group})
        if path == "/apis":
            return {
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [self._api_group(g) for g in groups],
            }
        for group in groups:
            if path == f"/apis/{group}":
                return {"kind": "APIGroup", "apiVersion": "v1", **self._api_group(group)}
        for prefix in sorted({r.api_prefix for r in RESOURCES.values()}):
            if path == prefix:
                kinds = [r for r in RESOURCES.values() if r.api_prefix == prefix]
                return {
                    "kind": "APIResourceList",
                    "apiVersion": "v1",
                    "groupVersion": kinds[0].api_version,
                    "resources": [self._api_resource(r) for r in kinds],
                }
        return None

    @staticmethod
    def _api_group(group: str) -> JsonObject:
        versions = sorted({r.version for r in RESOURCES.values() if r.group == group})
        entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {"name": group, "versions": entries, "preferredVersion": entries[0]}

    @staticmethod
    def _api_resource(resource: ResourceType) -> JsonObject:
        return {
            "name": resource.plural,
            "singularName": resource.kind.lower(),
            "namespaced": True,
            "kind": resource.kind,
            "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
        }

    # ------------------------------------------------------------------ verbs

    def _warnings(self, unknown: list[str], params: dict[str, str]) -> list[tuple[str, str]]:
        mode = _field_validation(params)
        if not unknown or mode == "Ignore":
            return []
        return [("Warning", f'299 - "unknown field \\"{path}\\""') for path in unknown]

    def _strict(self, resource: ResourceType, unknown: list[str], params: dict[str, str]) -> None:
        if unknown and _field_validation(params) == "Strict":
            fields = ", ".join(f'unknown field "{p}"' for p in unknown)
            raise errors.bad_request(
                f'{resource.kind} in version "{resource.api_version}" cannot be handled as a '
                f"{resource.kind}: strict decoding error: {fields}"
            )

    def _check_write_content_type(self, scope: Scope) -> None:
        content_type = self._content_type(scope)
        if content_type not in ("", "application/json", "*/*"):
            raise errors.unsupported_media_type(content_type, ["application/json", "application/yaml"])

    async def _create(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        resource: ResourceType,
        namespace: str,
        params: dict[str, str],
        multi: dict[str, list[str]],
    ) -> int:
        self._check_write_content_type(scope)
        _field_validation(params)
        dry_run = _dry_run(multi.get("dryRun", []))
        body = await self._read_json(scope, receive)
        if isinstance(body, dict):
            self._strict(resource, resource.decode(body)[1], params)
        obj, unknown = self.store.create(resource, namespace, body, dry_run=dry_run)
        await self._respond(send, 201, obj, self._warnings(unknown, params))
        return 201

    async def _replace(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        resource: ResourceType,
        namespace: str,
        name: str,
        params: dict[str, str],
        multi: dict[str, list[str]],
    ) -> int:
        self._check_write_content_type(scope)
        _field_validation(params)
        dry_run = _dry_run(multi.get("dryRun", []))
        body = await self._read_json(scope, receive)
        if isinstance(body, dict):
            self._strict(resource, resource.decode(body)[1], params)
        obj, unknown = self.store.replace(resource, namespace, name, body, dry_run=dry_run)
        await self._respond(send, 200, obj, self._warnings(unknown, params))
        return 200

    async def _patch(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        resource: ResourceType,
        namespace: str,
        name: str,
        params: dict[str, str],
        multi: dict[str, list[str]],
    ) -> int:
        content_type = self._content_type(scope)
        patch_type = _PATCH_TYPES.get(content_type)
        if patch_type is None:
            if content_type == "application/apply-patch+yaml":
                raise errors.unsupported_media_type(
                    content_type + " (server-side apply is not modelled by the standby test server)",
                    list(_PATCH_TYPES),
                )
            raise errors.unsupported_media_type(content_type, _ACCEPTED_PATCH_TYPES)
        _field_validation(params)
        dry_run = _dry_run(multi.get("dryRun", []))
        body = await self._read_body(receive)
        try:
            patch = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise errors.bad_request(f"error decoding patch: {error}") from None
        if _field_validation(params) == "Strict":
            # reject unknown fields before anything is written
            _, unknown = self.store.patch(resource, namespace, name, patch_type, patch, dry_run=True)
            self._strict(resource, unknown, params)
        obj, unknown = self.store.patch(resource, namespace, name, patch_type, patch, dry_run=dry_run)
        await self._respond(send, 200, obj, self._warnings(unknown, params))
        return 200

    async def _delete_options(
        self, scope: Scope, receive: Receive, params: dict[str, str], multi: dict[str, list[str]]
    ) -> tuple[str | None, str | None, bool]:
        options = await self._read_json(scope, receive, allow_empty=True)
        dry_run_values = list(multi.get("dryRun", []))
        preconditions: JsonObject = {}
        propagation = params.get("propagationPolicy")
        if options is not None:
            if not isinstance(options, dict):
                raise errors.bad_request("DeleteOptions must be a JSON object")
            raw_preconditions = options.get("preconditions") or {}
            if not isinstance(raw_preconditions, dict):
                raise errors.bad_request("preconditions must be a JSON object")
            preconditions = raw_preconditions
            dry = options.get("dryRun") or []
            if not isinstance(dry, list):
                raise errors.bad_request("dryRun must be a list of strings")
            dry_run_values.extend(str(d) for d in dry)
            propagation = options.get("propagationPolicy") or propagation
        if propagation not in (None, "", "Orphan", "Background", "Foreground"):
            raise errors.bad_request(
                f'propagationPolicy: Unsupported value: "{propagation}": supported values: '
                '"Foreground", "Background", "Orphan", "nil"'
            )
        _param_int(params, "gracePeriodSeconds")
        rv = preconditions.get("resourceVersion")
        uid = preconditions.get("uid")
        return (str(rv) if rv else None, str(uid) if uid else None, _dry_run(dry_run_values))

    async def _delete(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        resource: ResourceType,
        namespace: str,
        name: str,
        params: dict[str, str],
        multi: dict[str, list[str]],
    ) -> int:
        rv, uid, dry_run = await self._delete_options(scope, receive, params, multi)
        deleted = self.store.delete(resource, namespace, name, resource_version=rv, uid=uid, dry_run=dry_run)
        details: JsonObject = {"name": name}
        if resource.group:
            details["group"] = resource.group
        details["kind"] = resource.plural
        details["uid"] = deleted["metadata"]["uid"]
        await self._respond(send, 200, errors.status_object(200, "", "", details, success=True))
        return 200

    def _selectors(self, params: dict[str, str]) -> tuple[LabelSelector, FieldSelector]:
        return (
            parse_label_selector(params.get("labelSelector", "")),
            parse_field_selector(params.get("fieldSelector", "")),
        )

    async def _delete_collection(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        resource: ResourceType,
        namespace: str | None,
        params: dict[str, str],
        multi: dict[str, list[str]],
    ) -> int:
        if namespace is None:
            raise errors.method_not_allowed()
        labels, fields = self._selectors(params)
        _, _, dry_run = await self._delete_options(scope, receive, params, multi)
        deleted = self.store.delete_collection(
            resource, namespace, labels=labels, fields=fields, dry_run=dry_run
        )
        items = [{k: v for k, v in obj.items() if k not in ("kind", "apiVersion")} for obj in deleted]
        body = {
            "kind": resource.list_kind,
            "apiVersion": resource.api_version,
            "metadata": {"resourceVersion": str(self.store.resource_version)},
            "items": items,
        }
        await self._respond(send, 200, body)
        return 200

    async def _await_resource_version(self, value: str | None) -> None:
        """A request for a resourceVersion the store has not reached waits a little, then 504 (as real)."""
        if value in (None, "", "0"):
            return
        assert value is not None
        if not value.isdigit():
            return  # the store reports the malformed value
        requested = int(value)
        if requested > self.store.resource_version:
            wait = self.settings.too_large_resource_version_wait
            if not await self.store.wait_for_resource_version(requested, wait):
                raise errors.too_large_resource_version(requested, self.store.resource_version)

    async def _list(
        self,
        scope: Scope,
        send: Send,
        resource: ResourceType,
        namespace: str | None,
        params: dict[str, str],
    ) -> int:
        partial = _negotiate(self._header(scope, b"accept"), PARTIAL_OBJECT_METADATA_LIST)
        labels, fields = self._selectors(params)
        limit = _param_int(params, "limit")
        await self._await_resource_version(params.get("resourceVersion"))
        result = self.store.list_objects(
            resource,
            namespace,
            labels=labels,
            fields=fields,
            resource_version=params.get("resourceVersion"),
            resource_version_match=params.get("resourceVersionMatch"),
            limit=limit,
            continue_token=params.get("continue") or None,
        )
        metadata: JsonObject = {"resourceVersion": str(result.resource_version)}
        if result.continue_token is not None:
            metadata["continue"] = result.continue_token
        if result.remaining_item_count is not None:
            metadata["remainingItemCount"] = result.remaining_item_count
        body = {
            "kind": resource.list_kind,
            "apiVersion": resource.api_version,
            "metadata": metadata,
            "items": result.items,
        }
        if partial is not None:
            body = {
                "kind": PARTIAL_OBJECT_METADATA_LIST,
                "apiVersion": partial,
                "metadata": metadata,
                "items": [_partial(item, partial) for item in result.items],
            }
        await self._respond(send, 200, body)
        return 200

    # ------------------------------------------------------------------ watch

    async def _watch(
        self,
        receive: Receive,
        send: Send,
        resource: ResourceType,
        namespace: str | None,
        name: str | None,
        params: dict[str, str],
    ) -> None:
        labels, fields = self._selectors(params)
        if name is not None:
            fields = FieldSelector((*fields.requirements, FieldRequirement("metadata.name", True, name)))
        timeout_param = _param_int(params, "timeoutSeconds")
        timeout = float(timeout_param) if timeout_param else self.settings.watch_timeout
        allow_bookmarks = _param_bool(params, "allowWatchBookmarks") is True
        send_initial_events = _param_bool(params, "sendInitialEvents")
        resource_version = params.get("resourceVersion")
        if send_initial_events is not None:
            causes: list[errors.Cause] = []
            if params.get("resourceVersionMatch") != "NotOlderThan":
                causes.append(
                    errors.Cause(
                        "FieldValueForbidden",
                        "Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
                        "resourceVersionMatch",
                    )
                )
            if send_initial_events and not allow_bookmarks:
                causes.append(
                    errors.Cause(
                        "FieldValueForbidden",
                        "Forbidden: sendInitialEvents requires setting allowWatchBookmarks to true",
                        "allowWatchBookmarks",
                    )
                )
            if causes:
                raise errors.invalid("ListOptions", "meta.k8s.io", "", causes)
        error_status: JsonObject | None = None
        watch: Watch | None = None
        try:
            await self._await_resource_version(resource_version)
        except ApiStatusError as error:
            # past validation, the apiserver reports watch failures as an ERROR event, not an HTTP code
            error_status = error.status
        if error_status is None:
            if self._shutting_down:
                error_status = errors.ApiStatusError.of(
                    503, "the server is shutting down", "ServiceUnavailable"
                ).status
            else:
                watch = self.store.open_watch(
                    resource,
                    namespace,
                    labels=labels,
                    fields=fields,
                    resource_version=resource_version,
                    send_initial_events=bool(send_initial_events),
                )
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"cache-control", b"no-cache, private")],
            }
        )
        if watch is None:
            assert error_status is not None
            await self._send_event(send, "ERROR", error_status)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        disconnect = asyncio.create_task(self._await_disconnect(receive, watch))
        try:
            completed = await self._pump(send, watch, resource, timeout, allow_bookmarks)
        finally:
            self.store.close_watch(watch)
            disconnect.cancel()
            try:
                await disconnect
            except asyncio.CancelledError:
                pass
        if completed:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        else:
            # Return with the body unfinished: uvicorn closes the connection, the client sees an
            # incomplete chunked body, as when an apiserver dies mid-watch.
            _DELIBERATE_RESET.set(True)

    async def _pump(
        self, send: Send, watch: Watch, resource: ResourceType, timeout: float, allow_bookmarks: bool
    ) -> bool:
        """Send the watch's events until it ends; False when the connection must be dropped."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        interval = self.settings.bookmark_interval
        next_bookmark = loop.time() + interval if allow_bookmarks else math.inf
        while True:
            if watch.reset_requested():
                return False
            if watch.pending:
                await self.faults.wait_unpaused()
                if watch.reset_requested():
                    return False
                event_type, obj = watch.pending.popleft()
                await self._send_event(send, event_type, obj)
                continue
            if watch.end == "end":
                return True
            now = loop.time()
            if now >= deadline:
                return True
            if now >= next_bookmark:
                await self._send_event(send, "BOOKMARK", self.store.bookmark(resource))
                next_bookmark = now + interval
                continue
            await watch.wait(min(deadline, next_bookmark) - now)

    @staticmethod
    async def _send_event(send: Send, event_type: str, obj: JsonObject) -> None:
        line = _json_bytes({"type": event_type, "object": obj}) + b"\n"
        await send({"type": "http.response.body", "body": line, "more_body": True})

    @staticmethod
    async def _await_disconnect(receive: Receive, watch: Watch) -> None:
        # A GET has no body: after the (empty) request message the next one is the disconnect.
        for _ in range(1000):
            message = await receive()
            if message["type"] == "http.disconnect":
                watch.finish("end")
                return

    # ------------------------------------------------------------------ admin

    async def _admin(self, method: str, path: str, receive: Receive, send: Send) -> None:
        try:
            if path != "/_test/faults":
                raise errors.unknown_path()
            if method == "GET":
                await self._respond(send, 200, self.faults.snapshot())
                return
            if method != "POST":
                raise errors.method_not_allowed()
            body = await self._read_body(receive)
            try:
                command = json.loads(body or b"{}")
            except json.JSONDecodeError as error:
                raise errors.bad_request(f"fault command is not JSON: {error}") from None
            result = self._apply_fault_command(command)
            await self._respond(send, 200, {**self.faults.snapshot(), "result": result})
        except ApiStatusError as error:
            await self._respond(send, error.code, error.status)
        except _ClientGone:
            return

    def _apply_fault_command(self, command: Any) -> Any:
        """Run one ``POST /_test/faults`` command: ``{"action": ..., ...arguments}``."""
        if not isinstance(command, dict) or not isinstance(command.get("action"), str):
            raise errors.bad_request('a fault command is a JSON object with an "action" string')
        action = command["action"]
        args = {k: v for k, v in command.items() if k != "action"}
        try:
            if action == "set_latency":
                seconds = float(args["seconds"])
                if seconds < 0:
                    raise ValueError("seconds must be >= 0")
                self.faults.latency = seconds
                return None
            if action == "fail_next":
                rule = FailureRule(
                    code=int(args.get("code", 500)),
                    remaining=int(args.get("count", 1)),
                    method=args.get("method"),
                    path=args.get("path"),
                    watch=args.get("watch"),
                    reason=args.get("reason"),
                    message=args.get("message"),
                    retry_after_seconds=args.get("retry_after_seconds"),
                )
                self.faults.rules.append(rule)
                return None
            if action == "clear_failures":
                self.faults.rules.clear()
                return None
            if action == "pause":
                self.faults.pause(float(args.get("timeout", 30.0)))
                return None
            if action == "resume":
                self.faults.resume()
                return None
            if action == "drop_watches":
                how: WatchDrop = args.get("how", "reset")
                if how == "expire":
                    return self.store.expire_watches()
                if how in ("reset", "end"):
                    return self.store.finish_watches(how)
                raise ValueError(f"how must be 'reset', 'end' or 'expire', got {how!r}")
            if action == "set_history_limit":
                self.store.set_history_limit(int(args["limit"]))
                return None
            if action == "compact_history":
                self.store.compact()
                return None
            if action == "reset":
                self.faults.reset()
                return None
        except (KeyError, TypeError, ValueError) as error:
            raise errors.bad_request(f"fault command {action!r} has bad arguments: {error}") from None
        raise errors.bad_request(
            f"unknown fault action {action!r}; use one of set_latency, fail_next, clear_failures, pause, resume, "
            "drop_watches, set_history_limit, compact_history, reset"
        )
