"""standby: JobManager high availability after Apache Flink, in Python."""

from ._task import Task as Task
from ._task import TaskContext as TaskContext
