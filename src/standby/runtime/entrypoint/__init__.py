"""Process entry points: a JobManager and a TaskManager (Flink's ``runtime/entrypoint``)."""

from ._jobmanager import JOBMANAGER_CONTROL_ENDPOINT as JOBMANAGER_CONTROL_ENDPOINT
from ._jobmanager import JobManagerProcess as JobManagerProcess
from ._jobmanager import UserCodeNotFoundError as UserCodeNotFoundError
from ._taskmanager import TaskManagerProcess as TaskManagerProcess
