"""The ``standby`` command line (typer + rich).

``ClusterClient`` is imported on first use: the server commands (``jobmanager``, ``taskmanager``) never load the
CLI's HTTP client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._app import app as app
from ._app import main as main
from ._errors import CliError as CliError

if TYPE_CHECKING:
    from ._client import ClusterClient as ClusterClient

__all__ = ["CliError", "ClusterClient", "app", "main"]


def __getattr__(name: str) -> Any:
    if name == "ClusterClient":
        from ._client import ClusterClient

        return ClusterClient
    raise AttributeError(f"module 'standby.cli' has no attribute {name!r}")
