"""The etcd key layout of one cluster: the ZooKeeper tree of Flink as flat keys under ``<root>/<cluster-id>``.

```
<root>/<cluster-id>/leader/latch/<lease-id hex>                    election keys (one per contending process)
<root>/<cluster-id>/leader/<component>/connection_info             leader information (JSON), on the leader's lease
<root>/<cluster-id>/execution-plans/<jobId>                        pointer to a submitted execution plan
<root>/<cluster-id>/execution-plans/<jobId>/locks/<instance-uuid>  lock of one store instance, on its process lease
<root>/<cluster-id>/jobs/<jobId>/checkpoints/<%019d id>            pointer to completed checkpoint metadata (+ locks/)
<root>/<cluster-id>/jobs/<jobId>/checkpoint_id_counter             next checkpoint id (decimal)
```
"""

from __future__ import annotations

from dataclasses import dataclass

from standby.ha import JobID

from ._client import join_key

LEADER = "leader"
LATCH = "latch"
CONNECTION_INFO = "connection_info"
EXECUTION_PLANS = "execution-plans"
JOBS = "jobs"
CHECKPOINTS = "checkpoints"
CHECKPOINT_ID_COUNTER = "checkpoint_id_counter"
LOCKS = "locks"


@dataclass(frozen=True)
class EtcdPaths:
    """Keys of one cluster, from its prefix ``<root>/<cluster-id>`` (e.g. ``/standby/default``)."""

    cluster: str

    @staticmethod
    def of(root: str, cluster_id: str) -> EtcdPaths:
        return EtcdPaths(join_key(root, cluster_id))

    def key(self, *segments: str) -> str:
        return join_key(self.cluster, *segments)

    @property
    def cluster_prefix(self) -> bytes:
        """Every key of the cluster starts with this (trailing slash: no other cluster shares it)."""
        return (self.cluster + "/").encode()

    @property
    def leader_prefix(self) -> bytes:
        return (self.key(LEADER) + "/").encode()

    @property
    def latch_prefix(self) -> bytes:
        return (self.key(LEADER, LATCH) + "/").encode()

    def election_key(self, lease_id: int) -> bytes:
        return self.latch_prefix + f"{lease_id:x}".encode()

    def connection_info(self, component_id: str) -> bytes:
        return self.key(LEADER, component_id, CONNECTION_INFO).encode()

    def component_of_connection_info(self, key: bytes) -> str | None:
        """The component id if ``key`` is ``.../leader/<component>/connection_info``, else None."""
        prefix = self.leader_prefix
        suffix = b"/" + CONNECTION_INFO.encode()
        if not key.startswith(prefix) or not key.endswith(suffix):
            return None
        component = key[len(prefix) : -len(suffix)]
        if not component or b"/" in component or component == LATCH.encode():
            return None
        return component.decode(errors="replace")

    @property
    def execution_plans(self) -> str:
        return self.key(EXECUTION_PLANS)

    def job(self, job_id: JobID) -> str:
        return self.key(JOBS, str(job_id))

    def job_prefix(self, job_id: JobID) -> bytes:
        return (self.job(job_id) + "/").encode()

    def checkpoints(self, job_id: JobID) -> str:
        return self.key(JOBS, str(job_id), CHECKPOINTS)

    def checkpoint_id_counter(self, job_id: JobID) -> bytes:
        return self.key(JOBS, str(job_id), CHECKPOINT_ID_COUNTER).encode()
