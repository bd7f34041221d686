"""The JobMaster, its leadership runner and checkpoint coordinator (Flink's ``runtime/jobmaster``, ``checkpoint``)."""

from ._checkpoint_coordinator import CheckpointCoordinator as CheckpointCoordinator
from ._checkpoint_coordinator import StateDirCheckpointsCleaner as StateDirCheckpointsCleaner
from ._job_master import Execution as Execution
from ._job_master import JobMaster as JobMaster
from ._job_master import JobMasterResult as JobMasterResult
from ._job_master import JobMasterServices as JobMasterServices
from ._job_master import SlotAllocation as SlotAllocation
from ._job_master import job_master_endpoint as job_master_endpoint
from ._job_master import sum_results as sum_results
from ._restart import RestartStrategy as RestartStrategy
from ._runner import JobManagerRunnerResult as JobManagerRunnerResult
from ._runner import JobMasterServiceLeadershipRunner as JobMasterServiceLeadershipRunner
