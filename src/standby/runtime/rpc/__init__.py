"""Internal RPC over HTTP with leader-session fencing (Flink's ``runtime/rpc``)."""

from ._errors import FencingTokenError as FencingTokenError
from ._errors import RpcAuthenticationError as RpcAuthenticationError
from ._errors import RpcConnectionError as RpcConnectionError
from ._errors import RpcEndpointNotFoundError as RpcEndpointNotFoundError
from ._errors import RpcError as RpcError
from ._errors import RpcInvalidCallError as RpcInvalidCallError
from ._errors import RpcNotFoundError as RpcNotFoundError
from ._errors import RpcRejectedError as RpcRejectedError
from ._http import HttpServer as HttpServer
from ._http import SecurityMiddleware as SecurityMiddleware
from ._http import build_app as build_app
from ._http import error_response as error_response
from ._http import secure as secure
from ._service import AUTHORIZATION_HEADER as AUTHORIZATION_HEADER
from ._service import FENCING_TOKEN_HEADER as FENCING_TOKEN_HEADER
from ._service import FencedRpcEndpoint as FencedRpcEndpoint
from ._service import RpcClient as RpcClient
from ._service import RpcEndpoint as RpcEndpoint
from ._service import RpcService as RpcService
