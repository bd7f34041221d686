"""The ``standby`` command line (typer + rich)."""

from ._app import app as app
from ._app import main as main
from ._client import CliError as CliError
from ._client import ClusterClient as ClusterClient
