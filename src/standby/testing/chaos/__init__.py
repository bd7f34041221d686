"""standby.testing.chaos: the failure-injection safety suite.

Randomized, seeded runs of a real HA cluster (JobManagers and TaskManagers as processes, a real ZooKeeper or etcd
server) under SIGKILL, SIGSTOP/SIGCONT, coordination-server restarts and cut connections, while checkpointing
counter jobs run; every accepted HA write is logged (``high-availability.audit-log``) and a checker proves that no
two leader sessions' writes interleave, that no completed checkpoint is lost, that every job ends with the exact
result and that no HA data is left after the shutdown. ``python -m standby.testing.chaos --help``; see
docs/chaos.md.
"""

from ._checker import AuditRecord as AuditRecord
from ._checker import CheckReport as CheckReport
from ._checker import CheckResult as CheckResult
from ._checker import audit_statistics as audit_statistics
from ._checker import check_audit_log as check_audit_log
from ._checker import check_exact_results as check_exact_results
from ._checker import check_no_interleaving as check_no_interleaving
from ._checker import check_no_leftover_data as check_no_leftover_data
from ._checker import check_no_lost_checkpoint as check_no_lost_checkpoint
from ._checker import check_writes_by_granted_sessions as check_writes_by_granted_sessions
from ._checker import leftover_files as leftover_files
from ._checker import load_audit_log as load_audit_log
from ._cluster import ChaosCluster as ChaosCluster
from ._cluster import ChaosProcess as ChaosProcess
from ._cluster import ClusterTimeoutError as ClusterTimeoutError
from ._faults import FaultSpec as FaultSpec
from ._faults import fault_kinds as fault_kinds
from ._faults import make_schedule as make_schedule
from ._runner import BACKENDS as BACKENDS
from ._runner import ChaosOptions as ChaosOptions
from ._runner import ChaosReport as ChaosReport
from ._runner import ChaosSetupError as ChaosSetupError
from ._runner import FaultEvent as FaultEvent
from ._runner import counter_expectation as counter_expectation
from ._runner import run_chaos as run_chaos
