"""Names, keys, labels and value codecs of the Kubernetes HA backend (Flink's ``KubernetesUtils``/``Constants``).

The layout is Flink 2.3's (§3.1 of the reference): one ``<cluster-id>-cluster-config-map`` with the leader lock
annotation, the ``org.apache.flink.k8s.leader.<component>`` keys and the ``executionPlan-<jobId>`` keys, and one
``<cluster-id>-<jobId>-config-map`` per job with ``counter`` and ``checkpointID-<%019d>``.
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Final

from standby.config import ConfigurationError
from standby.ha import JobID, LeaderInformation

_log = logging.getLogger(__name__)

#: Flink's ``Constants.MAXIMUM_CHARACTERS_OF_CLUSTER_ID``: the cluster id names Kubernetes objects.
MAXIMUM_CHARACTERS_OF_CLUSTER_ID: Final = 45
#: DNS-1035 label (Flink's check of ``kubernetes.cluster-id``).
_CLUSTER_ID_RE: Final = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")

#: fabric8/client-go ``ConfigMapLock``: the leader election record lives in this annotation.
LEADER_ANNOTATION_KEY: Final = "control-plane.alpha.kubernetes.io/leader"
#: standby: the fencing epoch of the last leader that wrote a per-job ConfigMap (see ``_fencing``).
FENCING_EPOCH_ANNOTATION_KEY: Final = "standby.io/fencing-epoch"

LEADER_KEY_PREFIX: Final = "org.apache.flink.k8s.leader."
EXECUTION_PLAN_STORE_KEY_PREFIX: Final = "executionPlan-"
CHECKPOINT_ID_KEY_PREFIX: Final = "checkpointID-"
CHECKPOINT_COUNTER_KEY: Final = "counter"

#: Component ids on Kubernetes (no underscores, unlike ZooKeeper's).
RESOURCE_MANAGER_COMPONENT: Final = "resourcemanager"
DISPATCHER_COMPONENT: Final = "dispatcher"
REST_SERVER_COMPONENT: Final = "restserver"

LABEL_TYPE_KEY: Final = "type"
LABEL_TYPE_NATIVE_TYPE: Final = "flink-native-kubernetes"
LABEL_APP_KEY: Final = "app"

CLUSTER_ID_KEY: Final = "kubernetes.cluster-id"


def validate_cluster_id(cluster_id: str | None) -> str:
    """``cluster_id`` if it may name Kubernetes objects; else ``ConfigurationError`` naming key and value."""
    if cluster_id is None or not cluster_id.strip():
        raise ConfigurationError(
            f"'{CLUSTER_ID_KEY}' is not set: Kubernetes high availability names its ConfigMaps after it "
            f"('<cluster-id>-cluster-config-map'). Set it to a DNS label such as 'my-flink-cluster'."
        )
    if len(cluster_id) > MAXIMUM_CHARACTERS_OF_CLUSTER_ID:
        raise ConfigurationError(
            f"Invalid value {cluster_id!r} for '{CLUSTER_ID_KEY}': it has {len(cluster_id)} characters, at most "
            f"{MAXIMUM_CHARACTERS_OF_CLUSTER_ID} are allowed. Choose a shorter cluster id."
        )
    if not _CLUSTER_ID_RE.fullmatch(cluster_id):
        raise ConfigurationError(
            f"Invalid value {cluster_id!r} for '{CLUSTER_ID_KEY}': it must be a DNS label "
            "([a-z]([-a-z0-9]*[a-z0-9])?): lower-case letters, digits and '-', starting with a letter and "
            "not ending with '-'."
        )
    return cluster_id


def cluster_config_map_name(cluster_id: str) -> str:
    """Flink's ``getClusterConfigMapName``."""
    return f"{cluster_id}-cluster-config-map"


def job_config_map_name(cluster_id: str, job_id: JobID) -> str:
    """The per-job ConfigMap of checkpoints and the checkpoint id counter."""
    return f"{cluster_id}-{job_id}-config-map"


def config_map_labels(cluster_id: str) -> dict[str, str]:
    """Flink's ``getConfigMapLabels``: the labels of every HA ConfigMap of a cluster (no ownerReference)."""
    return {LABEL_TYPE_KEY: LABEL_TYPE_NATIVE_TYPE, LABEL_APP_KEY: cluster_id}


def leader_key(component_id: str) -> str:
    """Flink's ``createSingleLeaderKey``."""
    return LEADER_KEY_PREFIX + component_id


def is_leader_key(key: str) -> bool:
    return key.startswith(LEADER_KEY_PREFIX)


def leader_name_of_key(key: str) -> str:
    """Flink's ``extractLeaderName``: the component id of a leader key."""
    return key[len(LEADER_KEY_PREFIX) :]


def encode_leader_information(info: LeaderInformation) -> str:
    """Flink's ``encodeLeaderInformation``: ``"<sessionId>,<address>"``."""
    if info.is_empty():
        raise ValueError("empty leader information is stored by removing the key, not encoded")
    return f"{info.session_id},{info.address}"


def parse_leader_information(value: str | None) -> LeaderInformation:
    """Flink's ``parseLeaderInformationSafely``: split at the FIRST comma; anything unparsable is empty."""
    if not value:
        return LeaderInformation.empty()
    session, separator, address = value.partition(",")
    if not separator:
        _log.debug("Ignoring leader information %r: no ',' between session id and address", value)
        return LeaderInformation.empty()
    try:
        return LeaderInformation.known(uuid.UUID(session), address)
    except ValueError:
        _log.debug("Ignoring leader information %r: invalid session id", value)
        return LeaderInformation.empty()
