"""Kubernetes HA backend: leader election, retrieval and recovery stores on ConfigMaps (Flink's flink-kubernetes HA).

``high-availability.type: kubernetes`` with ``kubernetes.cluster-id`` (and ``kubernetes.namespace``,
``kubernetes.config.file``/``kubernetes.context`` or the pod's service account). Layout, semantics and what standby
adds (fencing of every HA write, faster hand-over) are described in docs/backends/kubernetes.md.
"""

from ._checkpoint_id_counter import KubernetesCheckpointIDCounter as KubernetesCheckpointIDCounter
from ._client import REQUIRED_API_CALLS as REQUIRED_API_CALLS
from ._client import ConfigMapAlreadyExistsError as ConfigMapAlreadyExistsError
from ._client import ConfigMapConflictError as ConfigMapConflictError
from ._client import ConfigMapNotFoundError as ConfigMapNotFoundError
from ._client import KubernetesApiError as KubernetesApiError
from ._client import KubernetesClient as KubernetesClient
from ._client import KubernetesClientFactory as KubernetesClientFactory
from ._client import KubernetesConfigMap as KubernetesConfigMap
from ._client import KubernetesConnectionError as KubernetesConnectionError
from ._client import KubernetesError as KubernetesError
from ._client import LightkubeClient as LightkubeClient
from ._client import LightkubeClientFactory as LightkubeClientFactory
from ._client import RetryPolicy as RetryPolicy
from ._client import WatchExpiredError as WatchExpiredError
from ._client import check_and_update_config_map as check_and_update_config_map
from ._configmap_watcher import ConfigMapEventHandler as ConfigMapEventHandler
from ._configmap_watcher import SharedConfigMapWatcher as SharedConfigMapWatcher
from ._election_driver import KubernetesLeaderElectionDriver as KubernetesLeaderElectionDriver
from ._election_driver import KubernetesLeaderElectionDriverFactory as KubernetesLeaderElectionDriverFactory
from ._fencing import FencedConfigMapWriter as FencedConfigMapWriter
from ._fencing import FencingToken as FencingToken
from ._fencing import LeaderFence as LeaderFence
from ._leader_elector import KubernetesLeaderElectionConfiguration as KubernetesLeaderElectionConfiguration
from ._leader_elector import KubernetesLeaderElector as KubernetesLeaderElector
from ._leader_elector import LeaderElectionRecord as LeaderElectionRecord
from ._leader_elector import LeadershipState as LeadershipState
from ._retrieval_driver import KubernetesLeaderRetrievalDriver as KubernetesLeaderRetrievalDriver
from ._retrieval_driver import (
    KubernetesLeaderRetrievalDriverFactory as KubernetesLeaderRetrievalDriverFactory,
)
from ._services import KubernetesCheckpointRecoveryFactory as KubernetesCheckpointRecoveryFactory
from ._services import KubernetesHaServices as KubernetesHaServices
from ._services import KubernetesHaServicesFactory as KubernetesHaServicesFactory
from ._services import KubernetesHaSettings as KubernetesHaSettings
from ._state_handle_store import KubernetesStateHandleStore as KubernetesStateHandleStore
from ._utils import LEADER_ANNOTATION_KEY as LEADER_ANNOTATION_KEY
from ._utils import cluster_config_map_name as cluster_config_map_name
from ._utils import job_config_map_name as job_config_map_name
from ._utils import validate_cluster_id as validate_cluster_id
