"""Typed errors of the internal RPC, each mapped to one HTTP status so both sides agree."""

from __future__ import annotations


class RpcError(Exception):
    """An RPC failed on the remote side (or could not be delivered). ``status`` is the HTTP status used."""

    status: int = 500

    def __init__(self, message: str, *, remote_type: str | None = None) -> None:
        super().__init__(message)
        self.remote_type = remote_type or type(self).__name__


class FencingTokenError(RpcError):
    """Flink's ``FencingTokenException``: the call's fencing token is not the endpoint's (stale or unset)."""

    status = 409


class RpcNotFoundError(RpcError):
    """The thing asked for does not exist (e.g. an unknown job: Flink's ``FlinkJobNotFoundException``)."""

    status = 404


class RpcEndpointNotFoundError(RpcNotFoundError):
    """No endpoint of that name runs in the addressed process."""


class RpcInvalidCallError(RpcError):
    """Unknown method or arguments that do not fit it."""

    status = 400


class RpcAuthenticationError(RpcError):
    """The shared token (``security.auth.token``) is missing or wrong."""

    status = 401


class RpcConnectionError(RpcError):
    """The remote process could not be reached or did not answer in time."""

    status = 503


class RpcRejectedError(RpcError):
    """The endpoint refused the request for a reason it explains (e.g. a duplicate job, not enough slots)."""

    status = 422


_BY_NAME: dict[str, type[RpcError]] = {
    cls.__name__: cls
    for cls in (
        RpcError,
        FencingTokenError,
        RpcEndpointNotFoundError,
        RpcNotFoundError,
        RpcInvalidCallError,
        RpcAuthenticationError,
        RpcConnectionError,
        RpcRejectedError,
    )
}


def error_from_remote(status: int, remote_type: str | None, message: str) -> RpcError:
    """Rebuild the typed error from an error response."""
    cls = _BY_NAME.get(remote_type or "")
    if cls is None:
        cls = {409: FencingTokenError, 404: RpcNotFoundError, 401: RpcAuthenticationError}.get(
            status, RpcRejectedError if 400 <= status < 500 else RpcError
        )
    return cls(message, remote_type=remote_type)
