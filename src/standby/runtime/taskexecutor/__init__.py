"""The TaskExecutor (TaskManager side): slots and subtask execution (Flink's ``runtime/taskexecutor``)."""

from ._task_executor import TASK_EXECUTOR_ENDPOINT as TASK_EXECUTOR_ENDPOINT
from ._task_executor import TaskExecutor as TaskExecutor
from ._task_executor import TaskSlot as TaskSlot
from ._task_runner import RunningTask as RunningTask
from ._task_runner import TaskDeployment as TaskDeployment
from ._task_runner import TaskEvent as TaskEvent
