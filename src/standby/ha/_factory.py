"""create_high_availability_services: picks the HA backend named by ``high-availability.type``."""

from __future__ import annotations

import abc
import importlib
import inspect

from standby.config import Configuration, ConfigurationError, options

from ._embedded import EmbeddedHaServices
from ._errors import UnknownHighAvailabilityTypeError
from ._leader_election import FatalErrorHandler
from ._services import HighAvailabilityServices
from ._standalone import StandaloneHaServices


class HighAvailabilityServicesFactory(abc.ABC):
    """Creates the HA services of a backend; name a subclass in ``high-availability.type`` as
    ``package.module:FactoryClass`` to plug in your own (Flink's FACTORY_CLASS mode)."""

    @abc.abstractmethod
    async def create_ha_services(
        self, config: Configuration, fatal_error_handler: FatalErrorHandler | None = None
    ) -> HighAvailabilityServices: ...


#: Built-in backends, imported lazily so that e.g. kazoo is only loaded when ZooKeeper is used.
BUILTIN_BACKENDS: dict[str, str] = {
    "filesystem": "standby.backends.filesystem:FileSystemHaServicesFactory",
    "zookeeper": "standby.backends.zookeeper:ZooKeeperHaServicesFactory",
    "kubernetes": "standby.backends.kubernetes:KubernetesHaServicesFactory",
    "etcd": "standby.backends.etcd:EtcdHaServicesFactory",
}
_NON_HA_TYPES = ("none", "standalone")
VALID_TYPES: tuple[str, ...] = (*_NON_HA_TYPES, "embedded", *BUILTIN_BACKENDS)


def rpc_address(host: str, port: int, endpoint: str) -> str:
    """The address of an RPC endpoint of a JobManager (our RPC is HTTP)."""
    return f"http://{host}:{port}/rpc/{endpoint}"


def rest_address(host: str, port: int) -> str:
    """Flink's ``getWebMonitorAddress``: ``http://<rest.address>:<rest.port>``."""
    return f"http://{host}:{port}"


def high_availability_type(config: Configuration) -> str:
    """The normalised ``high-availability.type`` (``standalone`` and ``NONE`` both mean ``none``)."""
    value = (config.get(options.HA_TYPE) or "none").strip()
    lowered = value.lower()
    if lowered in _NON_HA_TYPES:
        return "none"
    if lowered in VALID_TYPES:
        return lowered
    return value


def load_factory(spec: str) -> HighAvailabilityServicesFactory:
    """Load ``package.module:FactoryClass`` (or the dotted ``package.module.FactoryClass`` of Flink)."""
    if ":" in spec:
        module_name, _, attr = spec.partition(":")
    else:
        module_name, _, attr = spec.rpartition(".")
    problem: str
    try:
        if not module_name or not attr:
            raise ImportError("not of the form package.module:FactoryClass")
        factory_class = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as e:
        problem = str(e)
    else:
        if inspect.isclass(factory_class) and issubclass(factory_class, HighAvailabilityServicesFactory):
            return factory_class()
        problem = f"{spec} is not a subclass of standby.ha.HighAvailabilityServicesFactory"
    raise UnknownHighAvailabilityTypeError(
        f"Invalid value {spec!r} for 'high-availability.type': {problem}. Valid types are "
        f"{', '.join(VALID_TYPES)}, or 'package.module:FactoryClass' naming a HighAvailabilityServicesFactory."
    )


def create_standalone_services(config: Configuration) -> StandaloneHaServices:
    host = config.get(options.JOB_MANAGER_RPC_ADDRESS)
    port = config.get(options.JOB_MANAGER_RPC_PORT)
    if not 0 < port < 65536:
        raise ConfigurationError(
            f"Invalid value {port!r} for 'jobmanager.rpc.port': expected a port between 1 and 65535"
        )
    return StandaloneHaServices(
        rpc_address(host, port, "resourcemanager"),
        rpc_address(host, port, "dispatcher"),
        rest_address(config.get(options.REST_ADDRESS), config.get(options.REST_PORT)),
    )


async def create_high_availability_services(
    config: Configuration, fatal_error_handler: FatalErrorHandler | None = None
) -> HighAvailabilityServices:
    """The HA services selected by ``high-availability.type``.

    ``none``/``standalone`` (default): fixed leaders, no failover. ``embedded``: in-process election.
    ``filesystem``, ``zookeeper``, ``kubernetes``, ``etcd``: real HA backends. Anything else is loaded as
    ``package.module:FactoryClass``; an unknown name fails with the list of valid types. With
    ``high-availability.audit-log`` set the services are wrapped in ``AuditingHaServices``.
    """
    services = await _create_services(config, fatal_error_handler)
    audit_log = config.get(options.HA_AUDIT_LOG)
    if audit_log:
        # high-availability.audit-log: every write through the services is logged (standby.testing.chaos)
        from ._audit import AuditingHaServices, AuditLog

        try:
            log = AuditLog(audit_log)
        except BaseException:
            await services.close()
            raise
        return AuditingHaServices(services, log)
    return services


async def _create_services(
    config: Configuration, fatal_error_handler: FatalErrorHandler | None
) -> HighAvailabilityServices:
    ha_type = high_availability_type(config)
    if ha_type == "none":
        return create_standalone_services(config)
    if ha_type == "embedded":
        return EmbeddedHaServices()
    factory = load_factory(BUILTIN_BACKENDS.get(ha_type, ha_type))
    return await factory.create_ha_services(config, fatal_error_handler)
