"""The highly available job cluster: JobManager (Dispatcher, ResourceManager, JobMasters, REST) and TaskManagers.

Depends on the HA interfaces (``standby.ha``) only, so it runs unchanged on every backend.
"""

from ._config import RuntimeSettings as RuntimeSettings
from ._config import load_configuration as load_configuration
from ._metrics import Metrics as Metrics
from ._user_code import JobFileError as JobFileError
from ._user_code import find_task_class as find_task_class
from .entrypoint import JobManagerProcess as JobManagerProcess
from .entrypoint import TaskManagerProcess as TaskManagerProcess
