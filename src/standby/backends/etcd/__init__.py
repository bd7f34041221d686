"""The etcd HA backend (standby; Flink has none): leader election after Go's ``clientv3/concurrency``, leader
retrieval by watch, recovery stores as keys under ``<high-availability.etcd.root>/<cluster-id>``, and every leader
write fenced by the leader's election key.

Select it with ``high-availability.type: etcd`` and ``high-availability.etcd.endpoints``; see docs/backends/etcd.md.
"""

from ._checkpoint_id_counter import EtcdCheckpointIDCounter as EtcdCheckpointIDCounter
from ._client import Compare as Compare
from ._client import DefaultEtcdClientFactory as DefaultEtcdClientFactory
from ._client import Delete as Delete
from ._client import EtcdClient as EtcdClient
from ._client import EtcdClientClosedError as EtcdClientClosedError
from ._client import EtcdClientFactory as EtcdClientFactory
from ._client import EtcdCompactedError as EtcdCompactedError
from ._client import EtcdEndpoint as EtcdEndpoint
from ._client import EtcdError as EtcdError
from ._client import EtcdSettings as EtcdSettings
from ._client import EtcdUnavailableError as EtcdUnavailableError
from ._client import EtcdWatch as EtcdWatch
from ._client import Get as Get
from ._client import KeyValue as KeyValue
from ._client import Put as Put
from ._client import TxnResult as TxnResult
from ._client import WatchEvent as WatchEvent
from ._election_driver import EtcdLeaderElectionDriver as EtcdLeaderElectionDriver
from ._election_driver import EtcdLeaderElectionDriverFactory as EtcdLeaderElectionDriverFactory
from ._execution_plan_watcher import EtcdExecutionPlanStoreWatcher as EtcdExecutionPlanStoreWatcher
from ._fencing import FencingToken as FencingToken
from ._fencing import LeadershipFence as LeadershipFence
from ._fencing import fenced_txn as fenced_txn
from ._lease import EtcdLease as EtcdLease
from ._lease import EtcdLockLease as EtcdLockLease
from ._paths import EtcdPaths as EtcdPaths
from ._retrieval_driver import EtcdLeaderRetrievalDriver as EtcdLeaderRetrievalDriver
from ._retrieval_driver import EtcdLeaderRetrievalDriverFactory as EtcdLeaderRetrievalDriverFactory
from ._retrieval_driver import decode_leader_information as decode_leader_information
from ._retrieval_driver import encode_leader_information as encode_leader_information
from ._services import EtcdCheckpointRecoveryFactory as EtcdCheckpointRecoveryFactory
from ._services import EtcdHaServices as EtcdHaServices
from ._services import EtcdHaServicesFactory as EtcdHaServicesFactory
from ._state_handle_store import EtcdStateHandleStore as EtcdStateHandleStore
from ._state_handle_store import StateHandleVersionConflictError as StateHandleVersionConflictError
