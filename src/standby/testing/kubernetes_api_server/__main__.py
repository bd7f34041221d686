"""Command line: run a Kubernetes API test server until SIGTERM, for tests that span processes.

``python -m standby.testing.kubernetes_api_server --port 0 --kubeconfig PATH`` binds 127.0.0.1, writes the
kubeconfig (when asked), prints the server URL as one flushed line on stdout, and serves until SIGTERM or
SIGINT. Faults are driven over HTTP (``RemoteFaultInjector(url)``).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from ._server import DEFAULT_TOKEN, KubernetesApiTestServer


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m standby.testing.kubernetes_api_server",
        description="Serve the standby Kubernetes API test server (ConfigMaps, Leases) on 127.0.0.1 until SIGTERM.",
    )
    parser.add_argument(
        "--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: a free one; default 0)"
    )
    parser.add_argument("--kubeconfig", type=Path, help="write a kubeconfig for this server to this path")
    parser.add_argument("--namespace", default="default", help="namespace of the kubeconfig's context")
    parser.add_argument("--token", default=DEFAULT_TOKEN, help="bearer token clients must send")
    parser.add_argument("--no-auth", action="store_true", help="accept requests without a bearer token")
    parser.add_argument("--history-limit", type=int, default=1000, help="watch events retained for resume")
    parser.add_argument("--watch-timeout", type=float, default=1800.0, help="default watch length in seconds")
    parser.add_argument(
        "--bookmark-interval", type=float, default=60.0, help="seconds between BOOKMARK events"
    )
    return parser


async def _serve(arguments: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    server = KubernetesApiTestServer(
        port=arguments.port,
        token=None if arguments.no_auth else arguments.token,
        history_limit=arguments.history_limit,
        watch_timeout=arguments.watch_timeout,
        bookmark_interval=arguments.bookmark_interval,
    )
    async with server:
        if arguments.kubeconfig is not None:
            server.write_kubeconfig(arguments.kubeconfig, namespace=arguments.namespace)
        # the URL line is the readiness signal for the parent: kubeconfig written, port accepting
        print(server.url, flush=True)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    try:
        asyncio.run(_serve(arguments))
    except OSError as error:
        print(f"kubernetes api test server: {error}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
