"""Free TCP ports on 127.0.0.1 for test servers, chosen outside the kernel's ephemeral range.

A port handed out by binding to port 0 comes from the kernel's ephemeral range, the same range the kernel uses for
the source port of outgoing connections. A server that is stopped and restarted on "its" port can then find the port
taken by some client's outgoing socket. Picking ports below the ephemeral range avoids that, and a process-wide
registry makes sure one test process never hands out the same port twice.
"""

from __future__ import annotations

import errno
import random
import socket
import threading
from pathlib import Path

__all__ = ["LOOPBACK", "free_port", "free_ports", "is_port_free"]

LOOPBACK = "127.0.0.1"

# Ports below this are privileged or commonly used by well-known services.
_LOWEST_PORT = 10_000
_MAX_ATTEMPTS = 500

_lock = threading.Lock()
_handed_out: set[int] = set()


def _ephemeral_range() -> tuple[int, int]:
    """The kernel's range for outgoing source ports (Linux default 32768-60999)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def _candidate_ranges() -> list[tuple[int, int]]:
    low, high = _ephemeral_range()
    ranges = []
    if low - 1 - _LOWEST_PORT >= 1000:
        ranges.append((_LOWEST_PORT, low - 1))
    if 65535 - (high + 1) >= 1000:
        ranges.append((high + 1, 65535))
    return ranges


def is_port_free(port: int, host: str = LOOPBACK) -> bool:
    """Whether a listening socket could bind ``host:port`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Servers bind with SO_REUSEADDR, so sockets in TIME_WAIT from an earlier run do not block them.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL):
                return False
            raise
        return True


def _kernel_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port on ``host`` that is free now and was not handed out before by this process."""
    ranges = _candidate_ranges()
    rng = random.SystemRandom()
    with _lock:
        if ranges:
            for _ in range(_MAX_ATTEMPTS):
                low, high = rng.choice(ranges)
                port = rng.randint(low, high)
                if port not in _handed_out and is_port_free(port, host):
                    _handed_out.add(port)
                    return port
        # The ephemeral range covers (almost) everything: fall back to a kernel-assigned port.
        for _ in range(_MAX_ATTEMPTS):
            port = _kernel_port(host)
            if port not in _handed_out:
                _handed_out.add(port)
                return port
    raise OSError(
        f"no free TCP port found on {host} after {_MAX_ATTEMPTS} attempts; "
        "check for leaked test servers (ss -ltnp) and retry"
    )


def free_ports(count: int, host: str = LOOPBACK) -> list[int]:
    """``count`` distinct free ports on ``host`` (see :func:`free_port`)."""
    return [free_port(host) for _ in range(count)]
