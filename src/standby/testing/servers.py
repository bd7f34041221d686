"""Real coordination servers for tests: ZooKeeper and etcd processes on 127.0.0.1, a fault-injecting TCP proxy.

Everything here runs real software (Debian's ``zookeeper`` and ``etcd-server`` packages; see
``scripts/install-test-servers``) on loopback with free ports and private temporary directories::

    from standby.testing.servers import ZooKeeperServer, TcpProxy, expire_session

    with ZooKeeperServer() as zk, TcpProxy(zk.host, zk.port) as proxy:
        client = KazooClient(hosts=proxy.endpoint, timeout=4.0)
        ...
        proxy.drop()            # the client sees SUSPENDED
        proxy.heal()            # ... and CONNECTED again, same session
        expire_session(client)  # LOST, then a new session
"""

from ._etcd_server import EtcdCluster as EtcdCluster
from ._etcd_server import EtcdInstallation as EtcdInstallation
from ._etcd_server import EtcdServer as EtcdServer
from ._etcd_server import etcd_unavailable_reason as etcd_unavailable_reason
from ._etcd_server import find_etcd as find_etcd
from ._etcd_server import require_etcd as require_etcd
from ._ports import LOOPBACK as LOOPBACK
from ._ports import free_port as free_port
from ._ports import free_ports as free_ports
from ._ports import is_port_free as is_port_free
from ._server_process import ServerNotInstalledError as ServerNotInstalledError
from ._server_process import ServerStartError as ServerStartError
from ._tcp_proxy import ProxyMode as ProxyMode
from ._tcp_proxy import TcpProxy as TcpProxy
from ._zookeeper_server import ZOOKEEPER_MAIN_CLASS as ZOOKEEPER_MAIN_CLASS
from ._zookeeper_server import ZooKeeperEnsemble as ZooKeeperEnsemble
from ._zookeeper_server import ZooKeeperInstallation as ZooKeeperInstallation
from ._zookeeper_server import ZooKeeperServer as ZooKeeperServer
from ._zookeeper_server import expire_session as expire_session
from ._zookeeper_server import find_zookeeper as find_zookeeper
from ._zookeeper_server import four_letter_word as four_letter_word
from ._zookeeper_server import require_zookeeper as require_zookeeper
from ._zookeeper_server import zookeeper_unavailable_reason as zookeeper_unavailable_reason

__all__ = [
    "LOOPBACK",
    "ZOOKEEPER_MAIN_CLASS",
    "EtcdCluster",
    "EtcdInstallation",
    "EtcdServer",
    "ProxyMode",
    "ServerNotInstalledError",
    "ServerStartError",
    "TcpProxy",
    "ZooKeeperEnsemble",
    "ZooKeeperInstallation",
    "ZooKeeperServer",
    "etcd_unavailable_reason",
    "expire_session",
    "find_etcd",
    "find_zookeeper",
    "four_letter_word",
    "free_port",
    "free_ports",
    "is_port_free",
    "require_etcd",
    "require_zookeeper",
    "zookeeper_unavailable_reason",
]
