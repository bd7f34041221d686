"""ZooKeeper HA backend: Flink's ZooKeeper HA services on kazoo, with every leader write fenced.

Select it with ``high-availability.type: zookeeper`` and ``high-availability.zookeeper.quorum``; see
docs/backends/zookeeper.md for the node layout, the connection-state policies and the fencing guarantees.
"""

from ._checkpoint_id_counter import ZooKeeperCheckpointIDCounter as ZooKeeperCheckpointIDCounter
from ._client import ConnectionState as ConnectionState
from ._client import KazooClientFactory as KazooClientFactory
from ._client import LatchFencing as LatchFencing
from ._client import Op as Op
from ._client import PinnedFencing as PinnedFencing
from ._client import TransactionError as TransactionError
from ._client import ZooKeeperClient as ZooKeeperClient
from ._client import ZooKeeperClientSettings as ZooKeeperClientSettings
from ._client import ZooKeeperConnectionError as ZooKeeperConnectionError
from ._client import default_kazoo_client_factory as default_kazoo_client_factory
from ._client import generate_zookeeper_path as generate_zookeeper_path
from ._client import pin_fencing as pin_fencing
from ._election_driver import ZooKeeperLeaderElectionDriver as ZooKeeperLeaderElectionDriver
from ._election_driver import ZooKeeperLeaderElectionDriverFactory as ZooKeeperLeaderElectionDriverFactory
from ._execution_plan_watcher import ZooKeeperExecutionPlanStoreWatcher as ZooKeeperExecutionPlanStoreWatcher
from ._leader_codec import decode_leader_information as decode_leader_information
from ._leader_codec import encode_leader_information as encode_leader_information
from ._retrieval_driver import LeaderInformationClearancePolicy as LeaderInformationClearancePolicy
from ._retrieval_driver import ZooKeeperLeaderRetrievalDriver as ZooKeeperLeaderRetrievalDriver
from ._retrieval_driver import ZooKeeperLeaderRetrievalDriverFactory as ZooKeeperLeaderRetrievalDriverFactory
from ._services import ZooKeeperCheckpointRecoveryFactory as ZooKeeperCheckpointRecoveryFactory
from ._services import ZooKeeperHaServices as ZooKeeperHaServices
from ._services import ZooKeeperHaServicesFactory as ZooKeeperHaServicesFactory
from ._state_handle_store import ZooKeeperStateHandleStore as ZooKeeperStateHandleStore

__all__ = [
    "ConnectionState",
    "KazooClientFactory",
    "LatchFencing",
    "LeaderInformationClearancePolicy",
    "Op",
    "PinnedFencing",
    "TransactionError",
    "ZooKeeperCheckpointIDCounter",
    "ZooKeeperCheckpointRecoveryFactory",
    "ZooKeeperClient",
    "ZooKeeperClientSettings",
    "ZooKeeperConnectionError",
    "ZooKeeperExecutionPlanStoreWatcher",
    "ZooKeeperHaServices",
    "ZooKeeperHaServicesFactory",
    "ZooKeeperLeaderElectionDriver",
    "ZooKeeperLeaderElectionDriverFactory",
    "ZooKeeperLeaderRetrievalDriver",
    "ZooKeeperLeaderRetrievalDriverFactory",
    "ZooKeeperStateHandleStore",
    "decode_leader_information",
    "default_kazoo_client_factory",
    "encode_leader_information",
    "generate_zookeeper_path",
    "pin_fencing",
]
