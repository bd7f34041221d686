"""Fenced ConfigMap writes: only the current leader's HA writes are applied (Flink's "only the leader may write").

Flink fences the writes to the cluster ConfigMap (leader information, execution plans): the read-check-update
applies only if the lock annotation names this process, and the compare-and-swap on the ConfigMap's
resourceVersion makes check and write atomic. Flink 2.x does NOT fence the per-job ConfigMaps (checkpoints,
checkpoint id counter): a deposed JobManager may still write them (§3.8 of the reference).

standby fences both, with one rule: a write carries the writer's *term* (the ``leaderTransitions`` of the lock
record it acquired, incremented on every acquisition) and applies only while

1. this process believes it leads in that term (local state, which steps down at the renew deadline), and
2. the lock annotation of the cluster ConfigMap names this process's lock identity with that term.

On the cluster ConfigMap (2) is checked on the object being written, so the compare-and-swap makes it exact: the
write happens only if, at the moment it is applied, the lock is ours.

On a per-job ConfigMap, Kubernetes offers no transaction over two objects. So each attempt (a) reads the job
ConfigMap, (b) reads the cluster ConfigMap and checks (1) and (2), then (c) PUTs the job ConfigMap with the
resourceVersion of (a) and the annotation ``standby.io/fencing-epoch`` = our term, refusing if the annotation
already carries a NEWER term. What that guarantees:

* the write is applied only if we led at (b), and the job ConfigMap did not change between (a) and (c);
* once a newer leader has written the job ConfigMap (its term in the annotation), no write of an older term is
  ever applied again: the older writer either reads the newer term at (a) and refuses, or its PUT fails with 409
  and its retry reads it. Terms thus order the writes of a job ConfigMap, like a fencing token;
* a new leader *claims* each job ConfigMap it recovers (writes its term) before reading it, so the checkpoints
  and counter it recovers are final with respect to any deposed leader.

The limit: between (b) and (c) the lock may pass to a new leader. A deposed leader's write can still land in
that window — only before the new leader's first write (claim) of that job ConfigMap, so the new leader sees it
when it recovers; it never overwrites anything the new leader wrote. The window is one request round trip, and
the old leader's local state gives up leadership ``lease - renew-deadline`` (5 s by default) before a follower
can acquire, so it needs a leader that was paused for longer than that margin in the middle of a write.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from standby.ha import FencingError

from ._client import (
    KubernetesClient,
    KubernetesConfigMap,
    RetryPolicy,
    check_and_update_config_map,
    create_config_map_if_missing,
)
from ._leader_elector import LeaderElectionRecord, read_record
from ._utils import FENCING_EPOCH_ANNOTATION_KEY

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FencingToken:
    """The term of a leader (``leaderTransitions`` of its lock record) and its lock identity."""

    term: int
    holder_identity: str

    def to_annotation(self) -> str:
        return json.dumps({"term": self.term, "holderIdentity": self.holder_identity}, separators=(",", ":"))

    @staticmethod
    def from_annotation(text: str | None) -> FencingToken | None:
        if not text:
            return None
        try:
            body: Any = json.loads(text)
            return FencingToken(int(body["term"]), str(body["holderIdentity"]))
        except (ValueError, KeyError, TypeError):
            _log.warning("Ignoring an unreadable fencing epoch annotation %r", text[:200])
            return None


class LeaderFence:
    """Decides whether this process may write now: it leads locally in term T and the lock record names it in T."""

    def __init__(self, lock_identity: str, current_term: Callable[[], int | None]) -> None:
        self.lock_identity = lock_identity
        self._current_term = current_term

    def token_for(self, cluster_config_map: KubernetesConfigMap | None) -> FencingToken | None:
        """Our token if the cluster ConfigMap's lock names us in our current term; None otherwise."""
        term = self._current_term()
        record = read_record(cluster_config_map)
        if term is None or record is None:
            return None
        if record.holder_identity != self.lock_identity or record.leader_transitions != term:
            return None
        return FencingToken(term, self.lock_identity)

    def refusal(
        self, target: str, cluster_config_map: KubernetesConfigMap | None, lock_config_map: str
    ) -> FencingError:
        """The error of a refused write of ``target``, saying who holds the lock."""
        record: LeaderElectionRecord | None = read_record(cluster_config_map)
        term = self._current_term()
        if cluster_config_map is None:
            holder = f"ConfigMap {lock_config_map} does not exist"
        elif record is None or not record.is_held:
            holder = f"the leader lock on ConfigMap {lock_config_map} is not held"
        else:
            holder = (
                f"the leader lock on ConfigMap {lock_config_map} names {record.holder_identity} "
                f"(term {record.leader_transitions})"
            )
        local = "this process does not lead" if term is None else f"this process leads in term {term}"
        return FencingError(
            f"Refusing to write ConfigMap {target}: {local} and {holder}. Only the leader (lock identity "
            f"{self.lock_identity} when it leads) may write HA data; the write belongs to a deposed leader."
        )


DataUpdate = Callable[[KubernetesConfigMap], Mapping[str, str] | None]


class FencedConfigMapWriter:
    """Read-check-update of one ConfigMap's data under a ``LeaderFence`` (or unfenced when ``fence`` is None,
    as Flink's stores without lock identity).

    ``lock_config_map`` is the ConfigMap holding the leader lock; when it is the written one, the check is on the
    written object itself; otherwise the per-job protocol of the module docstring applies.
    """

    def __init__(
        self,
        client: KubernetesClient,
        config_map_name: str,
        retry: RetryPolicy,
        fence: LeaderFence | None = None,
        lock_config_map: str | None = None,
    ) -> None:
        self._client = client
        self._name = config_map_name
        self._retry = retry
        self._fence = fence
        self._lock_config_map = lock_config_map or config_map_name
        #: the ConfigMap as this writer last read or wrote it, for ``read``
        self._last_seen: KubernetesConfigMap | None = None

    @property
    def config_map_name(self) -> str:
        return self._name

    @property
    def fenced(self) -> bool:
        return self._fence is not None

    @property
    def separate_lock(self) -> bool:
        return self._lock_config_map != self._name

    async def current_token(self) -> FencingToken | None:
        """Our token now (reads the lock ConfigMap); None when unfenced. Raises ``FencingError`` if not leader."""
        if self._fence is None:
            return None
        lock = await self._client.get_config_map(self._lock_config_map)
        token = self._fence.token_for(lock)
        if token is None:
            raise self._fence.refusal(self._name, lock, self._lock_config_map)
        return token

    async def update(self, change: DataUpdate, *, claim: bool = False) -> bool:
        """Apply ``change`` (new data, or None for "nothing to do") with the fence; True if something was written.

        ``claim`` also writes our term into a per-job ConfigMap when nothing else changes. Raises
        ``FencingError`` when not leader, ``ConfigMapNotFoundError`` when the ConfigMap does not exist, what
        ``change`` raises, and ``PossibleInconsistentStateError`` when the outcome is unknown.
        """
        fence = self._fence

        async def apply(current: KubernetesConfigMap) -> KubernetesConfigMap | None:
            self._last_seen = current
            annotations = dict(current.annotations)
            if fence is not None:
                if self.separate_lock:
                    token = await self.current_token()
                    assert token is not None
                    stored = FencingToken.from_annotation(annotations.get(FENCING_EPOCH_ANNOTATION_KEY))
                    if stored is not None and (
                        stored.term > token.term
                        or (stored.term == token.term and stored.holder_identity != token.holder_identity)
                    ):
                        raise FencingError(
                            f"Refusing to write ConfigMap {self._name}: a newer leader ({stored.holder_identity}, "
                            f"term {stored.term}) has written it; this process writes for term {token.term}."
                        )
                    annotations[FENCING_EPOCH_ANNOTATION_KEY] = token.to_annotation()
                elif fence.token_for(current) is None:
                    raise fence.refusal(self._name, current, self._lock_config_map)
            data = change(current)
            if data is None:
                if not claim or annotations == dict(current.annotations):
                    return None
                data = current.data
            if dict(data) == dict(current.data) and annotations == dict(current.annotations):
                return None
            return current.evolve(data=data, annotations=annotations)

        written = await check_and_update_config_map(self._client, self._name, apply, self._retry)
        if written is not None:
            self._last_seen = written
        return written is not None

    async def claim(self) -> None:
        """A new leader's first write of a per-job ConfigMap: our term, so older terms can no longer write it."""
        if self._fence is not None and self.separate_lock:
            await self.update(lambda _current: None, claim=True)

    async def get(self) -> KubernetesConfigMap | None:
        """The ConfigMap now (a full GET), or None."""
        current = await self._client.get_config_map(self._name)
        self._last_seen = current
        return current

    async def read(self) -> KubernetesConfigMap | None:
        """The ConfigMap now, as ``get``, without transferring it again when it did not change.

        If the server's resourceVersion (a metadata-only GET, linearizable like a full one) is that of the copy
        this writer last read or wrote, that copy is the ConfigMap's content now: a resourceVersion names one
        state of one object. Otherwise a full GET. A recovery reads one entry per plan of the cluster ConfigMap,
        which holds them all: a full GET each made recovering N plans transfer and parse O(N²) bytes.
        """
        last = self._last_seen
        if last is None or not last.resource_version:
            return await self.get()
        version = await self._client.get_config_map_version(self._name)
        if version is None:
            self._last_seen = None
            return None
        if version == last.resource_version:
            return last
        return await self.get()

    async def ensure_exists(self, template: KubernetesConfigMap) -> KubernetesConfigMap:
        """Flink's ``createConfigMapIfItDoesNotExist`` (10 attempts); fenced: only the leader creates."""
        existing = await self._client.get_config_map(self._name)
        if existing is not None:
            return existing
        token = await self.current_token()
        annotations = dict(template.annotations)
        if token is not None and self.separate_lock:
            annotations[FENCING_EPOCH_ANNOTATION_KEY] = token.to_annotation()
        return await create_config_map_if_missing(self._client, template.evolve(annotations=annotations))
