"""The object store of the Kubernetes API test server: objects, resourceVersions, event history, watches.

It models what kube-apiserver over etcd guarantees and what HA code relies on:

* one cluster-wide, strictly increasing revision; every write (to any object) takes the next one and it
  becomes the object's ``metadata.resourceVersion`` (a decimal string on the wire);
* optimistic concurrency: an update or patch carrying a ``resourceVersion`` that is not the stored one
  fails with 409 Conflict; a delete with ``preconditions`` likewise; an update that changes nothing is not
  a write (same resourceVersion, no watch event), as etcd3's ``GuaranteedUpdate`` short-circuits it;
* a bounded event history: a watch (or an ``Exact`` list, or a ``continue`` token) may start from any
  revision still retained, anything older answers 410 Expired, as after etcd compaction;
* watch filtering as the watch cache does it: an object that stops matching a label selector is reported
  as DELETED, one that starts matching as ADDED.

All methods are synchronous and must be called on the event loop that serves the app (one thread), which
makes every operation atomic with respect to the others; only waiting is asynchronous.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import random
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from . import _errors as errors
from ._patch import JsonPatchError, json_patch, merge_patch
from ._resources import ResourceType, format_time
from ._selectors import FieldSelector, LabelSelector
from ._types import JsonObject

EventType = Literal["ADDED", "MODIFIED", "DELETED"]
PatchType = Literal["merge", "strategic", "json"]
WatchEndMode = Literal["end", "reset"]

#: Key of a stored object: (resource, namespace, name).
ObjectKey = tuple[ResourceType, str, str]

_META_ORDER = (
    "name",
    "generateName",
    "namespace",
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
)
# apiserver's generateName suffix alphabet (no vowels, no confusable characters), 5 characters.
_NAME_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
INITIAL_EVENTS_END_ANNOTATION = "k8s.io/initial-events-end"


@dataclass(frozen=True)
class StoreEvent:
    """One committed write, kept in the history for watch resume and consistent snapshots."""

    resource_version: int
    type: EventType
    resource: ResourceType
    namespace: str
    name: str
    #: the new state; for DELETED the last state stamped with the deletion's resourceVersion
    object: JsonObject
    #: the state before this write (None for ADDED)
    previous: JsonObject | None


@dataclass(frozen=True)
class ListResult:
    items: list[JsonObject]
    resource_version: int
    continue_token: str | None
    remaining_item_count: int | None


def _with_meta(obj: JsonObject, **changes: Any) -> JsonObject:
    """A copy of ``obj`` with metadata fields set (None removes) in the apiserver's field order."""
    meta = dict(obj.get("metadata", {}))
    for key, value in changes.items():
        if value is None:
            meta.pop(key, None)
        else:
            meta[key] = value
    ordered = {k: meta[k] for k in _META_ORDER if k in meta}
    ordered.update((k, v) for k, v in meta.items() if k not in ordered)
    result: JsonObject = {"kind": obj["kind"], "apiVersion": obj["apiVersion"], "metadata": ordered}
    result.update((k, v) for k, v in obj.items() if k not in result)
    return result


def _resource_version_of(obj: JsonObject) -> str:
    return str(obj.get("metadata", {}).get("resourceVersion", ""))


def parse_resource_version(value: str, what: str = "resourceVersion") -> int:
    try:
        number = int(value)
    except ValueError:
        number = -1
    if number < 0 or not value.isdigit():
        raise errors.bad_request(f'{what}: Invalid value: "{value}": must be a non-negative integer')
    return number


class Watch:
    """One open watch: its filter and the queue of events still to be sent.

    The store appends converted events; the HTTP handler drains them. ``end`` tells the handler to stop:
    ``"end"`` closes the stream cleanly (as a server-side timeout does), ``"reset"`` drops the connection.
    """

    def __init__(
        self,
        resource: ResourceType,
        namespace: str | None,
        labels: LabelSelector,
        fields: FieldSelector,
        max_backlog: int,
    ) -> None:
        self.resource = resource
        self.namespace = namespace
        self.labels = labels
        self.fields = fields
        self.pending: deque[tuple[str, JsonObject]] = deque()
        self.end: WatchEndMode | None = None
        self._wakeup = asyncio.Event()
        self._max_backlog = max_backlog

    def selects(self, obj: JsonObject) -> bool:
        return self.fields.matches(obj) and self.labels.matches(obj.get("metadata", {}).get("labels", {}))

    def convert(self, event: StoreEvent) -> tuple[str, JsonObject] | None:
        """The event this watcher sees for a store event (or None), as the watch cache converts it."""
        if event.resource is not self.resource:
            return None
        if self.namespace is not None and event.namespace != self.namespace:
            return None
        now_selected = event.type != "DELETED" and self.selects(event.object)
        was_selected = event.previous is not None and self.selects(event.previous)
        if now_selected and not was_selected:
            return ("ADDED", event.object)
        if now_selected:
            return ("MODIFIED", event.object)
        if was_selected:
            if event.type == "DELETED":
                return ("DELETED", event.object)
            # left the selection: a DELETED carrying the previous content at the event's revision
            assert event.previous is not None
            return ("DELETED", _with_meta(event.previous, resourceVersion=str(event.resource_version)))
        return None

    def push(self, item: tuple[str, JsonObject]) -> None:
        if self.end is not None:
            return
        if len(self.pending) >= self._max_backlog:
            # The apiserver terminates a watcher that cannot keep up; the client re-watches from its
            # last resourceVersion.
            self.finish("end")
            return
        self.pending.append(item)
        self._wakeup.set()

    def reset_requested(self) -> bool:
        """The connection must be dropped now (pending events are discarded)."""
        return self.end == "reset"

    def finish(self, how: WatchEndMode) -> None:
        if self.end is None or how == "reset":
            self.end = how
        self._wakeup.set()

    async def wait(self, timeout: float) -> None:
        """Wait until there is something to send or the watch must end, at most ``timeout`` seconds."""
        if self.pending or self.end is not None:
            return
        self._wakeup.clear()
        try:
            await asyncio.wait_for(self._wakeup.wait(), timeout=max(timeout, 0.0))
        except TimeoutError:
            pass


class ObjectStore:
    """In-memory objects with Kubernetes write semantics; see the module docstring."""

    def __init__(
        self,
        *,
        history_limit: int = 1000,
        initial_resource_version: int = 1,
        max_watch_backlog: int = 10_000,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        if history_limit < 0:
            raise ValueError(f"history_limit must be >= 0, got {history_limit}")
        self._objects: dict[ObjectKey, JsonObject] = {}
        self._revision = initial_resource_version
        self._history: deque[StoreEvent] = deque()
        self._history_limit = history_limit
        # every event after this revision is in the history
        self._compacted = initial_resource_version
        self._watches: set[Watch] = set()
        self._max_watch_backlog = max_watch_backlog
        self._changed = asyncio.Event()
        self._now = now or (lambda: datetime.now(UTC))

    # ------------------------------------------------------------------ revisions and history

    @property
    def resource_version(self) -> int:
        """The newest revision (the resourceVersion of the last write, cluster-wide)."""
        return self._revision

    @property
    def oldest_resumable_version(self) -> int:
        """The oldest resourceVersion a watch can still resume from without 410 Gone."""
        return self._compacted

    @property
    def history_limit(self) -> int:
        return self._history_limit

    def set_history_limit(self, limit: int) -> None:
        """Retain at most ``limit`` events (0: none, every resume from an older version gets 410)."""
        if limit < 0:
            raise ValueError(f"history_limit must be >= 0, got {limit}")
        self._history_limit = limit
        self._trim_history()

    def compact(self) -> None:
        """Forget all retained events now, as an etcd compaction at the current revision would."""
        self._history.clear()
        self._compacted = self._revision

    def _trim_history(self) -> None:
        while len(self._history) > self._history_limit:
            dropped = self._history.popleft()
            self._compacted = dropped.resource_version
        if not self._history:
            self._compacted = self._revision

    async def wait_for_resource_version(self, version: int, timeout: float) -> bool:
        """Wait until the store reached ``version``; False after ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._revision < version:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            changed = self._changed
            try:
                await asyncio.wait_for(changed.wait(), timeout=remaining)
            except TimeoutError:
                return self._revision >= version
        return True

    # ------------------------------------------------------------------ reads

    def peek(self, resource: ResourceType, namespace: str, name: str) -> JsonObject | None:
        """The stored object or None (no error): for assertions."""
        return self._objects.get((resource, namespace, name))

    def get(self, resource: ResourceType, namespace: str, name: str) -> JsonObject:
        obj = self._objects.get((resource, namespace, name))
        if obj is None:
            raise errors.not_found(resource.plural, resource.group, name)
        return obj

    def objects(self, resource: ResourceType, namespace: str | None = None) -> list[JsonObject]:
        """Current objects of a kind, sorted by namespace and name."""
        return [
            obj
            for (res, ns, _), obj in sorted(self._objects.items(), key=lambda kv: (kv[0][1], kv[0][2]))
            if res is resource and (namespace is None or ns == namespace)
        ]

    def _snapshot(self, resource_version: int) -> dict[ObjectKey, JsonObject]:
        """All objects as they were at ``resource_version`` (rebuilt by undoing newer history)."""
        if resource_version >= self._revision:
            return dict(self._objects)
        if resource_version < self._compacted:
            raise errors.expired(f"too old resource version: {resource_version} ({self._compacted + 1})")
        state = dict(self._objects)
        for event in reversed(self._history):
            if event.resource_version <= resource_version:
                break
            key = (event.resource, event.namespace, event.name)
            if event.previous is None:
                state.pop(key, None)
            else:
                state[key] = event.previous
        return state

    def list_objects(
        self,
        resource: ResourceType,
        namespace: str | None,
        *,
        labels: LabelSelector | None = None,
        fields: FieldSelector | None = None,
        resource_version: str | None = None,
        resource_version_match: str | None = None,
        limit: int | None = None,
        continue_token: str | None = None,
    ) -> ListResult:
        """List objects with the apiserver's resourceVersion/limit/continue semantics.

        A numeric ``resource_version`` newer than the store must be awaited first by the caller
        (:meth:`wait_for_resource_version`); here it is a 504 Timeout.
        """
        labels = labels or LabelSelector()
        fields = fields or FieldSelector()
        match = resource_version_match or ""
        if match not in ("", "NotOlderThan", "Exact"):
            raise errors.bad_request(
                f'resourceVersionMatch: Unsupported value: "{match}": supported values: "Exact", "NotOlderThan"'
            )
        start_after = ""
        if continue_token:
            if resource_version not in (None, ""):
                raise errors.bad_request("specifying resource version is not allowed when using continue")
            at, start_after = self._decode_continue(continue_token)
        elif resource_version in (None, ""):
            if match:
                raise errors.bad_request(
                    "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion "
                    "is provided"
                )
            at = self._revision
        else:
            assert resource_version is not None
            requested = parse_resource_version(resource_version)
            if requested > self._revision:
                raise errors.too_large_resource_version(requested, self._revision)
            if match == "Exact":
                if requested == 0:
                    raise errors.bad_request(
                        'resourceVersionMatch: Forbidden: resourceVersionMatch "Exact" is forbidden for '
                        'resourceVersion "0"'
                    )
                at = requested
            else:
                # "0" (any) and NotOlderThan: the newest state satisfies both
                at = self._revision
        state = self._snapshot(at)
        selected: list[tuple[str, JsonObject]] = []
        for (res, ns, name), obj in state.items():
            if res is not resource or (namespace is not None and ns != namespace):
                continue
            key = f"{ns}/{name}"
            if key <= start_after:
                continue
            if fields.matches(obj) and labels.matches(obj.get("metadata", {}).get("labels", {})):
                selected.append((key, obj))
        selected.sort(key=lambda item: item[0])
        token: str | None = None
        remaining: int | None = None
        if limit and len(selected) > limit:
            remaining = len(selected) - limit
            selected = selected[:limit]
            token = self._encode_continue(at, selected[-1][0])
        items = [{k: v for k, v in obj.items() if k not in ("kind", "apiVersion")} for _, obj in selected]
        return ListResult(items, at, token, remaining)

    @staticmethod
    def _encode_continue(resource_version: int, last_key: str) -> str:
        raw = json.dumps({"v": "meta.k8s.io/v1", "rv": resource_version, "start": last_key + "\x00"})
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    def _decode_continue(self, token: str) -> tuple[int, str]:
        try:
            raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            at = int(raw["rv"])
            start = str(raw["start"]).rstrip("\x00")
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise errors.bad_request(f'continue key is not valid: "{token}"') from None
        if at < self._compacted:
            raise errors.expired(
                "The provided continue parameter is too old to display a consistent list result. You can start "
                "a new list without the continue parameter, or use the continue value from the response."
            )
        return at, start

    # ------------------------------------------------------------------ writes

    def _commit(
        self,
        resource: ResourceType,
        namespace: str,
        name: str,
        kind: EventType,
        new: JsonObject | None,
        previous: JsonObject | None,
    ) -> JsonObject:
        self._revision += 1
        version = str(self._revision)
        key = (resource, namespace, name)
        if new is None:
            assert previous is not None
            stored = _with_meta(previous, resourceVersion=version)
            del self._objects[key]
        else:
            stored = _with_meta(new, resourceVersion=version)
            self._objects[key] = stored
        event = StoreEvent(self._revision, kind, resource, namespace, name, stored, previous)
        self._history.append(event)
        self._trim_history()
        for watch in list(self._watches):
            item = watch.convert(event)
            if item is not None:
                watch.push(item)
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
        return stored

    def _generate_name(self, resource: ResourceType, namespace: str, prefix: str) -> str:
        for _ in range(16):
            name = prefix + "".join(random.choice(_NAME_SUFFIX_ALPHABET) for _ in range(5))
            if (resource, namespace, name) not in self._objects:
                return name
        return name

    def create(
        self, resource: ResourceType, namespace: str, body: Any, *, dry_run: bool = False
    ) -> tuple[JsonObject, list[str]]:
        """POST: returns the created object and the body's unknown (dropped) fields."""
        obj, unknown = resource.decode(body)
        meta = obj["metadata"]
        if meta.get("namespace") not in (None, namespace):
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        if meta.get("resourceVersion"):
            raise errors.internal_error("resourceVersion should not be set on objects to be created")
        name = meta.get("name") or ""
        if not name and meta.get("generateName"):
            name = self._generate_name(resource, namespace, meta["generateName"])
        new = _with_meta(
            obj,
            name=name or None,
            namespace=namespace,
            uid=str(uuid.uuid4()),
            creationTimestamp=format_time(self._now()),
            resourceVersion=None,
        )
        causes = resource.validate(new, None)
        if causes:
            raise errors.invalid(resource.kind, resource.group, name or meta.get("generateName", ""), causes)
        if (resource, namespace, name) in self._objects:
            raise errors.already_exists(resource.plural, resource.group, name)
        if dry_run:
            return new, unknown
        return self._commit(resource, namespace, name, "ADDED", new, None), unknown

    def _update(
        self, resource: ResourceType, namespace: str, name: str, candidate: JsonObject, *, dry_run: bool
    ) -> JsonObject:
        existing = self.get(resource, namespace, name)
        existing_meta = existing["metadata"]
        meta = candidate["metadata"]
        wanted = meta.get("resourceVersion")
        if wanted and wanted != existing_meta["resourceVersion"]:
            raise errors.conflict(resource.plural, resource.group, name, errors.OPTIMISTIC_LOCK_MESSAGE)
        uid = meta.get("uid")
        if uid and uid != existing_meta["uid"]:
            raise errors.conflict(
                resource.plural,
                resource.group,
                name,
                f"Precondition failed: UID in precondition: {uid}, UID in object meta: {existing_meta['uid']}",
            )
        new = _with_meta(
            candidate,
            name=name,
            namespace=namespace,
            uid=existing_meta["uid"],
            creationTimestamp=existing_meta["creationTimestamp"],
            resourceVersion=None,
        )
        causes = resource.validate(new, existing)
        if causes:
            raise errors.invalid(resource.kind, resource.group, name, causes)
        if new == _with_meta(existing, resourceVersion=None):
            # a no-op update is not written: same resourceVersion, no watch event
            return existing
        if dry_run:
            return _with_meta(new, resourceVersion=existing_meta["resourceVersion"])
        return self._commit(resource, namespace, name, "MODIFIED", new, existing)

    @staticmethod
    def _check_identity(obj: JsonObject, namespace: str, name: str) -> None:
        meta = obj["metadata"]
        if meta.get("name", "") != name:
            raise errors.bad_request(
                f"the name of the object ({meta.get('name', '')}) does not match the name on the URL ({name})"
            )
        if meta.get("namespace") not in (None, namespace):
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )

    def replace(
        self, resource: ResourceType, namespace: str, name: str, body: Any, *, dry_run: bool = False
    ) -> tuple[JsonObject, list[str]]:
        """PUT: conditional on ``metadata.resourceVersion`` when the body carries one."""
        obj, unknown = resource.decode(body)
        self._check_identity(obj, namespace, name)
        return self._update(resource, namespace, name, obj, dry_run=dry_run), unknown

    def patch(
        self,
        resource: ResourceType,
        namespace: str,
        name: str,
        patch_type: PatchType,
        patch: Any,
        *,
        dry_run: bool = False,
    ) -> tuple[JsonObject, list[str]]:
        """PATCH: merge/strategic (RFC 7386) or JSON patch (RFC 6902) applied to the stored object."""
        existing = self.get(resource, namespace, name)
        if patch_type == "json":
            try:
                patched = json_patch(existing, patch)
            except JsonPatchError as error:
                if error.malformed:
                    raise errors.bad_request(str(error)) from None
                raise errors.ApiStatusError.of(422, str(error), "Invalid") from None
        else:
            if not isinstance(patch, dict):
                raise errors.bad_request(
                    "json: cannot unmarshal "
                    + type(patch).__name__
                    + " into Go value of type map[string]interface {}"
                )
            patched = merge_patch(existing, patch)
        obj, unknown = resource.decode(patched)
        self._check_identity(obj, namespace, name)
        return self._update(resource, namespace, name, obj, dry_run=dry_run), unknown

    def delete(
        self,
        resource: ResourceType,
        namespace: str,
        name: str,
        *,
        resource_version: str | None = None,
        uid: str | None = None,
        dry_run: bool = False,
    ) -> JsonObject:
        """DELETE with optional preconditions; returns the deleted object as it was last stored."""
        existing = self.get(resource, namespace, name)
        meta = existing["metadata"]
        if resource_version and resource_version != meta["resourceVersion"]:
            raise errors.conflict(
                resource.plural,
                resource.group,
                name,
                f"Precondition failed: ResourceVersion in precondition: {resource_version}, "
                f"ResourceVersion in object meta: {meta['resourceVersion']}",
            )
        if uid and uid != meta["uid"]:
            raise errors.conflict(
                resource.plural,
                resource.group,
                name,
                f"Precondition failed: UID in precondition: {uid}, UID in object meta: {meta['uid']}",
            )
        if dry_run:
            return existing
        self._commit(resource, namespace, name, "DELETED", None, existing)
        return existing

    def delete_collection(
        self,
        resource: ResourceType,
        namespace: str | None,
        *,
        labels: LabelSelector | None = None,
        fields: FieldSelector | None = None,
        dry_run: bool = False,
    ) -> list[JsonObject]:
        """DELETE on a collection: removes every matching object, one write (and event) each."""
        labels = labels or LabelSelector()
        fields = fields or FieldSelector()
        deleted: list[JsonObject] = []
        for obj in self.objects(resource, namespace):
            if fields.matches(obj) and labels.matches(obj["metadata"].get("labels", {})):
                meta = obj["metadata"]
                deleted.append(self.delete(resource, meta["namespace"], meta["name"], dry_run=dry_run))
        return deleted

    # ------------------------------------------------------------------ watches

    def open_watch(
        self,
        resource: ResourceType,
        namespace: str | None,
        *,
        labels: LabelSelector | None = None,
        fields: FieldSelector | None = None,
        resource_version: str | None = None,
        send_initial_events: bool = False,
    ) -> Watch:
        """Register a watch and queue what it must see first.

        ``resource_version`` unset or "0": synthetic ADDED events for the current state, then changes.
        A revision N: every retained change after N (410 Expired as an ERROR event when N was compacted).
        ``send_initial_events``: current state as ADDED, then a BOOKMARK annotated
        ``k8s.io/initial-events-end`` (the streaming-list protocol).
        A revision newer than the store must be awaited by the caller first.
        """
        watch = Watch(
            resource, namespace, labels or LabelSelector(), fields or FieldSelector(), self._max_watch_backlog
        )
        initial_state = send_initial_events or resource_version in (None, "", "0")
        if initial_state:
            for obj in self.objects(resource, namespace):
                if watch.selects(obj):
                    watch.pending.append(("ADDED", obj))
            if send_initial_events:
                bookmark = self.bookmark(resource)
                bookmark["metadata"]["annotations"] = {INITIAL_EVENTS_END_ANNOTATION: "true"}
                watch.pending.append(("BOOKMARK", bookmark))
        else:
            assert resource_version is not None
            since = parse_resource_version(resource_version)
            if since < self._compacted:
                status = errors.expired(f"too old resource version: {since} ({self._compacted + 1})").status
                watch.pending.append(("ERROR", status))
                watch.finish("end")
                return watch
            for event in self._history:
                if event.resource_version > since:
                    item = watch.convert(event)
                    if item is not None:
                        watch.pending.append(item)
        self._watches.add(watch)
        return watch

    def bookmark(self, resource: ResourceType) -> JsonObject:
        """A BOOKMARK event object at the current revision."""
        return {
            "kind": resource.kind,
            "apiVersion": resource.api_version,
            "metadata": {"resourceVersion": str(self._revision), "creationTimestamp": None},
        }

    def close_watch(self, watch: Watch) -> None:
        self._watches.discard(watch)

    @property
    def open_watches(self) -> int:
        return len(self._watches)

    def finish_watches(self, how: WatchEndMode, resources: Iterable[ResourceType] | None = None) -> int:
        """End every open watch (optionally of some kinds only); returns how many were ended."""
        kinds = set(resources) if resources is not None else None
        count = 0
        for watch in list(self._watches):
            if kinds is None or watch.resource in kinds:
                watch.finish(how)
                count += 1
        return count

    def expire_watches(self, resources: Iterable[ResourceType] | None = None) -> int:
        """Send every open watch a 410 Expired ERROR event and end it, as a lagging watch cache does."""
        kinds = set(resources) if resources is not None else None
        count = 0
        for watch in list(self._watches):
            if kinds is None or watch.resource in kinds:
                status = errors.expired("too old resource version: watch expired by the test server").status
                watch.pending.append(("ERROR", status))
                watch.finish("end")
                count += 1
        return count
