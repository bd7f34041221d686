"""The ``filesystem`` HA backend: leader election by ``flock``, pointers as files — for one host, no server."""

from ._checkpoint_id_counter import FileSystemCheckpointIDCounter as FileSystemCheckpointIDCounter
from ._election_driver import FileSystemLeaderElectionDriver as FileSystemLeaderElectionDriver
from ._election_driver import FileSystemLeaderElectionDriverFactory as FileSystemLeaderElectionDriverFactory
from ._election_driver import LeaderFence as LeaderFence
from ._execution_plan_watcher import (
    FileSystemExecutionPlanStoreWatcher as FileSystemExecutionPlanStoreWatcher,
)
from ._retrieval_driver import FileSystemLeaderRetrievalDriver as FileSystemLeaderRetrievalDriver
from ._retrieval_driver import (
    FileSystemLeaderRetrievalDriverFactory as FileSystemLeaderRetrievalDriverFactory,
)
from ._services import HA_FILESYSTEM_INOTIFY as HA_FILESYSTEM_INOTIFY
from ._services import FileSystemCheckpointRecoveryFactory as FileSystemCheckpointRecoveryFactory
from ._services import FileSystemHaServices as FileSystemHaServices
from ._services import FileSystemHaServicesFactory as FileSystemHaServicesFactory
from ._state_handle_store import FileSystemStateHandleStore as FileSystemStateHandleStore
