"""The fault schedule of a chaos run: seeded, reproducible, and bounded in time.

``make_schedule(seed, ...)`` returns the same list of :class:`FaultSpec` for the same arguments. The first faults
are one of every kind the backend supports, in a seeded order, aimed at the leader, with the pause and the cut
longer than the session timeout (so a short run still covers every kind, failovers and a real session loss);
random faults follow. A spec
names a role (``leader``/``standby``) or a TaskManager index, not a process id: which process leads is decided
by the run, so the schedule is reproducible and the effect as close to it as real processes allow.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = [
    "COORDINATION_FAULTS",
    "PROCESS_FAULTS",
    "FaultSpec",
    "fault_kinds",
    "make_schedule",
]

#: faults of the processes, for every backend
PROCESS_FAULTS: tuple[str, ...] = ("kill-jobmanager", "pause-jobmanager", "kill-taskmanager")
#: faults of the coordination service, for backends that have one (ZooKeeper, etcd)
COORDINATION_FAULTS: tuple[str, ...] = ("restart-server", "cut-jobmanager")

_WEIGHTS: dict[str, float] = {
    "kill-jobmanager": 3.0,
    "pause-jobmanager": 3.0,
    "kill-taskmanager": 2.0,
    "restart-server": 1.5,
    "cut-jobmanager": 3.0,
}


@dataclass(frozen=True)
class FaultSpec:
    """One fault: wait ``gap_s``, inject, hold ``hold_s`` (down time, pause or cut), heal."""

    number: int
    kind: str
    #: ``leader`` or ``standby`` (JobManager faults), ``tm-<n>`` (TaskManagers), ``server``
    target: str
    hold_s: float
    gap_s: float
    #: cut: ``stall`` or ``drop``; restart-server: ``stop`` or ``kill``
    mode: str | None = None

    def describe(self) -> str:
        mode = f" ({self.mode})" if self.mode else ""
        return (
            f"#{self.number} {self.kind}{mode} {self.target} for {self.hold_s:.2f} s after {self.gap_s:.2f} s"
        )


def fault_kinds(backend: str) -> tuple[str, ...]:
    """The fault kinds a backend supports: the file-system backend has no server and no connection to cut."""
    return PROCESS_FAULTS if backend == "filesystem" else PROCESS_FAULTS + COORDINATION_FAULTS


def make_schedule(
    seed: int,
    backend: str,
    duration_s: float,
    taskmanagers: int,
    session_timeout_s: float,
    max_gap_s: float = 3.0,
) -> list[FaultSpec]:
    """Faults whose nominal gaps and holds add up to at least ``duration_s`` (the run stops at its deadline)."""
    rng = random.Random(seed)
    kinds = fault_kinds(backend)
    first_round = list(kinds)
    rng.shuffle(first_round)
    schedule: list[FaultSpec] = []
    total = 0.0
    # bounded: every fault adds at least 0.2 s of gap
    while total < duration_s:
        number = len(schedule) + 1
        forced = number <= len(first_round)
        kind = first_round[number - 1] if forced else rng.choices(kinds, [_WEIGHTS[k] for k in kinds])[0]
        gap = rng.uniform(0.2, max_gap_s)
        mode: str | None = None
        # the first round hits the leader: a short run must see failovers
        role = "leader" if forced or rng.random() < 0.75 else "standby"
        if kind == "kill-jobmanager":
            target = role
            hold = rng.uniform(0.0, 1.5)
        elif kind == "pause-jobmanager":
            target = role
            # longer than the session timeout / lease in the first round: the paused leader is deposed
            hold = (
                rng.uniform(1.3, 2.0) * session_timeout_s
                if forced or rng.random() < 0.4
                else rng.uniform(0.2, 0.8) * session_timeout_s
            )
        elif kind == "kill-taskmanager":
            target = f"tm-{rng.randrange(taskmanagers) + 1}"
            hold = rng.uniform(0.0, 1.5)
        elif kind == "restart-server":
            target = "server"
            mode = rng.choice(("stop", "kill"))
            hold = rng.uniform(0.2, 1.2) * session_timeout_s
        elif kind == "cut-jobmanager":
            target = role
            mode = rng.choice(("stall", "drop"))
            hold = (
                rng.uniform(1.3, 2.0) * session_timeout_s
                if forced or rng.random() < 0.4
                else rng.uniform(0.2, 0.8) * session_timeout_s
            )
        else:  # pragma: no cover - kinds come from fault_kinds
            raise ValueError(f"unknown fault kind {kind!r}")
        schedule.append(FaultSpec(number, kind, target, round(hold, 3), round(gap, 3), mode))
        total += gap + hold
    return schedule
