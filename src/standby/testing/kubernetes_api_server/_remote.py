"""Fault knobs of a Kubernetes API test server in another process, over its ``/_test/faults`` endpoint."""

from __future__ import annotations

from typing import Any

import httpx

from ._faults import WatchDrop


class RemoteFaultInjectorError(RuntimeError):
    """The test server refused a fault command (the message carries its answer)."""


class RemoteFaultInjector:
    """The methods of :class:`FaultInjector`, sent to ``<url>/_test/faults`` (synchronous, httpx)."""

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        self._endpoint = url.rstrip("/") + "/_test/faults"
        self._timeout = timeout

    def _http_options(self) -> dict[str, Any]:
        # The test server speaks plain HTTP on 127.0.0.1: no proxies from the environment, and verify=False
        # only spares httpx from loading a CA bundle (~0.3 s) for a TLS handshake that never happens.
        return {"timeout": self._timeout, "trust_env": False, "verify": False}

    def _command(self, action: str, **arguments: Any) -> Any:
        payload = {"action": action, **{k: v for k, v in arguments.items() if v is not None}}
        response = httpx.post(self._endpoint, json=payload, **self._http_options())
        if response.status_code != 200:
            raise RemoteFaultInjectorError(
                f"fault command {action!r} to {self._endpoint} failed with {response.status_code}: {response.text}"
            )
        return response.json().get("result")

    def set_latency(self, seconds: float) -> None:
        self._command("set_latency", seconds=seconds)

    def fail_next(
        self,
        count: int = 1,
        *,
        code: int = 500,
        method: str | None = None,
        path: str | None = None,
        watch: bool | None = None,
        reason: str | None = None,
        message: str | None = None,
        retry_after_seconds: int | None = None,
    ) -> None:
        self._command(
            "fail_next",
            count=count,
            code=code,
            method=method,
            path=path,
            watch=watch,
            reason=reason,
            message=message,
            retry_after_seconds=retry_after_seconds,
        )

    def clear_failures(self) -> None:
        self._command("clear_failures")

    def pause(self, timeout: float = 30.0) -> None:
        self._command("pause", timeout=timeout)

    def resume(self) -> None:
        self._command("resume")

    def drop_watches(self, how: WatchDrop = "reset") -> int:
        return int(self._command("drop_watches", how=how))

    def set_history_limit(self, limit: int) -> None:
        self._command("set_history_limit", limit=limit)

    def compact_history(self) -> None:
        self._command("compact_history")

    def reset(self) -> None:
        self._command("reset")

    @property
    def injected_failures(self) -> int:
        return int(self.snapshot()["injected_failures"])

    @property
    def paused_requests(self) -> int:
        return int(self.snapshot()["paused_requests"])

    def snapshot(self) -> dict[str, Any]:
        response = httpx.get(self._endpoint, **self._http_options())
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result
