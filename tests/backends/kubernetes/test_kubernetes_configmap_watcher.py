"""The shared ConfigMap watch: informer semantics, resume after a broken stream, re-list after 410 Gone, and error
forwarding — with the API test server's fault knobs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from standby.backends.kubernetes import (
    ConfigMapEventHandler,
    KubernetesClient,
    KubernetesConfigMap,
    RetryPolicy,
    SharedConfigMapWatcher,
)
from standby.testing.kubernetes_api_server import KubernetesApiTestServer

from .conftest import NAMESPACE, eventually

_TIMEOUT = 10.0


class RecordingHandler(ConfigMapEventHandler):
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, str]]] = []
        self.errors: list[BaseException] = []
        self._changed = asyncio.Event()

    def _record(self, kind: str, config_map: KubernetesConfigMap) -> None:
        self.events.append((kind, dict(config_map.data)))
        self._changed.set()

    def on_added(self, config_map: KubernetesConfigMap) -> None:
        self._record("added", config_map)

    def on_modified(self, config_map: KubernetesConfigMap) -> None:
        self._record("modified", config_map)

    def on_deleted(self, config_map: KubernetesConfigMap) -> None:
        self._record("deleted", config_map)

    def on_error(self, error: BaseException) -> None:
        self.errors.append(error)
        self._changed.set()

    async def wait_for(self, predicate: Callable[[], bool], what: str) -> None:
        async def loop() -> None:
            while not predicate():
                self._changed.clear()
                if predicate():
                    return
                await self._changed.wait()

        try:
            await asyncio.wait_for(loop(), _TIMEOUT)
        except TimeoutError:
            raise AssertionError(
                f"timed out waiting for {what}; events {self.events}, errors {self.errors}"
            ) from None

    async def wait_for_event(self, kind: str, data: dict[str, str]) -> None:
        await self.wait_for(lambda: (kind, data) in self.events, f"{kind} {data}")


@pytest.fixture
async def watcher(k8s_client: KubernetesClient) -> AsyncIterator[SharedConfigMapWatcher]:
    shared = SharedConfigMapWatcher(
        k8s_client, "cm", RetryPolicy(max_retries=2, initial_delay=0.01, max_delay=0.05)
    )
    yield shared
    await shared.close()


async def test_added_modified_deleted(
    k8s_server: KubernetesApiTestServer, watcher: SharedConfigMapWatcher
) -> None:
    handler = RecordingHandler()
    watcher.subscribe(handler)
    await watcher.wait_synced(_TIMEOUT)
    await k8s_server.wait_for_open_watches(1)
    k8s_server.put_configmap(NAMESPACE, "cm", {"k": "1"})
    k8s_server.put_configmap(NAMESPACE, "other", {"k": "x"})  # another name: not seen
    k8s_server.put_configmap(NAMESPACE, "cm", {"k": "2"})
    k8s_server.delete_configmap(NAMESPACE, "cm")
    await handler.wait_for_event("deleted", {"k": "2"})
    assert handler.events == [("added", {"k": "1"}), ("modified", {"k": "2"}), ("deleted", {"k": "2"})]


async def test_late_subscriber_learns_the_current_state(
    k8s_server: KubernetesApiTestServer, watcher: SharedConfigMapWatcher
) -> None:
    k8s_server.put_configmap(NAMESPACE, "cm", {"k": "1"})
    first = RecordingHandler()
    watcher.subscribe(first)
    await first.wait_for_event("added", {"k": "1"})
    late = RecordingHandler()
    subscription = watcher.subscribe(late)
    assert late.events == [("added", {"k": "1"})]
    subscription.close()
    k8s_server.put_configmap(NAMESPACE, "cm", {"k": "2"})
    await first.wait_for_event("modified", {"k": "2"})
    assert late.events == [("added", {"k": "1"})]


async def test_resumes_after_a_broken_stream_without_losing_events(
    k8s_server: KubernetesApiTestServer, watcher: SharedConfigMapWatcher
) -> None:
    k8s_server.put_configmap(NAMESPACE, "cm", {"k": "1"})
    handler = RecordingHandler()
    watcher.subscribe(handler)
    await handler.wait_for_event("added", {"k": "1"})
    await k8s_server.wait_for_open_watches(1)
    # break the connection, then change the ConfigMap twice before the watch is back
    k8s_server.faults.fail_next(1, code=503, watch=True)
    assert k8s_server.faults.drop_watches("reset") == 1
    k8s_server.put_configmap(NAMESPACE, "cm", {"k": "2"})
    k8s_server.put_configmap(NAMESPACE, "cm", {"k": "3"})
    await handler.wait_for_event("modified", {"k": "3"})
    assert ("modified", {"k": "2"}) in handler.events  # resumed from its version: nothing skipped
    assert watcher.list_count == 1  # resumed, not re-listed
    assert handler.errors == []
    assert [r.status for r in k8s_server.requests() if r.watch and r.status >= 400] == [503]


async def test_relists_after_410_gone(
    k8s_server: KubernetesApiTestServer, watcher: SharedConfigMapWatcher
) -> None:
    k8s_server.put_configmap(NAMESPACE, "cm", {"k": "1"})
    handler = RecordingHandler()
    watcher.subscribe(handler)
    await handler.wait_for_event("added", {"k": "1"})
    await k8s_server.wait_for_open_watches(1)
    # the watch cannot resume: its version is compacted away
    k8s_server.faults.compact_history()
    k8s_server.faults.drop_watches("expire")
    await eventually(lambda: watcher.list_count >= 2, "a re-list")
    k8s_server.put_configmap(NAMESPACE, "cm", {"k": "2"})
    await handler.wait_for_event("modified", {"k": "2"})
    assert handler.errors == []


async def test_deletion_while_the_watch_was_down_is_reported_by_the_relist(
    k8s_server: KubernetesApiTestServer, watcher: SharedConfigMapWatcher
) -> None:
    k8s_server.put_configmap(NAMESPACE, "cm", {"k": "1"})
    handler = RecordingHandler()
    watcher.subscribe(handler)
    await handler.wait_for_event("added", {"k": "1"})
    await k8s_server.wait_for_open_watches(1)
    k8s_server.faults.pause(timeout=_TIMEOUT)
    k8s_server.faults.drop_watches("reset")
    k8s_server.delete_configmap(NAMESPACE, "cm")
    k8s_server.faults.compact_history()
    k8s_server.faults.resume()
    await handler.wait_for_event("deleted", {"k": "1"})


async def test_forbidden_watch_is_reported_at_once(
    k8s_server: KubernetesApiTestServer, watcher: SharedConfigMapWatcher
) -> None:
    k8s_server.faults.fail_next(1, code=403, watch=True)
    handler = RecordingHandler()
    watcher.subscribe(handler)
    await handler.wait_for(lambda: bool(handler.errors), "an error")
    assert "403" in str(handler.errors[0])
    # and it keeps watching: a later change is seen
    k8s_server.put_configmap(NAMESPACE, "cm", {"k": "1"})
    await handler.wait_for_event("added", {"k": "1"})


async def test_persistent_failures_are_reported_after_max_retries(
    k8s_server: KubernetesApiTestServer, watcher: SharedConfigMapWatcher
) -> None:
    k8s_server.faults.fail_next(4, code=500, watch=True)
    handler = RecordingHandler()
    watcher.subscribe(handler)
    await handler.wait_for(lambda: bool(handler.errors), "an error")
    assert "3 times in a row" in str(handler.errors[0])
    k8s_server.put_configmap(NAMESPACE, "cm", {"k": "1"})
    await handler.wait_for_event("added", {"k": "1"})
    assert len(handler.errors) == 1
