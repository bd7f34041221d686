"""Prometheus metrics of one process (own registry, so several processes can share a test interpreter)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0)


class Metrics:
    """Leadership, failover, recovery and checkpoint metrics (exported at ``GET /metrics``)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.is_leader = Gauge(
            "standby_leadership_is_leader",
            "1 while this process leads the component",
            ["component"],
            registry=r,
        )
        self.leadership_changes = Counter(
            "standby_leadership_changes",
            "Leadership grants and revocations seen",
            ["component", "event"],
            registry=r,
        )
        self.dispatcher_recovery_seconds = Histogram(
            "standby_dispatcher_recovery_seconds",
            "From dispatcher leadership grant to all jobs recovered and the dispatcher confirmed",
            buckets=_DURATION_BUCKETS,
            registry=r,
        )
        self.job_recovery_seconds = Histogram(
            "standby_job_recovery_seconds",
            "From JobMaster leadership grant to all subtasks running",
            buckets=_DURATION_BUCKETS,
            registry=r,
        )
        self.job_restarts = Counter("standby_job_restarts", "Job restarts after failures", registry=r)
        self.jobs_recovered = Counter(
            "standby_jobs_recovered", "Jobs recovered from the HA stores", registry=r
        )
        self.checkpoints_completed = Counter(
            "standby_checkpoints_completed", "Completed checkpoints", ["job_id"], registry=r
        )
        self.checkpoints_failed = Counter(
            "standby_checkpoints_failed", "Failed checkpoints", ["job_id"], registry=r
        )
        self.checkpoint_duration_seconds = Histogram(
            "standby_checkpoint_duration_seconds",
            "Checkpoint duration",
            buckets=_DURATION_BUCKETS,
            registry=r,
        )
        self.last_checkpoint_id = Gauge(
            "standby_last_checkpoint_id", "Id of the latest completed checkpoint", ["job_id"], registry=r
        )
        self.fencing_rejections = Gauge(
            "standby_rpc_fencing_rejections",
            "RPC calls this process rejected for a stale or missing fencing token",
            registry=r,
        )
        self.running_jobs = Gauge("standby_running_jobs", "Jobs run by this JobManager", registry=r)
        self.registered_task_managers = Gauge(
            "standby_registered_task_managers",
            "TaskManagers registered with this ResourceManager",
            registry=r,
        )

    def leadership(self, component: str, granted: bool) -> None:
        self.is_leader.labels(component).set(1 if granted else 0)
        self.leadership_changes.labels(component, "grant" if granted else "revoke").inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
