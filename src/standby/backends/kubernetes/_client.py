"""The Kubernetes client of the HA backend: ConfigMap CRUD, compare-and-swap updates and watches (lightkube async).

``KubernetesClient`` is the seam (Flink's ``FlinkKubeClient``, reduced to what HA needs); ``LightkubeClient`` is the
real one, built by ``LightkubeClientFactory`` from ``kubernetes.config.file``/``kubernetes.context`` or the pod's
service account. ``check_and_update_config_map`` is Flink's ``checkAndUpdateConfigMap``: GET, let a function decide,
PUT with the ``resourceVersion`` read (409 Conflict if anybody wrote in between), retried.

Every API call the backend makes goes through ``KubernetesClient``; ``REQUIRED_API_CALLS`` lists them as RBAC
(verb, resource) pairs, and the deployment's Role (``deploy/kubernetes/rbac.yaml``) grants exactly these.
"""

from __future__ import annotations

import abc
import asyncio
import dataclasses
import logging
import os
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Final

import httpx2
from lightkube import AsyncClient, KubeConfig
from lightkube.core.exceptions import ApiError, ConfigError
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import ConfigMap

from standby.config import Configuration, ConfigurationError, options
from standby.ha import HighAvailabilityError, PossibleInconsistentStateError

_log = logging.getLogger(__name__)

CONFIG_MAPS: Final = "configmaps"

#: Every (verb, resource) the backend calls, as RBAC names them: get/list/watch to read and follow the ConfigMaps
#: (a watch by name is a list+watch with ``fieldSelector=metadata.name``), create/update (PUT with resourceVersion)
#: to write them, delete for cleanup. No patch, no deletecollection. Keep in sync with ``LightkubeClient``.
REQUIRED_API_CALLS: Final[frozenset[tuple[str, str]]] = frozenset(
    {
        ("get", CONFIG_MAPS),
        ("list", CONFIG_MAPS),
        ("watch", CONFIG_MAPS),
        ("create", CONFIG_MAPS),
        ("update", CONFIG_MAPS),
        ("delete", CONFIG_MAPS),
    }
)

#: The service account files of a pod (Kubernetes' in-cluster configuration).
SERVICE_ACCOUNT_DIR: Final = Path("/var/run/secrets/kubernetes.io/serviceaccount")


# ------------------------------------------------------------------------------------------------ model and errors


@dataclass(frozen=True)
class KubernetesConfigMap:
    """An immutable view of a ConfigMap (Flink's ``KubernetesConfigMap``); change it with ``evolve``."""

    name: str
    data: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    #: None for an object not read from the server; a PUT with it is a compare-and-swap on this version
    resource_version: str | None = None

    def evolve(
        self,
        *,
        data: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> KubernetesConfigMap:
        """A copy with some parts replaced (same name and resourceVersion)."""
        changes: dict[str, Any] = {}
        if data is not None:
            changes["data"] = dict(data)
        if annotations is not None:
            changes["annotations"] = dict(annotations)
        if labels is not None:
            changes["labels"] = dict(labels)
        return dataclasses.replace(self, **changes)


class KubernetesError(HighAvailabilityError):
    """Flink's ``KubernetesException``: a Kubernetes API call of the HA backend failed."""

    #: True when the request may have been applied although it failed (timeout, reset, 5xx)
    ambiguous: bool = False
    #: True when the same call may succeed later (connection problems, 409, 429, 5xx)
    retryable: bool = False


class KubernetesApiError(KubernetesError):
    """The API server answered with an error status."""

    def __init__(self, message: str, code: int, reason: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        # 429 and 503 are refusals before processing; other 5xx may come after the write was applied.
        self.retryable = code in (409, 429) or code >= 500
        self.ambiguous = code >= 500 and code != 503


class KubernetesConnectionError(KubernetesError):
    """The API server could not be reached, or the connection broke before an answer."""

    def __init__(self, message: str, *, ambiguous: bool) -> None:
        super().__init__(message)
        self.retryable = True
        self.ambiguous = ambiguous


class ConfigMapNotFoundError(KubernetesApiError):
    def __init__(self, message: str) -> None:
        super().__init__(message, 404, "NotFound")
        self.retryable = False


class ConfigMapConflictError(KubernetesApiError):
    """409 Conflict: the ConfigMap changed since it was read (optimistic concurrency)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, 409, "Conflict")


class ConfigMapAlreadyExistsError(KubernetesApiError):
    def __init__(self, message: str) -> None:
        super().__init__(message, 409, "AlreadyExists")
        self.retryable = False


class WatchExpiredError(KubernetesApiError):
    """410 Gone: the watch's resourceVersion is older than the server keeps; re-list and watch again."""

    def __init__(self, message: str) -> None:
        super().__init__(message, 410, "Expired")
        self.retryable = True


@dataclass(frozen=True)
class WatchEvent:
    """One event of a ConfigMap watch: ``type`` is ADDED, MODIFIED, DELETED or BOOKMARK."""

    type: str
    config_map: KubernetesConfigMap


# ------------------------------------------------------------------------------------------------ the seam


class KubernetesClient(abc.ABC):
    """The ConfigMap operations of the HA backend, in one namespace. Errors are ``KubernetesError`` subclasses."""

    @property
    @abc.abstractmethod
    def namespace(self) -> str: ...

    @abc.abstractmethod
    async def get_config_map(self, name: str) -> KubernetesConfigMap | None:
        """The ConfigMap, or None when it does not exist."""

    async def get_config_map_version(self, name: str) -> str | None:
        """The ConfigMap's resourceVersion now (None when it does not exist), as linearizable as a full GET.

        To tell whether a ConfigMap read earlier is still current without transferring its data again; this
        default reads the whole ConfigMap, ``LightkubeClient`` asks for its metadata only."""
        current = await self.get_config_map(name)
        return None if current is None else current.resource_version

    @abc.abstractmethod
    async def list_config_map(self, name: str) -> tuple[KubernetesConfigMap | None, str]:
        """The ConfigMap (None if absent) and the list's resourceVersion to start a watch from."""

    @abc.abstractmethod
    async def create_config_map(self, config_map: KubernetesConfigMap) -> KubernetesConfigMap:
        """Create it; ``ConfigMapAlreadyExistsError`` if it exists."""

    @abc.abstractmethod
    async def replace_config_map(self, config_map: KubernetesConfigMap) -> KubernetesConfigMap:
        """PUT it; with a ``resource_version`` this is a compare-and-swap (``ConfigMapConflictError``)."""

    @abc.abstractmethod
    async def delete_config_map(self, name: str) -> bool:
        """Delete it; False when it did not exist."""

    @abc.abstractmethod
    def watch_config_map(self, name: str, resource_version: str) -> AsyncIterator[WatchEvent]:
        """Events of the ConfigMap ``name`` after ``resource_version``; ends or raises when the watch breaks
        (``WatchExpiredError`` for 410 Gone)."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    def update_lock(self, name: str) -> asyncio.Lock:
        """Serialises this process's read-check-updates of ConfigMap ``name``: concurrent writers of one process
        queue here instead of failing each other's compare-and-swap with 409 Conflicts."""
        locks: dict[str, asyncio.Lock] | None = getattr(self, "_update_locks", None)
        if locks is None:
            locks = {}
            self._update_locks = locks
        return locks.setdefault(name, asyncio.Lock())


class KubernetesClientFactory(abc.ABC):
    """Builds the client of one HA services instance (the seam tests and embedders may replace)."""

    @abc.abstractmethod
    def create(self, config: Configuration) -> KubernetesClient: ...


# ------------------------------------------------------------------------------------------------ lightkube


def _to_view(obj: ConfigMap) -> KubernetesConfigMap:
    metadata = obj.metadata
    if metadata is None or metadata.name is None:
        raise KubernetesError("The API server returned a ConfigMap without a name")
    return KubernetesConfigMap(
        name=metadata.name,
        data=dict(obj.data or {}),
        annotations=dict(metadata.annotations or {}),
        labels=dict(metadata.labels or {}),
        resource_version=metadata.resourceVersion,
    )


def _to_model(view: KubernetesConfigMap, namespace: str) -> ConfigMap:
    return ConfigMap(
        metadata=ObjectMeta(
            name=view.name,
            namespace=namespace,
            labels=dict(view.labels) or None,
            annotations=dict(view.annotations) or None,
            resourceVersion=view.resource_version,
        ),
        data=dict(view.data),
    )


def _error_for_code(code: int, reason: str | None, message: str) -> KubernetesError:
    if code == 404:
        return ConfigMapNotFoundError(message)
    if code == 409:
        if reason == "AlreadyExists":
            return ConfigMapAlreadyExistsError(message)
        return ConfigMapConflictError(message)
    if code == 410:
        return WatchExpiredError(message)
    return KubernetesApiError(message, code, reason)


def _translate(error: Exception, action: str, name: str) -> KubernetesError:
    """Our typed error for a lightkube/httpx2 error of ``action`` on ConfigMap ``name``."""
    if isinstance(error, ApiError):
        status = error.status
        code = status.code or (error.response.status_code if error.response is not None else 0)
        message = f"Cannot {action} ConfigMap {name}: {code} {status.reason or ''} {status.message or ''}"
        return _error_for_code(code, status.reason, message.rstrip())
    if isinstance(error, httpx2.HTTPStatusError):
        # e.g. a watch request answered with an error status: lightkube leaves it unconverted
        code = error.response.status_code
        return _error_for_code(code, None, f"Cannot {action} ConfigMap {name}: HTTP {code}")
    if isinstance(error, httpx2.TransportError):
        # A request that never reached the server was not applied; after that, nobody knows.
        not_sent = isinstance(error, httpx2.ConnectError | httpx2.ConnectTimeout | httpx2.PoolTimeout)
        return KubernetesConnectionError(
            f"Cannot {action} ConfigMap {name}: {type(error).__name__}: {error or 'connection failed'}",
            ambiguous=not not_sent,
        )
    return KubernetesError(f"Cannot {action} ConfigMap {name}: {error!r}")


_CLIENT_ERRORS: Final = (ApiError, httpx2.HTTPError)

#: The apiserver's metadata-only representation of an object (``PartialObjectMetadata``, GA since Kubernetes
#: 1.15), else the object itself: either way the answer carries ``metadata.resourceVersion``. Same RBAC verb (get).
METADATA_ONLY_ACCEPT: Final = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1, application/json"


class LightkubeClient(KubernetesClient):
    """``KubernetesClient`` on lightkube's ``AsyncClient``. The calls map to RBAC verbs as ``REQUIRED_API_CALLS``:
    GET by name = get, list with a name field selector = list, watch = watch, POST = create, PUT = update,
    DELETE = delete."""

    def __init__(self, client: AsyncClient, namespace: str, *, watch_server_timeout: int = 300) -> None:
        self._client = client
        self._namespace = namespace
        self._watch_server_timeout = watch_server_timeout

    @property
    def namespace(self) -> str:
        return self._namespace

    async def get_config_map(self, name: str) -> KubernetesConfigMap | None:
        try:
            obj = await self._client.get(ConfigMap, name, namespace=self._namespace)
        except _CLIENT_ERRORS as e:
            error = _translate(e, "get", name)
            if isinstance(error, ConfigMapNotFoundError):
                return None
            raise error from e
        return _to_view(obj)

    async def get_config_map_version(self, name: str) -> str | None:
        # lightkube's get() sends no Accept header; its request() (same decoding and errors) takes one. The body
        # decodes as a ConfigMap without data.
        try:
            obj = await self._client._client.request(
                "get",
                ConfigMap,
                name=name,
                namespace=self._namespace,
                headers={"Accept": METADATA_ONLY_ACCEPT},
            )
        except _CLIENT_ERRORS as e:
            error = _translate(e, "get", name)
            if isinstance(error, ConfigMapNotFoundError):
                return None
            raise error from e
        metadata = obj.metadata
        if metadata is None or not metadata.resourceVersion:
            raise KubernetesError(f"The API server returned ConfigMap {name} without a resourceVersion")
        return str(metadata.resourceVersion)

    async def list_config_map(self, name: str) -> tuple[KubernetesConfigMap | None, str]:
        found: KubernetesConfigMap | None = None
        try:
            listing = self._client.list(ConfigMap, namespace=self._namespace, fields={"metadata.name": name})
            async for obj in listing:
                view = _to_view(obj)
                if view.name == name:
                    found = view
            version = listing.resourceVersion
        except _CLIENT_ERRORS as e:
            raise _translate(e, "list", name) from e
        return found, version

    async def create_config_map(self, config_map: KubernetesConfigMap) -> KubernetesConfigMap:
        model = _to_model(dataclasses.replace(config_map, resource_version=None), self._namespace)
        try:
            obj = await self._client.create(model)
        except _CLIENT_ERRORS as e:
            raise _translate(e, "create", config_map.name) from e
        return _to_view(obj)

    async def replace_config_map(self, config_map: KubernetesConfigMap) -> KubernetesConfigMap:
        try:
            obj = await self._client.replace(_to_model(config_map, self._namespace))
        except _CLIENT_ERRORS as e:
            raise _translate(e, "update", config_map.name) from e
        return _to_view(obj)

    async def delete_config_map(self, name: str) -> bool:
        try:
            await self._client.delete(ConfigMap, name, namespace=self._namespace)
        except _CLIENT_ERRORS as e:
            error = _translate(e, "delete", name)
            if isinstance(error, ConfigMapNotFoundError):
                return False
            raise error from e
        return True

    async def watch_config_map(self, name: str, resource_version: str) -> AsyncIterator[WatchEvent]:
        # lightkube re-issues the watch from the last version it saw when the server ends the stream cleanly
        # (timeoutSeconds); errors (410 included) are raised to our watcher, which resumes or re-lists.
        stream = self._client.watch(
            ConfigMap,
            namespace=self._namespace,
            fields={"metadata.name": name},
            resource_version=resource_version,
            server_timeout=self._watch_server_timeout,
        )
        try:
            async for event_type, obj in stream:
                if event_type == "BOOKMARK":
                    version = obj.metadata.resourceVersion if obj.metadata is not None else None
                    yield WatchEvent("BOOKMARK", KubernetesConfigMap(name=name, resource_version=version))
                    continue
                yield WatchEvent(str(event_type), _to_view(obj))
        except _CLIENT_ERRORS as e:
            raise _translate(e, "watch", name) from e

    async def close(self) -> None:
        await self._client.close()


def _duration_seconds(value: timedelta) -> float:
    return value.total_seconds()


def load_kube_config(config: Configuration, service_account_dir: Path = SERVICE_ACCOUNT_DIR) -> KubeConfig:
    """Flink/fabric8 auto-configuration: ``kubernetes.config.file`` if set, else the pod's service account
    (``$KUBERNETES_SERVICE_HOST``/``_PORT`` and the files in ``service_account_dir``), else ``$KUBECONFIG`` or
    ``~/.kube/config``."""
    path = config.get(options.KUBERNETES_CONFIG_FILE)
    if path:
        try:
            return KubeConfig.from_file(path)
        except ConfigError as e:
            raise ConfigurationError(
                f"Invalid value {path!r} for '{options.KUBERNETES_CONFIG_FILE.key}': {e}. Point it at a readable "
                "kubeconfig file, or unset it to use the pod's service account."
            ) from e
    if os.environ.get("KUBERNETES_SERVICE_HOST") and (service_account_dir / "token").is_file():
        try:
            return KubeConfig.from_service_account(service_account_dir)
        except (ConfigError, KeyError) as e:
            raise ConfigurationError(f"Cannot use the in-cluster service account: {e}") from e
    fallback = os.environ.get("KUBECONFIG") or "~/.kube/config"
    try:
        return KubeConfig.from_file(fallback)
    except ConfigError as e:
        raise ConfigurationError(
            f"No Kubernetes client configuration: '{options.KUBERNETES_CONFIG_FILE.key}' is not set, this is not a "
            f"pod with a service account, and {fallback} cannot be read ({e}). Set "
            f"'{options.KUBERNETES_CONFIG_FILE.key}' to a kubeconfig file."
        ) from e


class LightkubeClientFactory(KubernetesClientFactory):
    """The default factory: lightkube ``AsyncClient`` in ``kubernetes.namespace``.

    ``trust_env`` is off: proxy variables of the environment do not apply to the API server connection.
    """

    def __init__(
        self, *, request_timeout: float = 10.0, service_account_dir: Path = SERVICE_ACCOUNT_DIR
    ) -> None:
        self._request_timeout = request_timeout
        self._service_account_dir = service_account_dir

    def create(self, config: Configuration) -> KubernetesClient:
        kube_config = load_kube_config(config, self._service_account_dir)
        context = config.get(options.KUBERNETES_CONTEXT)
        try:
            single = kube_config.get(context) if context else kube_config.get()
        except ConfigError as e:
            contexts = ", ".join(sorted(kube_config.contexts)) or "none"
            raise ConfigurationError(
                f"Invalid value {context!r} for '{options.KUBERNETES_CONTEXT.key}': {e}. "
                f"Contexts in the kubeconfig: {contexts}."
            ) from e
        if single is None:  # pragma: no cover - lightkube raises instead
            raise ConfigurationError("The kubeconfig names no context; set 'kubernetes.context'.")
        namespace = config.get(options.KUBERNETES_NAMESPACE)
        client = AsyncClient(
            single, namespace=namespace, timeout=httpx2.Timeout(self._request_timeout), trust_env=False
        )
        return LightkubeClient(client, namespace)


# ------------------------------------------------------------------------------------------------ retries and CAS


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries of ConfigMap compare-and-swap and watch reconnects.

    ``max_retries`` is ``kubernetes.transactional-operation.max-retries`` (Flink: 15). Flink retries a conflicting
    update at once, without delay; standby retries the first conflict at once too, then with full-jitter
    exponential backoff from ``initial_delay`` (50 ms), capped at ``max_delay`` (1 min) and, for CAS loops, at
    ``max_cas_delay`` (1 s): a conflict clears in milliseconds, and a longer wait only delays the write.
    """

    max_retries: int = 15
    initial_delay: float = 0.05
    max_delay: float = 60.0
    max_cas_delay: float = 1.0

    @staticmethod
    def from_configuration(config: Configuration) -> RetryPolicy:
        return RetryPolicy(
            max_retries=config.get(options.KUBERNETES_TRANSACTIONAL_OPERATION_MAX_RETRIES),
            initial_delay=_duration_seconds(
                config.get(options.KUBERNETES_TRANSACTIONAL_OPERATION_INITIAL_RETRY_DELAY)
            ),
            max_delay=_duration_seconds(
                config.get(options.KUBERNETES_TRANSACTIONAL_OPERATION_MAX_RETRY_DELAY)
            ),
        )

    def backoff(self, attempt: int, *, cap: float | None = None) -> float:
        """The delay before retry number ``attempt`` (1-based): 0 for the first, then jittered exponential."""
        if attempt <= 1:
            return 0.0
        limit = min(self.max_delay if cap is None else cap, self.initial_delay * (2 ** min(attempt - 2, 30)))
        return random.uniform(0, limit)

    def cas_backoff(self, attempt: int) -> float:
        return self.backoff(attempt, cap=min(self.max_delay, self.max_cas_delay))


UpdateFunction = Callable[[KubernetesConfigMap], Awaitable[KubernetesConfigMap | None]]


async def check_and_update_config_map(
    client: KubernetesClient, name: str, update: UpdateFunction, retry: RetryPolicy
) -> KubernetesConfigMap | None:
    """Flink's ``checkAndUpdateConfigMap``: GET ``name``, ``await update(cm)`` decides (None: no write), PUT with
    the resourceVersion read; retried on conflicts and transient errors up to ``retry.max_retries`` times.

    Returns the written ConfigMap, or None when ``update`` declined. Raises ``ConfigMapNotFoundError`` (not retried)
    when the ConfigMap does not exist, whatever ``update`` raises (not retried, except retryable
    ``KubernetesError``), and, when the retries run out,
    the last error — as ``PossibleInconsistentStateError`` if some attempt may have been applied (the caller must
    then keep the payload it wrote).
    """
    async with client.update_lock(name):
        return await _check_and_update(client, name, update, retry)


async def _check_and_update(
    client: KubernetesClient, name: str, update: UpdateFunction, retry: RetryPolicy
) -> KubernetesConfigMap | None:
    maybe_applied: KubernetesError | None = None
    last: KubernetesError | None = None
    for attempt in range(1, retry.max_retries + 2):
        if attempt > 1:
            delay = retry.cas_backoff(attempt - 1)
            if delay > 0:
                await asyncio.sleep(delay)  # backoff between retries, not synchronisation
        try:
            current = await client.get_config_map(name)
        except KubernetesError as e:
            if not e.retryable:
                raise
            last = e
            continue
        if current is None:
            raise ConfigMapNotFoundError(
                f"Cannot retry checkAndUpdateConfigMap with ConfigMap {name} because it does not exist."
            )
        try:
            updated = await update(current)
        except KubernetesError as e:
            if not e.retryable:  # e.g. the fence's read of the lock ConfigMap failed for a moment
                raise
            last = e
            continue
        if updated is None:
            return None
        try:
            return await client.replace_config_map(
                dataclasses.replace(updated, resource_version=current.resource_version)
            )
        except KubernetesError as e:
            if isinstance(e, ConfigMapNotFoundError):
                raise ConfigMapNotFoundError(f"ConfigMap {name} was deleted while it was updated: {e}") from e
            if not e.retryable:
                raise
            last = e
            if e.ambiguous:
                maybe_applied = e
            _log.debug("Update of ConfigMap %s failed (attempt %d): %s", name, attempt, e)
    assert last is not None
    if maybe_applied is not None:
        raise PossibleInconsistentStateError(
            f"Could not update ConfigMap {name} after {retry.max_retries + 1} attempts; an earlier attempt may "
            f"have been applied ({maybe_applied}). Last error: {last}"
        ) from last
    raise last


async def create_config_map_if_missing(
    client: KubernetesClient, config_map: KubernetesConfigMap, attempts: int = 10
) -> KubernetesConfigMap:
    """Flink's ``createConfigMapIfItDoesNotExist``: the existing ConfigMap, or a new one; up to ``attempts`` tries."""
    last: KubernetesError | None = None
    for _attempt in range(attempts):
        existing = await client.get_config_map(config_map.name)
        if existing is not None:
            return existing
        try:
            return await client.create_config_map(config_map)
        except ConfigMapAlreadyExistsError as e:
            last = e  # created concurrently: read it
        except KubernetesError as e:
            if not e.retryable:
                raise
            last = e
    raise KubernetesError(
        f"Could not create ConfigMap {config_map.name} after {attempts} attempts: {last}"
    ) from last
