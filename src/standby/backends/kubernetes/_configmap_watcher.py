"""A shared watch of one ConfigMap by name (Flink's ``KubernetesConfigMapSharedWatcher``, watch-by-name FLINK-33598).

Like an informer restricted to one object: it lists the ConfigMap (``fieldSelector=metadata.name=<name>``), then
watches from the list's resourceVersion, resumes from the last version seen when the stream breaks, and re-lists
when the server answers 410 Gone (the version is too old). The object it last saw is its cache; events are derived
against it, so subscribers get informer semantics: ``on_added`` when the ConfigMap appears (or when a subscriber
joins and it exists), ``on_modified`` when its resourceVersion changes, ``on_deleted`` when it disappears, even
when the change happened while the watch was down.

Errors: a watch that keeps failing is retried with bounded exponential backoff; subscribers get ``on_error`` when
an error is not retryable (e.g. 403 Forbidden) or after ``max_retries`` consecutive failures, and the watcher keeps
trying. Callbacks run on the event loop, in order, and must not block.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from ._client import (
    KubernetesClient,
    KubernetesConfigMap,
    KubernetesError,
    RetryPolicy,
    WatchExpiredError,
)

_log = logging.getLogger(__name__)


class ConfigMapEventHandler:
    """Flink's ``WatchCallbackHandler<KubernetesConfigMap>``; called on the event loop, must not block."""

    def on_added(self, config_map: KubernetesConfigMap) -> None:
        return None

    def on_modified(self, config_map: KubernetesConfigMap) -> None:
        return None

    def on_deleted(self, config_map: KubernetesConfigMap) -> None:
        return None

    def on_error(self, error: BaseException) -> None:
        return None


class ConfigMapSubscription:
    """A handler's registration on a ``SharedConfigMapWatcher``; ``close()`` ends it (idempotent)."""

    def __init__(self, watcher: SharedConfigMapWatcher, handler: ConfigMapEventHandler) -> None:
        self._watcher = watcher
        self.handler = handler
        self.active = True

    def close(self) -> None:
        if self.active:
            self.active = False
            self._watcher._unsubscribe(self)


class SharedConfigMapWatcher:
    """One list+watch of the ConfigMap ``name`` shared by every subscriber of a process."""

    def __init__(self, client: KubernetesClient, name: str, retry: RetryPolicy) -> None:
        self._client = client
        self._name = name
        self._retry = retry
        self._subscriptions: list[ConfigMapSubscription] = []
        self._cache: KubernetesConfigMap | None = None
        self._task: asyncio.Task[None] | None = None
        self._synced = asyncio.Event()
        self._closed = False
        #: how often the watch was (re-)listed, for tests and metrics
        self.list_count = 0

    @property
    def name(self) -> str:
        return self._name

    @property
    def cached(self) -> KubernetesConfigMap | None:
        """The ConfigMap as last seen (None: absent or not listed yet)."""
        return self._cache

    @property
    def synced(self) -> bool:
        return self._synced.is_set()

    async def wait_synced(self, timeout: float) -> None:
        """Wait until the first list completed (raises ``TimeoutError``)."""
        await asyncio.wait_for(self._synced.wait(), timeout)

    def subscribe(self, handler: ConfigMapEventHandler) -> ConfigMapSubscription:
        """Register ``handler``; starts the watch on first use. If the ConfigMap is cached, ``handler.on_added``
        is called right away with it (informer semantics: a late subscriber learns the current state)."""
        if self._closed:
            raise RuntimeError(f"The watcher of ConfigMap {self._name} is closed")
        subscription = ConfigMapSubscription(self, handler)
        self._subscriptions.append(subscription)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"configmap-watch:{self._name}"
            )
        elif self._cache is not None:
            self._call(subscription, "on_added", self._cache)
        return subscription

    def _unsubscribe(self, subscription: ConfigMapSubscription) -> None:
        with contextlib.suppress(ValueError):
            self._subscriptions.remove(subscription)

    async def close(self) -> None:
        """Stop watching; subscribers hear nothing more."""
        self._closed = True
        for subscription in list(self._subscriptions):
            subscription.active = False
        self._subscriptions.clear()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # ------------------------------------------------------------------------------------------------ dispatch

    def _call(self, subscription: ConfigMapSubscription, method: str, argument: object) -> None:
        if not subscription.active:
            return
        try:
            getattr(subscription.handler, method)(argument)
        except Exception:
            _log.exception("ConfigMap %s handler %s.%s failed", self._name, subscription.handler, method)

    def _dispatch(self, method: str, argument: object) -> None:
        for subscription in list(self._subscriptions):
            self._call(subscription, method, argument)

    def _observe(self, config_map: KubernetesConfigMap | None) -> None:
        """Derive the event from the cache: added / modified (new resourceVersion) / deleted."""
        previous, self._cache = self._cache, config_map
        if config_map is None:
            if previous is not None:
                self._dispatch("on_deleted", previous)
        elif previous is None:
            self._dispatch("on_added", config_map)
        elif previous.resource_version != config_map.resource_version:
            self._dispatch("on_modified", config_map)

    def _fail(self, error: BaseException) -> None:
        _log.warning("Watch of ConfigMap %s failed: %s", self._name, error)
        self._dispatch("on_error", error)

    # ------------------------------------------------------------------------------------------------ the loop

    async def _run(self) -> None:
        version: str | None = None  # None: (re-)list first
        failures = 0  # consecutive failures; reset by any successful list or event
        reported = False  # whether the subscribers were told about this streak of failures
        while not self._closed:
            try:
                if version is None:
                    current, version = await self._client.list_config_map(self._name)
                    self.list_count += 1
                    failures, reported = 0, False
                    self._observe(current)
                    self._synced.set()
                async for event in self._client.watch_config_map(self._name, version):
                    failures, reported = 0, False
                    if event.config_map.resource_version:
                        version = event.config_map.resource_version
                    if event.type == "BOOKMARK" or event.config_map.name != self._name:
                        continue
                    self._observe(None if event.type == "DELETED" else event.config_map)
                # the stream ended without an error: resume from the last version
            except asyncio.CancelledError:
                raise
            except Exception as e:
                failures += 1
                if isinstance(e, WatchExpiredError):
                    _log.info("Watch of ConfigMap %s expired (%s); listing it again", self._name, e)
                    version = None
                    if failures == 1:
                        continue  # re-list at once; a 410 right after a fresh list backs off below
                retryable = isinstance(e, KubernetesError) and e.retryable
                if not reported and (not retryable or failures > self._retry.max_retries):
                    reported = True
                    self._fail(
                        e
                        if not retryable
                        else KubernetesError(
                            f"Watch of ConfigMap {self._name} failed {failures} times in a row (still retrying): {e}"
                        )
                    )
                else:
                    _log.debug("Watch of ConfigMap %s failed (%d in a row): %s", self._name, failures, e)
                delay = self._retry.backoff(failures + 1)
                if delay > 0:
                    await asyncio.sleep(delay)  # reconnect backoff, not synchronisation
