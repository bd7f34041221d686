"""Runs the Kubernetes API test server as a child process (``python -m standby.testing.kubernetes_api_server``)."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from ._remote import RemoteFaultInjector
from ._server import DEFAULT_TOKEN


class KubernetesApiServerProcess:
    """A test server in its own process: survives the death of the processes under test, or of nothing.

    ``start()`` returns once the child printed its URL (kubeconfig written, port accepting);
    ``stop()`` sends SIGTERM and waits; ``kill()`` sends SIGKILL. Faults go through :attr:`faults`.
    """

    def __init__(
        self,
        *,
        kubeconfig: str | Path | None = None,
        namespace: str = "default",
        port: int = 0,
        token: str | None = DEFAULT_TOKEN,
        extra_args: Sequence[str] = (),
        python: str = sys.executable,
    ) -> None:
        self._command = [
            python,
            "-m",
            "standby.testing.kubernetes_api_server",
            "--port",
            str(port),
            "--namespace",
            namespace,
        ]
        if kubeconfig is not None:
            self._command += ["--kubeconfig", str(kubeconfig)]
        if token is None:
            self._command.append("--no-auth")
        else:
            self._command += ["--token", token]
        self._command += list(extra_args)
        self._process: subprocess.Popen[bytes] | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("the Kubernetes API test server process is not started")
        return self._url

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError("the Kubernetes API test server process is not started")
        return self._process.pid

    @property
    def faults(self) -> RemoteFaultInjector:
        return RemoteFaultInjector(self.url)

    def start(self, timeout: float = 30.0) -> str:
        """Start the child and return its URL; raises when it exits or stays silent for ``timeout`` s."""
        if self._process is not None:
            raise RuntimeError("the Kubernetes API test server process was already started")
        process = subprocess.Popen(self._command, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        self._process = process
        assert process.stdout is not None
        deadline = time.monotonic() + timeout
        buffer = b""
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            while b"\n" not in buffer:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self.kill()
                    raise TimeoutError(f"{' '.join(self._command)} printed no URL within {timeout} s")
                if not selector.select(timeout=remaining):
                    continue
                chunk = os.read(process.stdout.fileno(), 4096)
                if not chunk:
                    code = process.wait(timeout=5)
                    raise RuntimeError(
                        f"{' '.join(self._command)} exited with {code} before printing its URL"
                    )
                buffer += chunk
        self._url = buffer.split(b"\n", 1)[0].decode().strip()
        return self._url

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM and wait (SIGKILL after ``timeout`` s); returns the exit code."""
        process = self._process
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
        return process.returncode

    def kill(self) -> None:
        """SIGKILL the server (clients see connections refused/reset)."""
        process = self._process
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=10)

    def __enter__(self) -> KubernetesApiServerProcess:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
