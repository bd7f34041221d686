"""Errors raised while reading, parsing or validating standby configuration."""

from __future__ import annotations

__all__ = ["ConfigurationError"]


class ConfigurationError(ValueError):
    """A configuration value, file or command-line property is invalid.

    The message always names what is wrong (the key, the file and line, or the ``-D`` argument) and what would be
    accepted instead. Mirrors Flink's ``IllegalConfigurationException`` but carries the offending key and value so
    that a CLI can point at them. It is a ``ValueError`` so generic callers of ``parse_duration`` etc. can catch it
    as such.
    """

    def __init__(
        self,
        message: str,
        *,
        key: str | None = None,
        value: object = None,
        source: str | None = None,
    ) -> None:
        super().__init__(message)
        #: The configuration key whose value is invalid, if the error concerns one key.
        self.key = key
        #: The raw value that was rejected (already masked for sensitive keys).
        self.value = value
        #: Where the problem comes from: a file path or a ``-D`` argument, if known.
        self.source = source

    @property
    def message(self) -> str:
        """The human-readable message (same as ``str(error)``)."""
        return str(self)
