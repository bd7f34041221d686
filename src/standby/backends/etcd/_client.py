"""The etcd client of the etcd HA backend: settings read from the configuration, a typed facade over aetcd, and
the client factory that tests replace (no monkeypatching).

aetcd 1.0 talks to one ``host:port`` over an insecure channel; ``_ChannelClient`` opens the gRPC channel itself so
that several endpoints (a cluster: gRPC's ``pick_first`` over all members, reconnecting to the next member when
one dies) and TLS work. Every request has a deadline (``high-availability.etcd.connection-timeout``) and failures
are typed: :class:`EtcdUnavailableError` when etcd could not be reached or did not answer in time (the outcome of a
write is then unknown), :class:`EtcdError` otherwise.
"""

from __future__ import annotations

import abc
import asyncio
import ipaddress
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal, TypeVar

import aetcd
import aetcd.exceptions
import aetcd.rpc
import aetcd.rtypes
import aetcd.watcher
import grpc

from standby.config import Configuration, ConfigurationError, options
from standby.ha import HighAvailabilityError

_log = logging.getLogger(__name__)

T = TypeVar("T")

ENDPOINTS_KEY = "high-availability.etcd.endpoints"
DEFAULT_ENDPOINT = "127.0.0.1:2379"


# --------------------------------------------------------------------------------------------- errors


class EtcdError(HighAvailabilityError):
    """An etcd request failed; the message names the request, the key and the endpoints."""


class EtcdClientClosedError(EtcdError):
    """The client was closed (its services were closed); background loops stop on this error."""


class EtcdUnavailableError(EtcdError):
    """etcd could not be reached or did not answer within the connection timeout.

    For a write the outcome is unknown: it may have been applied.
    """


# --------------------------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class EtcdEndpoint:
    """One etcd client endpoint; ``secure`` is True for ``https://`` URLs."""

    host: str
    port: int
    secure: bool = False

    @staticmethod
    def parse(text: str) -> EtcdEndpoint:
        """Parse ``host:port``, ``http://host:port``, ``https://host:port`` or ``[v6]:port``."""
        raw = text.strip()
        secure = False
        for scheme, is_secure in (("http://", False), ("https://", True)):
            if raw.lower().startswith(scheme):
                raw, secure = raw[len(scheme) :], is_secure
                break
        raw = raw.rstrip("/")
        host, sep, port_text = raw.rpartition(":")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ConfigurationError(
                f"Invalid etcd endpoint {text!r} in '{ENDPOINTS_KEY}': expected 'host:port' "
                "(or 'http://host:port', 'https://host:port') with a port between 1 and 65535"
            )
        return EtcdEndpoint(host, int(port_text), secure)

    def ip_version(self) -> int | None:
        try:
            return ipaddress.ip_address(self.host).version
        except ValueError:
            return None

    def __str__(self) -> str:
        host = f"[{self.host}]" if self.ip_version() == 6 else self.host
        return f"{host}:{self.port}"


def _seconds(value: timedelta | float | int | None) -> float | None:
    if value is None:
        return None
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


@dataclass(frozen=True)
class EtcdSettings:
    """Everything the etcd backend reads from the configuration (``high-availability.etcd.*``)."""

    endpoints: tuple[EtcdEndpoint, ...] = (EtcdEndpoint("127.0.0.1", 2379),)
    root: str = "/standby"
    cluster_id: str = "/default"
    #: seconds; etcd grants whole seconds (rounded up)
    lease_ttl: float = 10.0
    #: seconds; None means a third of the lease TTL
    keep_alive_interval: float | None = None
    #: seconds; deadline of connecting and of each request
    connection_timeout: float = 5.0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls_ca_file: str | None = None
    tls_cert_file: str | None = None
    tls_key_file: str | None = None

    def __post_init__(self) -> None:
        if not self.endpoints:
            raise ConfigurationError(f"'{ENDPOINTS_KEY}' is empty; name at least one etcd endpoint host:port")
        if self.lease_ttl < 1:
            raise ConfigurationError(
                f"Invalid value {self.lease_ttl!r} s for 'high-availability.etcd.lease-ttl': etcd leases last "
                "at least 1 s"
            )
        if self.keep_alive_interval is not None and not 0 < self.keep_alive_interval < self.lease_ttl:
            raise ConfigurationError(
                f"Invalid value {self.keep_alive_interval!r} s for 'high-availability.etcd.keep-alive-interval': "
                f"it must be positive and shorter than the lease TTL ({self.lease_ttl} s)"
            )
        if self.connection_timeout <= 0:
            raise ConfigurationError(
                f"Invalid value {self.connection_timeout!r} s for 'high-availability.etcd.connection-timeout': "
                "expected a positive duration"
            )
        if (self.username is None) != (self.password is None):
            raise ConfigurationError(
                "etcd authentication needs both 'high-availability.etcd.username' and "
                "'high-availability.etcd.password' (only one is set)"
            )
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ConfigurationError(
                "Mutual TLS with etcd needs both 'high-availability.etcd.tls.cert-file' and "
                "'high-availability.etcd.tls.key-file' (only one is set)"
            )

    @property
    def lease_ttl_seconds(self) -> int:
        """The TTL requested from etcd (whole seconds, rounded up)."""
        return max(1, math.ceil(self.lease_ttl))

    @property
    def effective_keep_alive_interval(self) -> float:
        if self.keep_alive_interval is not None:
            return self.keep_alive_interval
        return self.lease_ttl_seconds / 3

    @property
    def uses_tls(self) -> bool:
        return (
            self.tls_ca_file is not None
            or self.tls_cert_file is not None
            or any(e.secure for e in self.endpoints)
        )

    @property
    def cluster_prefix(self) -> str:
        """``<root>/<cluster-id>`` with single slashes and a leading one, e.g. ``/standby/default``."""
        return join_key(self.root, self.cluster_id)

    def describe_endpoints(self) -> str:
        return ",".join(str(e) for e in self.endpoints)

    @staticmethod
    def from_configuration(config: Configuration) -> EtcdSettings:
        """Read ``high-availability.etcd.*`` and ``high-availability.cluster-id``."""
        raw_endpoints = config.get(options.HA_ETCD_ENDPOINTS) or [DEFAULT_ENDPOINT]
        endpoints = tuple(
            EtcdEndpoint.parse(e) for item in raw_endpoints for e in str(item).split(",") if e.strip()
        )
        ttl = _seconds(config.get(options.HA_ETCD_LEASE_TTL))
        return EtcdSettings(
            endpoints=endpoints,
            root=config.get(options.HA_ETCD_ROOT),
            cluster_id=config.get(options.HA_CLUSTER_ID),
            lease_ttl=ttl if ttl is not None else 10.0,
            keep_alive_interval=_seconds(config.get(options.HA_ETCD_KEEP_ALIVE_INTERVAL)),
            connection_timeout=_seconds(config.get(options.HA_ETCD_CONNECTION_TIMEOUT)) or 5.0,
            username=config.get(options.HA_ETCD_USERNAME),
            password=config.get(options.HA_ETCD_PASSWORD),
            tls_ca_file=config.get(options.HA_ETCD_TLS_CA_FILE),
            tls_cert_file=config.get(options.HA_ETCD_TLS_CERT_FILE),
            tls_key_file=config.get(options.HA_ETCD_TLS_KEY_FILE),
        )


def join_key(*segments: str) -> str:
    """Join non-empty, slash-trimmed segments with ``/`` and a leading ``/`` (Flink's generateZookeeperPath)."""
    parts = [p for s in segments for p in s.split("/") if p]
    return "/" + "/".join(parts)


def prefix_range_end(prefix: bytes) -> bytes:
    """The ``range_end`` that selects every key starting with ``prefix``."""
    as_list = bytearray(prefix)
    for i in reversed(range(len(as_list))):
        if as_list[i] < 0xFF:
            as_list[i] += 1
            return bytes(as_list[: i + 1])
    return b"\0"


# --------------------------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class KeyValue:
    """One etcd key-value with its revisions (``create_revision`` 0 means absent)."""

    key: bytes
    value: bytes
    create_revision: int
    mod_revision: int
    version: int
    lease: int


@dataclass(frozen=True, slots=True)
class RangeResult:
    kvs: list[KeyValue]
    #: store revision at which the read was served
    revision: int


@dataclass(frozen=True, slots=True)
class WatchEvent:
    kind: Literal["PUT", "DELETE"]
    kv: KeyValue


def _kv(raw: Any) -> KeyValue:
    return KeyValue(
        key=bytes(raw.key),
        value=bytes(raw.value),
        create_revision=int(raw.create_revision),
        mod_revision=int(raw.mod_revision),
        version=int(raw.version),
        lease=int(raw.lease),
    )


# --------------------------------------------------------------------------------------------- transactions


@dataclass(frozen=True, slots=True)
class Compare:
    """A txn comparison; with ``prefix=True`` it must hold for every key under ``key`` (vacuously true if none,
    except for ``value``)."""

    key: bytes
    target: Literal["create", "mod", "version", "value"]
    op: Literal["==", "!=", "<", ">"]
    operand: int | bytes
    prefix: bool = False

    @staticmethod
    def create_revision(key: bytes, op: Literal["==", "!=", "<", ">"], revision: int) -> Compare:
        return Compare(key, "create", op, revision)

    @staticmethod
    def mod_revision(key: bytes, op: Literal["==", "!=", "<", ">"], revision: int) -> Compare:
        return Compare(key, "mod", op, revision)

    @staticmethod
    def no_keys_under(prefix: bytes) -> Compare:
        """True iff no key starts with ``prefix``."""
        return Compare(prefix, "create", "==", 0, prefix=True)


@dataclass(frozen=True, slots=True)
class Put:
    key: bytes
    value: bytes
    lease: int = 0


@dataclass(frozen=True, slots=True)
class Delete:
    key: bytes
    prefix: bool = False


@dataclass(frozen=True, slots=True)
class Get:
    key: bytes
    prefix: bool = False


Op = Put | Delete | Get


@dataclass(frozen=True, slots=True)
class TxnResult:
    succeeded: bool
    #: one entry per op of the branch taken: ``list[KeyValue]`` for a Get, ``int`` (keys deleted) for a Delete,
    #: ``None`` for a Put
    responses: list[list[KeyValue] | int | None]

    def get_result(self, index: int) -> list[KeyValue]:
        result = self.responses[index]
        if not isinstance(result, list):
            raise TypeError(f"txn response {index} is not a Get result: {result!r}")
        return result


# --------------------------------------------------------------------------------------------- watches


class EtcdWatch:
    """An open etcd watch: iterate for events; iteration ends after :meth:`cancel` and raises
    :class:`EtcdError` when the watch stream breaks (connection lost, revision compacted)."""

    def __init__(self, raw: Any, description: str, client_description: str) -> None:
        self._raw = raw
        self._description = description
        self._client_description = client_description

    async def events(self) -> AsyncIterator[WatchEvent]:
        try:
            async for event in self._raw:
                kind: Literal["PUT", "DELETE"] = "DELETE" if str(event.kind).endswith("DELETE") else "PUT"
                yield WatchEvent(kind, _kv(event.kv))
        except aetcd.exceptions.RevisionCompactedError as e:
            raise EtcdCompactedError(
                f"The etcd watch on {self._description} at {self._client_description} lost events: {e}",
                e.compacted_revision,
            ) from e
        except aetcd.exceptions.ClientError as e:
            raise _unavailable_or_error(e, f"watch on {self._description}", self._client_description) from e
        except grpc.RpcError as e:
            raise EtcdUnavailableError(
                f"The etcd watch on {self._description} at {self._client_description} broke: {e}"
            ) from e

    async def cancel(self) -> None:
        try:
            await self._raw.cancel()
        except Exception as e:  # cancelling a watch on a dead stream is not an error for us
            _log.debug("Cancelling the watch on %s failed: %s", self._description, e)


class EtcdCompactedError(EtcdError):
    """A watch started at a revision etcd already compacted away; re-read and watch from the current revision."""

    def __init__(self, message: str, compacted_revision: int) -> None:
        super().__init__(message)
        self.compacted_revision = compacted_revision


# --------------------------------------------------------------------------------------------- client


def _unavailable_or_error(error: BaseException, what: str, where: str) -> EtcdError:
    if isinstance(
        error,
        aetcd.exceptions.ConnectionFailedError | aetcd.exceptions.ConnectionTimeoutError | TimeoutError,
    ):
        return EtcdUnavailableError(
            f"etcd {what} failed at {where}: {str(error) or 'no answer in time'}. Check that etcd is running and reachable "
            f"('{ENDPOINTS_KEY}') and raise 'high-availability.etcd.connection-timeout' if it is slow."
        )
    return EtcdError(f"etcd {what} failed at {where}: {error!r}")


class _ChannelClient(aetcd.Client):  # type: ignore[misc]  # aetcd is untyped
    """``aetcd.Client`` whose channel is opened by us: several endpoints and TLS.

    Mirrors ``aetcd.Client.connect`` of aetcd 1.0 (stubs, authentication, watcher), only the channel differs.
    """

    _is_connecting: bool

    def __init__(
        self,
        target: str,
        credentials: grpc.ChannelCredentials | None,
        channel_options: Sequence[tuple[str, Any]],
        username: str | None,
        password: str | None,
        timeout: float,
    ) -> None:
        super().__init__(username=username, password=password, timeout=timeout)
        self._target = target
        self._credentials = credentials
        self._channel_options = list(channel_options)

    async def connect(self) -> None:
        if self._connected.is_set():
            return
        if self._is_connecting:
            async with asyncio.timeout(self._connect_wait_timeout):
                await self._connected.wait()
            return
        rpc = aetcd.rpc
        try:
            self._is_connecting = True
            if self._credentials is not None:
                self.channel = grpc.aio.secure_channel(
                    self._target, self._credentials, options=self._channel_options
                )
            else:
                self.channel = grpc.aio.insecure_channel(self._target, options=self._channel_options)
            if self._username is not None and self._password is not None:
                self.auth_stub = rpc.AuthStub(self.channel)
                response = await self.auth_stub.Authenticate(
                    rpc.AuthenticateRequest(name=self._username, password=self._password),
                    timeout=self._timeout,
                )
                self.metadata = (("token", response.token),)
            self.kvstub = rpc.KVStub(self.channel)
            self.clusterstub = rpc.ClusterStub(self.channel)
            self.leasestub = rpc.LeaseStub(self.channel)
            self.maintenancestub = rpc.MaintenanceStub(self.channel)
            self._watcher = aetcd.watcher.Watcher(
                rpc.WatchStub(self.channel), timeout=self._timeout, metadata=self.metadata
            )
            self._connected.set()
        except grpc.aio.AioRpcError as e:
            aetcd.exceptions._handle_exception(e)
        finally:
            self._is_connecting = False


class EtcdClient:
    """The backend's typed view of etcd: KV reads, puts, deletes, transactions, leases and watches.

    One client per services instance (per JobManager process). Not thread-safe; use on one event loop.
    """

    def __init__(self, settings: EtcdSettings) -> None:
        self.settings = settings
        self._timeout = settings.connection_timeout
        self._client: Any = None
        self._connect_lock = asyncio.Lock()
        self._closed = False

    @property
    def description(self) -> str:
        return self.settings.describe_endpoints()

    # ----------------------------------------------------------------------------------------- connection

    async def _target(self) -> tuple[str, list[tuple[str, Any]]]:
        endpoints = self.settings.endpoints
        extra: list[tuple[str, Any]] = []
        if len(endpoints) == 1:
            return str(endpoints[0]), extra
        versions = {e.ip_version() for e in endpoints}
        resolved: list[tuple[int, str, int]] = []
        if None in versions:
            # gRPC's ipv4:/ipv6: targets take addresses only: resolve host names once, here.
            loop = asyncio.get_running_loop()
            for endpoint in endpoints:
                try:
                    infos = await loop.getaddrinfo(endpoint.host, endpoint.port)
                except OSError as e:
                    raise ConfigurationError(
                        f"Cannot resolve etcd endpoint {endpoint} of '{ENDPOINTS_KEY}': {e}"
                    ) from e
                address = str(infos[0][4][0])
                resolved.append((ipaddress.ip_address(address).version, address, endpoint.port))
            if self.settings.uses_tls:
                extra.append(("grpc.ssl_target_name_override", endpoints[0].host))
        else:
            resolved = [(e.ip_version() or 4, e.host, e.port) for e in endpoints]
        families = {v for v, _, _ in resolved}
        if len(families) != 1:
            raise ConfigurationError(
                f"'{ENDPOINTS_KEY}' mixes IPv4 and IPv6 endpoints ({self.description}); use one address family"
            )
        if families == {6}:
            return "ipv6:" + ",".join(f"[{h}]:{p}" for _, h, p in resolved), extra
        return "ipv4:" + ",".join(f"{h}:{p}" for _, h, p in resolved), extra

    def _credentials(self) -> grpc.ChannelCredentials | None:
        s = self.settings
        if not s.uses_tls:
            return None

        def read(path: str | None, key: str) -> bytes | None:
            if path is None:
                return None
            try:
                return Path(path).read_bytes()
            except OSError as e:
                raise ConfigurationError(f"Cannot read '{key}' file {path}: {e}") from e

        return grpc.ssl_channel_credentials(
            root_certificates=read(s.tls_ca_file, "high-availability.etcd.tls.ca-file"),
            private_key=read(s.tls_key_file, "high-availability.etcd.tls.key-file"),
            certificate_chain=read(s.tls_cert_file, "high-availability.etcd.tls.cert-file"),
        )

    async def _connected(self) -> Any:
        if self._closed:
            raise EtcdClientClosedError(f"The etcd client of {self.description} is closed")
        if self._client is not None:
            return self._client
        async with self._connect_lock:
            if self._client is None:
                target, extra = await self._target()
                interval_ms = int(max(1.0, self.settings.connection_timeout) * 1000)
                channel_options: list[tuple[str, Any]] = [
                    ("grpc.lb_policy_name", "pick_first"),
                    # Reconnect quickly after a member restarts (gRPC's default backoff grows to 120 s).
                    # (grpc.min_reconnect_backoff_ms stays at its default: it is also the connect timeout)
                    ("grpc.initial_reconnect_backoff_ms", 100),
                    ("grpc.max_reconnect_backoff_ms", 1000),
                    # Detect dead connections under idle watches; etcd refuses pings more often than every 5 s.
                    ("grpc.keepalive_time_ms", 10_000),
                    ("grpc.keepalive_timeout_ms", interval_ms),
                    *extra,
                ]
                client = _ChannelClient(
                    target,
                    self._credentials(),
                    channel_options,
                    self.settings.username,
                    self.settings.password,
                    self._timeout,
                )
                try:
                    async with asyncio.timeout(self._timeout):
                        await client.connect()
                except (aetcd.exceptions.ClientError, TimeoutError) as e:
                    await client.close()
                    raise _unavailable_or_error(e, "connect", self.description) from e
                self._client = client
        return self._client

    async def connect(self) -> None:
        """Open the channel and wait until etcd answers a read (bounded by the connection timeout)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout
        delay = 0.05
        while True:
            try:
                await self._call(
                    "connect", lambda c: c.get_range(b"\0", b"\0\0"), max(0.05, deadline - loop.time())
                )
                return
            except EtcdUnavailableError:
                if loop.time() + delay >= deadline:
                    raise
            await asyncio.sleep(delay)  # first connection attempts may fail while the channel comes up
            delay = min(delay * 2, 0.5)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        client, self._client = self._client, None
        if client is not None:
            try:
                async with asyncio.timeout(self._timeout):
                    await client.close()
            except Exception as e:
                _log.debug("Closing the etcd client of %s failed: %s", self.description, e)

    async def _call(self, what: str, fn: Callable[[Any], Awaitable[T]], timeout: float | None = None) -> T:
        client = await self._connected()
        try:
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation of the caller
            async with asyncio.timeout(timeout if timeout is not None else self._timeout):
                return await fn(client)
        except (aetcd.exceptions.ClientError, TimeoutError) as e:
            raise _unavailable_or_error(e, what, self.description) from e
        except grpc.RpcError as e:
            raise EtcdUnavailableError(f"etcd {what} failed at {self.description}: {e}") from e

    # ----------------------------------------------------------------------------------------- KV

    async def get(self, key: bytes) -> tuple[KeyValue | None, int]:
        """The key (or None) and the revision the read was served at."""
        result = await self._call(f"get of {key!r}", lambda c: c.get_range(key, key + b"\0"))
        kvs = [_kv(kv) for kv in result.kvs]
        return (kvs[0] if kvs else None), int(result.header.revision)

    async def get_prefix(self, prefix: bytes, *, keys_only: bool = False) -> RangeResult:
        """Every key under ``prefix``, ordered by key."""
        result = await self._call(
            f"range read of {prefix!r}",
            lambda c: c.get_prefix(prefix, sort_order="ascend", sort_target="key", keys_only=keys_only),
        )
        return RangeResult([_kv(kv) for kv in result.kvs], int(result.header.revision))

    async def put(self, key: bytes, value: bytes, lease: int = 0) -> int:
        result = await self._call(f"put of {key!r}", lambda c: c.put(key, value, lease=lease or None))
        return int(result.header.revision)

    async def delete(self, key: bytes) -> bool:
        result = await self._call(f"delete of {key!r}", lambda c: c.delete(key))
        return result is not None

    async def delete_prefix(self, prefix: bytes) -> int:
        result = await self._call(f"delete of every key under {prefix!r}", lambda c: c.delete_prefix(prefix))
        return int(result.deleted)

    async def txn(
        self,
        compare: Sequence[Compare],
        success: Sequence[Op],
        failure: Sequence[Op] = (),
        *,
        what: str = "txn",
    ) -> TxnResult:
        """One atomic transaction: ``success`` ops if every comparison holds, else ``failure`` ops."""

        async def run(c: Any) -> tuple[bool, list[Any]]:
            t = c.transactions
            compares = []
            for cmp in compare:
                target = {"create": t.create, "mod": t.mod, "version": t.version, "value": t.value}[
                    cmp.target
                ]
                built = target(cmp.key, prefix_range_end(cmp.key) if cmp.prefix else None)
                if cmp.op == "==":
                    built = built == cmp.operand
                elif cmp.op == "!=":
                    built = built != cmp.operand
                elif cmp.op == "<":
                    built = built < cmp.operand
                else:
                    built = built > cmp.operand
                compares.append(built)

            def ops(items: Sequence[Op]) -> list[Any]:
                out: list[Any] = []
                for op in items:
                    if isinstance(op, Put):
                        out.append(t.put(op.key, op.value, lease=op.lease or None))
                    elif isinstance(op, Delete):
                        out.append(t.delete(op.key, prefix_range_end(op.key) if op.prefix else None))
                    else:
                        out.append(t.get(op.key, prefix_range_end(op.key) if op.prefix else None))
                return out

            succeeded, responses = await c.transaction(
                compare=compares, success=ops(success), failure=ops(failure)
            )
            return bool(succeeded), list(responses)

        succeeded, raw = await self._call(what, run)
        branch = success if succeeded else failure
        responses: list[list[KeyValue] | int | None] = []
        for op, response in zip(branch, raw, strict=True):
            if isinstance(op, Get):
                responses.append([_kv(get) for _value, get in response])
            elif isinstance(op, Delete):
                responses.append(int(response.response_delete_range.deleted))
            else:
                responses.append(None)
        return TxnResult(succeeded, responses)

    async def compact(self, revision: int) -> None:
        """Compact etcd's history up to ``revision`` (tools and tests; etcd usually auto-compacts)."""
        await self._call(f"compaction at revision {revision}", lambda c: c.compact(revision, physical=True))

    # ----------------------------------------------------------------------------------------- leases

    async def grant_lease(self, ttl: int) -> tuple[int, int]:
        """A new lease: ``(lease id, granted TTL in seconds)``."""
        lease = await self._call(f"grant of a {ttl} s lease", lambda c: c.lease(ttl))
        return int(lease.id), int(lease.ttl)

    async def keep_alive_once(self, lease_id: int, timeout: float | None = None) -> int:
        """Refresh the lease; the remaining TTL in seconds, ``<= 0`` when the lease expired or does not exist."""
        reply = await self._call(
            f"keep-alive of lease {lease_id:x}", lambda c: c.refresh_lease(lease_id), timeout
        )
        return int(reply.TTL) if reply is not None else 0

    async def revoke_lease(self, lease_id: int, timeout: float | None = None) -> None:
        """Revoke the lease (its keys are deleted at once); an unknown lease is not an error."""
        try:
            await self._call(f"revoke of lease {lease_id:x}", lambda c: c.revoke_lease(lease_id), timeout)
        except EtcdError as e:
            if "not found" in str(e):
                return
            raise

    # ----------------------------------------------------------------------------------------- watches

    async def watch(
        self,
        key: bytes,
        *,
        prefix: bool = False,
        start_revision: int | None = None,
        only: Literal["PUT", "DELETE"] | None = None,
    ) -> EtcdWatch:
        """Watch ``key`` (or every key under it), from ``start_revision`` (inclusive) or from now."""
        kind = None
        if only is not None:
            kind = aetcd.rtypes.EventKind.PUT if only == "PUT" else aetcd.rtypes.EventKind.DELETE
        description = f"{key!r}{' (prefix)' if prefix else ''}"
        raw = await self._call(
            f"watch of {description}",
            lambda c: c.watch(
                key,
                range_end=prefix_range_end(key) if prefix else None,
                start_revision=start_revision,
                kind=kind,
            ),
        )
        return EtcdWatch(raw, description, self.description)


class EtcdClientFactory(abc.ABC):
    """Creates the etcd client of a services instance; replace it in tests to wrap or observe the client."""

    @abc.abstractmethod
    def create_client(self, settings: EtcdSettings) -> EtcdClient: ...


class DefaultEtcdClientFactory(EtcdClientFactory):
    def create_client(self, settings: EtcdSettings) -> EtcdClient:
        return EtcdClient(settings)
