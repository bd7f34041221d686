"""The Dispatcher, its leader process (job recovery) and runner (Flink's ``runtime/dispatcher``)."""

from ._dispatcher import DISPATCHER_ENDPOINT as DISPATCHER_ENDPOINT
from ._dispatcher import Dispatcher as Dispatcher
from ._dispatcher import DispatcherServices as DispatcherServices
from ._dispatcher import job_result_json as job_result_json
from ._leader_process import DispatcherLeaderProcessError as DispatcherLeaderProcessError
from ._leader_process import SessionDispatcherLeaderProcess as SessionDispatcherLeaderProcess
from ._runner import DefaultDispatcherRunner as DefaultDispatcherRunner
