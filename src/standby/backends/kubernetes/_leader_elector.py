"""Leader election on a ConfigMap lock (Flink's ``KubernetesLeaderElector`` over fabric8/client-go's ``LeaderElector``).

The lock is the annotation ``control-plane.alpha.kubernetes.io/leader`` of ``<cluster-id>-cluster-config-map``,
holding the leader election record as client-go and fabric8 write it::

    {"holderIdentity": "<uuid>", "leaseDurationSeconds": 15, "acquireTime": "2026-01-01T00:00:00.000000Z",
     "renewTime": "2026-01-01T00:00:05.000000Z", "leaderTransitions": 3}

Rules (client-go/fabric8 semantics):

* a contender acquires when the lock is unheld (no record, empty ``holderIdentity``) or expired
  (``renewTime + leaseDurationSeconds < now``), by a compare-and-swap PUT on the ConfigMap's resourceVersion;
* the leader renews every ``retry-period`` (after a failed renewal it retries sooner, every ``retry-period / 5``);
* the leader steps down when it could not renew within ``renew-deadline``, counted from the moment it SENT its last
  successful renewal. Its local state turns false at that instant, even while a request hangs, and since the
  default ``renew-deadline`` (10 s) is shorter than the lease (15 s), that is before any follower may take the lock
  (followers count the lease from ``renewTime``, which is at or after that send time; clock offsets between hosts
  must stay below the 5 s margin). Flink's defaults (15 s/15 s) leave no margin: client-go requires
  ``renewDeadline < leaseDuration``;
* a graceful stop releases the lock like client-go's ``ReleaseOnCancel``: ``holderIdentity`` cleared,
  ``leaseDurationSeconds`` 1, so a standby can take over at once;
* an election round is single use (FLINK-34007: fabric8 6.x electors could not be restarted, which left jobs in
  SUSPENDED); ``KubernetesLeaderElector.run()`` starts a fresh round.

Beyond client-go, ``leaderTransitions`` is incremented on EVERY acquisition, also when the same identity takes the
lock again after losing it, so that it numbers leadership terms; the term is the fencing epoch of the HA writes
(see ``_fencing``). Standbys also react to the ConfigMap watch: when they see the lock released (empty holder) they
try at once instead of waiting up to ``retry-period``, and after seeing a renewal they schedule their next attempt
for the moment the lease expires rather than at the next poll (faster failover).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import json
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from standby.config import ConfigurationError, options

from ._client import (
    ConfigMapAlreadyExistsError,
    ConfigMapConflictError,
    KubernetesClient,
    KubernetesConfigMap,
    KubernetesError,
)
from ._utils import LEADER_ANNOTATION_KEY

_log = logging.getLogger(__name__)

#: client-go's ReleaseOnCancel writes a 1 s lease so that whoever reads the released record may take it at once.
RELEASED_LEASE_DURATION_SECONDS = 1
#: Attempts of one acquire/renew when our own concurrent writes of the same ConfigMap cause 409 conflicts.
_CONFLICT_ATTEMPTS = 5
#: Shortest pause between two acquisition attempts of one contender (seconds).
_MIN_ATTEMPT_GAP = 0.02


# ------------------------------------------------------------------------------------------------ the record


def format_rfc3339(moment: datetime) -> str:
    """RFC 3339 in UTC with microseconds, as fabric8 writes its MicroTime (client-go parses it too)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_rfc3339(text: str) -> datetime:
    moment = datetime.fromisoformat(text.strip())
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


@dataclass(frozen=True)
class LeaderElectionRecord:
    """client-go's ``LeaderElectionRecord`` (fabric8's is the same JSON)."""

    holder_identity: str
    lease_duration_seconds: int
    acquire_time: datetime
    renew_time: datetime
    leader_transitions: int

    def to_json(self) -> str:
        return json.dumps(
            {
                "holderIdentity": self.holder_identity,
                "leaseDurationSeconds": self.lease_duration_seconds,
                "acquireTime": format_rfc3339(self.acquire_time),
                "renewTime": format_rfc3339(self.renew_time),
                "leaderTransitions": self.leader_transitions,
            },
            separators=(",", ":"),
        )

    @staticmethod
    def from_json(text: str) -> LeaderElectionRecord:
        """Parse a record; raises ``ValueError`` naming what is wrong."""
        try:
            body: Any = json.loads(text)
            if not isinstance(body, dict):
                raise ValueError("not a JSON object")
            lease = body.get("leaseDurationSeconds", body.get("leaseDuration", 0))
            now = datetime.now(UTC)
            return LeaderElectionRecord(
                holder_identity=str(body.get("holderIdentity") or ""),
                lease_duration_seconds=int(lease or 0),
                acquire_time=parse_rfc3339(body["acquireTime"]) if body.get("acquireTime") else now,
                renew_time=parse_rfc3339(body["renewTime"]) if body.get("renewTime") else now,
                leader_transitions=int(body.get("leaderTransitions") or 0),
            )
        except (ValueError, TypeError, KeyError) as e:
            raise ValueError(f"invalid leader election record {text[:200]!r}: {e}") from e

    @property
    def is_held(self) -> bool:
        return bool(self.holder_identity)

    def expires_at(self) -> datetime:
        return self.renew_time + timedelta(seconds=self.lease_duration_seconds)

    def is_expired(self, now: datetime) -> bool:
        """fabric8's ``canBecomeLeader`` for a held record: ``renewTime + leaseDuration < now``."""
        return self.expires_at() < now


def read_record(config_map: KubernetesConfigMap | None) -> LeaderElectionRecord | None:
    """The record in the lock annotation; None when absent or unreadable (then the lock counts as unheld)."""
    if config_map is None:
        return None
    text = config_map.annotations.get(LEADER_ANNOTATION_KEY)
    if not text:
        return None
    try:
        return LeaderElectionRecord.from_json(text)
    except ValueError as e:
        _log.warning("ConfigMap %s: %s; treating the lock as unheld", config_map.name, e)
        return None


def holds_lock(config_map: KubernetesConfigMap | None, lock_identity: str) -> bool:
    """Flink's ``KubernetesLeaderElector.hasLeadership``: the lock annotation names ``lock_identity``."""
    record = read_record(config_map)
    return record is not None and record.holder_identity == lock_identity


# ------------------------------------------------------------------------------------------------ configuration


class Clock(abc.ABC):
    """Time source of the elector (monotonic for local deadlines, wall clock for the record)."""

    @abc.abstractmethod
    def monotonic(self) -> float: ...

    @abc.abstractmethod
    def now(self) -> datetime: ...


class SystemClock(Clock):
    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass(frozen=True)
class KubernetesLeaderElectionConfiguration:
    """Flink's ``KubernetesLeaderElectionConfiguration``: the lock and its timing (seconds)."""

    config_map_name: str
    lock_identity: str
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 5.0
    labels: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        for name in ("lease_duration", "renew_deadline", "retry_period"):
            if getattr(self, name) <= 0:
                raise ConfigurationError(f"The leader election {name.replace('_', '-')} must be positive")
        if self.retry_period >= self.renew_deadline:
            raise ConfigurationError(
                f"'{options.HA_KUBERNETES_RETRY_PERIOD.key}' ({self.retry_period} s) must be shorter than "
                f"'{options.HA_KUBERNETES_RENEW_DEADLINE.key}' ({self.renew_deadline} s), or the leader would give "
                "up between two renewals."
            )

    @property
    def lease_duration_seconds(self) -> int:
        """The lease as whole seconds for the record (rounded up: a follower never waits less than configured)."""
        return max(1, math.ceil(self.lease_duration))


# ------------------------------------------------------------------------------------------------ local state


class LeadershipState:
    """What this process knows about its own leadership: one lock identity per process, the current term.

    ``is_leading()`` is local (no round trip) and turns false at the renew deadline by itself.
    """

    def __init__(self, lock_identity: str, clock: Clock | None = None) -> None:
        self.lock_identity = lock_identity
        self._clock = clock or SystemClock()
        self._term: int | None = None
        self._deadline = 0.0
        self._owner: object | None = None

    def is_leading(self) -> bool:
        return self._term is not None and self._clock.monotonic() < self._deadline

    def current_term(self) -> int | None:
        """The term (``leaderTransitions``) of the current leadership, None when not leading."""
        return self._term if self.is_leading() else None

    @property
    def deadline(self) -> float:
        return self._deadline

    # The owner is the election round that acquired: a round that ended (or an elector being stopped while a
    # newer driver of the same process already leads) must not touch the state of the newer round.

    def _lead(self, owner: object, term: int, deadline: float) -> None:
        self._owner = owner
        self._term = term
        self._deadline = deadline

    def _extend(self, owner: object, deadline: float) -> None:
        if owner is self._owner:
            self._deadline = max(self._deadline, deadline)

    def _clear(self, owner: object) -> None:
        if owner is self._owner:
            self._owner = None
            self._term = None
            self._deadline = 0.0


class LeaderCallbackHandler(abc.ABC):
    """Flink's ``KubernetesLeaderElector.LeaderCallbackHandler``; called on the event loop."""

    @abc.abstractmethod
    def is_leader(self) -> None: ...

    @abc.abstractmethod
    def not_leader(self) -> None: ...


# ------------------------------------------------------------------------------------------------ the elector


class KubernetesLeaderElector:
    """Flink's ``KubernetesLeaderElector``: ``run()`` starts a NEW election round (single use, FLINK-34007),
    ``stop()`` ends it and releases the lock."""

    def __init__(
        self,
        client: KubernetesClient,
        configuration: KubernetesLeaderElectionConfiguration,
        state: LeadershipState,
        callbacks: LeaderCallbackHandler,
        *,
        clock: Clock | None = None,
        may_create: Callable[[], bool] = lambda: True,
    ) -> None:
        if state.lock_identity != configuration.lock_identity:
            raise ValueError("the leadership state and the configuration name different lock identities")
        self._client = client
        self._configuration = configuration
        self._state = state
        self._callbacks = callbacks
        self._clock = clock or SystemClock()
        self._may_create = may_create
        self._round: _ElectionRound | None = None
        self._stopped = False
        #: the term of this elector's last acquisition (what a graceful stop releases)
        self._acquired_term: int | None = None
        #: rounds started so far (for tests)
        self.rounds = 0

    @property
    def configuration(self) -> KubernetesLeaderElectionConfiguration:
        return self._configuration

    def run(self) -> None:
        """Cancel the current round (if any) and start a fresh one; no-op after ``stop()``."""
        if self._stopped:
            return
        previous = self._round
        if previous is not None:
            previous.cancel()
        self.rounds += 1
        self._round = _ElectionRound(self, self.rounds)
        self._round.start()

    def observe(self, config_map: KubernetesConfigMap) -> None:
        """What the ConfigMap watch saw: wakes a waiting contender, or ends a leadership that another took."""
        current = self._round
        if current is not None and not self._stopped:
            current.observe(config_map)

    async def stop(self, release: bool = True, timeout: float | None = None) -> None:
        """End the round; if ``release`` and the lock names us, release it (bounded by ``timeout`` seconds,
        default the renew deadline)."""
        self._stopped = True
        current, self._round = self._round, None
        if current is not None:
            self._state._clear(current)
            current.cancel()
            await current.wait_finished()
        if release and self._acquired_term is not None:
            bound = timeout if timeout is not None else self._configuration.renew_deadline
            try:
                await asyncio.wait_for(self._release(), bound)
            except (TimeoutError, KubernetesError) as e:
                _log.warning(
                    "Could not release the leader lock on ConfigMap %s: %s; a standby takes over once the "
                    "lease expired.",
                    self._configuration.config_map_name,
                    e,
                )

    async def _release(self) -> None:
        """client-go ``release()``: clear the holder, 1 s lease, keep the transitions; only if the lock is still
        ours in the term this elector acquired (not a newer term of the same process)."""
        name = self._configuration.config_map_name
        identity = self._configuration.lock_identity
        for _ in range(_CONFLICT_ATTEMPTS):
            current = await self._client.get_config_map(name)
            record = read_record(current)
            if (
                current is None
                or record is None
                or record.holder_identity != identity
                or record.leader_transitions != self._acquired_term
            ):
                return
            now = self._clock.now()
            released = LeaderElectionRecord(
                holder_identity="",
                lease_duration_seconds=RELEASED_LEASE_DURATION_SECONDS,
                acquire_time=now,
                renew_time=now,
                leader_transitions=record.leader_transitions,
            )
            annotations = {**current.annotations, LEADER_ANNOTATION_KEY: released.to_json()}
            try:
                await self._client.replace_config_map(current.evolve(annotations=annotations))
                _log.info("Released the leader lock on ConfigMap %s", name)
                return
            except ConfigMapConflictError:
                continue

    # -- used by the rounds

    async def _try_acquire_or_renew(
        self, term: int | None
    ) -> tuple[bool, LeaderElectionRecord | None, int | None]:
        """client-go ``tryAcquireOrRenew``: (success, record seen, term written).

        ``term`` None: acquire (new term = transitions + 1); else renew the record of that term.
        """
        name = self._configuration.config_map_name
        identity = self._configuration.lock_identity
        record: LeaderElectionRecord | None = None
        for _ in range(_CONFLICT_ATTEMPTS):
            current = await self._client.get_config_map(name)
            now = self._clock.now()
            record = read_record(current)
            if term is not None:
                # renew: the record must still be ours, of our term
                if record is None or record.holder_identity != identity or record.leader_transitions != term:
                    return False, record, None
                new_term = term
                acquire_time = record.acquire_time
            else:
                if (
                    record is not None
                    and record.is_held
                    and record.holder_identity != identity
                    and not record.is_expired(now)
                ):
                    return False, record, None
                new_term = record.leader_transitions + 1 if record is not None else 0
                acquire_time = now
            new_record = LeaderElectionRecord(
                holder_identity=identity,
                lease_duration_seconds=self._configuration.lease_duration_seconds,
                acquire_time=acquire_time,
                renew_time=now,
                leader_transitions=new_term,
            )
            try:
                if current is None:
                    if not self._may_create() or term is not None:
                        return False, None, None
                    await self._client.create_config_map(
                        KubernetesConfigMap(
                            name=name,
                            labels=dict(self._configuration.labels),
                            annotations={LEADER_ANNOTATION_KEY: new_record.to_json()},
                        )
                    )
                else:
                    annotations = {**current.annotations, LEADER_ANNOTATION_KEY: new_record.to_json()}
                    await self._client.replace_config_map(current.evolve(annotations=annotations))
            except (ConfigMapConflictError, ConfigMapAlreadyExistsError):
                continue  # somebody wrote in between (often our own data writes): read again
            return True, new_record, new_term
        return False, record, None

    def _grant(self, owner: _ElectionRound, term: int, deadline: float) -> None:
        self._acquired_term = term
        self._state._lead(owner, term, deadline)
        self._callbacks.is_leader()

    def _revoke(self, owner: _ElectionRound) -> None:
        self._state._clear(owner)
        self._callbacks.not_leader()


class _ElectionRound:
    """One single-use election: acquire, lead while renewing, step down (then the owner may ``run()`` again)."""

    def __init__(self, elector: KubernetesLeaderElector, number: int) -> None:
        self._elector = elector
        self._number = number
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._lost = asyncio.Event()
        self._cancelled = False
        self._leading = False
        self._term: int | None = None
        self._observed: LeaderElectionRecord | None = None
        self._observed_lock_free = False
        self._last_attempt = -math.inf

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name=f"leader-elector:{self._elector.configuration.config_map_name}#{self._number}"
        )

    def cancel(self) -> None:
        self._cancelled = True
        if self._task is not None:
            self._task.cancel()

    async def wait_finished(self) -> None:
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def observe(self, config_map: KubernetesConfigMap) -> None:
        record = read_record(config_map)
        identity = self._elector.configuration.lock_identity
        if self._leading:
            term = self._term if self._term is not None else -1
            # Events may lag behind our own writes: a record of an older term is history, not a loss.
            taken = record is None or record.leader_transitions > term
            if (
                record is not None
                and record.leader_transitions == term
                and record.holder_identity != identity
            ):
                taken = True
            if taken:
                # somebody else holds (or cleared) the lock: we are no longer leader, whatever our deadline says
                _log.warning(
                    "ConfigMap %s shows the lock %s; stepping down",
                    config_map.name,
                    "released"
                    if record is None or not record.is_held
                    else f"held by {record.holder_identity}",
                )
                self._elector._state._clear(self)
                self._lost.set()
            return
        self._observed = record
        if record is None or not record.is_held:
            self._observed_lock_free = True
        self._wake.set()

    # -- the loop

    async def _run(self) -> None:
        try:
            await self._acquire()
            if self._cancelled:
                return
            await self._renew()
        except asyncio.CancelledError:
            raise
        except Exception:  # pragma: no cover - a bug: never leave a leader that does not renew
            _log.exception("Leader election round on %s failed", self._elector.configuration.config_map_name)
            if self._leading:
                self._leading = False
                self._elector._revoke(self)

    def _clock(self) -> Clock:
        return self._elector._clock

    async def _acquire(self) -> None:
        configuration = self._elector.configuration
        while not self._cancelled:
            self._observed_lock_free = False
            sent = self._clock().monotonic()
            self._last_attempt = sent
            try:
                acquired, record, term = await asyncio.wait_for(
                    self._elector._try_acquire_or_renew(None), configuration.renew_deadline
                )
            except (TimeoutError, KubernetesError) as e:
                _log.debug("Could not try to acquire the lock on %s: %s", configuration.config_map_name, e)
                # the API server is in trouble: poll at the retry period, not at what the watch suggested
                acquired, record, term = False, None, None
                self._observed = None
            if acquired and term is not None:
                self._leading = True
                self._term = term
                _log.info(
                    "Acquired the leader lock on ConfigMap %s (term %d)", configuration.config_map_name, term
                )
                self._elector._grant(self, term, sent + configuration.renew_deadline)
                return
            if record is not None:
                self._observed = record
            await self._wait_for_next_attempt()

    async def _wait_for_next_attempt(self) -> None:
        configuration = self._elector.configuration
        clock = self._clock()
        while not self._cancelled and not self._observed_lock_free:
            delay = (
                self._last_attempt
                + configuration.retry_period * (1 + random.uniform(0, 0.1))
                - clock.monotonic()
            )
            record = self._observed
            if record is not None and record.is_held:
                # try right after the lease expires instead of at the next poll
                until_expiry = (record.expires_at() - clock.now()).total_seconds() + 0.01
                delay = min(delay, max(until_expiry, 0.0))
            elif record is not None:
                delay = 0.0
            # never hammer the API server: a short gap even when the lock looks free or expired
            delay = max(delay, self._last_attempt + _MIN_ATTEMPT_GAP - clock.monotonic())
            if delay <= 0:
                return
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), delay)
            except TimeoutError:
                return

    async def _renew(self) -> None:
        configuration = self._elector.configuration
        state = self._elector._state
        clock = self._clock()
        failed = False
        assert self._term is not None
        while not self._cancelled:
            interval = configuration.retry_period / 5 if failed else configuration.retry_period
            remaining = state.deadline - clock.monotonic()
            wait = min(interval, max(remaining, 0.0))
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._lost.wait(), wait)
            if self._lost.is_set():
                break
            remaining = state.deadline - clock.monotonic()
            if remaining <= 0:
                _log.warning(
                    "Could not renew the leader lock on ConfigMap %s within the renew deadline of %s s; stepping "
                    "down",
                    configuration.config_map_name,
                    configuration.renew_deadline,
                )
                break
            sent = clock.monotonic()
            try:
                renewed, record, _ = await asyncio.wait_for(
                    self._elector._try_acquire_or_renew(self._term), remaining
                )
            except TimeoutError:
                continue  # the deadline check above ends the leadership
            except KubernetesError as e:
                _log.info(
                    "Renewing the leader lock on ConfigMap %s failed: %s", configuration.config_map_name, e
                )
                failed = True
                continue
            if renewed:
                failed = False
                state._extend(self, sent + configuration.renew_deadline)
                continue
            _log.warning(
                "The leader lock on ConfigMap %s is no longer ours (%s); stepping down",
                configuration.config_map_name,
                "missing"
                if record is None
                else f"holder {record.holder_identity!r}, term {record.leader_transitions}",
            )
            break
        if not self._cancelled:
            self._leading = False
            self._elector._revoke(self)
