"""The REST API of the JobManagers (Flink's ``runtime/rest`` and ``webmonitor``)."""

from ._rest import FORWARDED_HEADER as FORWARDED_HEADER
from ._rest import RestEndpointContext as RestEndpointContext
from ._rest import RestLeaderContender as RestLeaderContender
from ._rest import SubmitJobRequest as SubmitJobRequest
from ._rest import add_rest_routes as add_rest_routes
