"""The CLI's error type, apart from the REST client so that the server commands do not import an HTTP client."""

from __future__ import annotations


class CliError(Exception):
    """A problem to report in one line (no traceback unless --verbose)."""
