"""Exception types of the HA services; messages name the thing concerned and the next step."""

from __future__ import annotations


class HighAvailabilityError(Exception):
    """Base class of every error raised by the HA services."""


class HighAvailabilityServicesShutDownError(HighAvailabilityError, RuntimeError):
    """A getter was called after ``close()`` (Flink: "high availability services are shut down")."""

    def __init__(self, message: str = "high availability services are shut down") -> None:
        super().__init__(message)


class UnknownHighAvailabilityTypeError(HighAvailabilityError, ValueError):
    """``high-availability.type`` names neither a built-in backend nor an importable factory."""


class LeaderElectionError(HighAvailabilityError):
    """Flink's ``LeaderElectionException``: an error of the leader election backend."""


class LeadershipLostError(LeaderElectionError):
    """Flink's ``LeadershipLostException``: an operation required leadership that is no longer held."""


class LeaderRetrievalError(HighAvailabilityError):
    """Flink's ``LeaderRetrievalException``: an error of the leader retrieval backend."""


class FencingError(HighAvailabilityError):
    """A write made on behalf of a leader was refused because the writer no longer holds leadership.

    Beyond Flink: every HA write of standby is fenced at the store, so a deposed leader cannot write.
    """


class StateHandleStoreError(HighAvailabilityError):
    """Base class of the ``StateHandleStore`` errors."""


class StateHandleNotExistError(StateHandleStoreError, KeyError):
    """Flink's ``StateHandleStore.NotExistException``: no (live) entry under that name."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "state handle does not exist"


class StateHandleAlreadyExistError(StateHandleStoreError):
    """Flink's ``StateHandleStore.AlreadyExistException``: an entry with that name exists already."""


class PossibleInconsistentStateError(StateHandleStoreError):
    """Flink's ``PossibleInconsistentStateException``: the outcome of a write is unknown.

    The payload file that was written for it must NOT be discarded: the pointer may have been committed.
    """


class CheckpointStoreError(HighAvailabilityError):
    """A completed checkpoint could not be added, read or removed."""


class CorruptHaDataError(HighAvailabilityError):
    """Stored HA data (a pointer or a payload) cannot be read; the message names the key or file."""
