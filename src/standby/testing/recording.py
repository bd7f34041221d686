"""Public re-exports of the recording test doubles."""

from ._recording import DEFAULT_TIMEOUT as DEFAULT_TIMEOUT
from ._recording import LeadershipEvent as LeadershipEvent
from ._recording import RecordingContender as RecordingContender
from ._recording import RecordingRetrievalListener as RecordingRetrievalListener
