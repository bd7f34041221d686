"""The ResourceManager: TaskManager registry and slot allocation (Flink's ``runtime/resourcemanager``)."""

from ._resource_manager import RESOURCE_MANAGER_ENDPOINT as RESOURCE_MANAGER_ENDPOINT
from ._resource_manager import ResourceManager as ResourceManager
from ._resource_manager import SlotStatus as SlotStatus
from ._resource_manager import TaskManagerRegistration as TaskManagerRegistration
from ._service import ResourceManagerService as ResourceManagerService
