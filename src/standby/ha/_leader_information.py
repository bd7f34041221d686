"""LeaderInformation (session id + address of a leader) and the per-component LeaderInformationRegister."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from uuid import UUID


@dataclass(frozen=True, slots=True)
class LeaderInformation:
    """The session id and address a leader published; both ``None`` means "no leader" (Flink's ``empty()``)."""

    session_id: UUID | None = None
    address: str | None = None

    def __post_init__(self) -> None:
        if (self.session_id is None) != (self.address is None):
            raise ValueError(
                "LeaderInformation needs both a session id and an address, or neither "
                f"(got session_id={self.session_id!r}, address={self.address!r})"
            )

    @staticmethod
    def known(session_id: UUID, address: str) -> LeaderInformation:
        return LeaderInformation(session_id, address)

    @staticmethod
    def empty() -> LeaderInformation:
        return _EMPTY

    def is_empty(self) -> bool:
        return self.session_id is None

    def __str__(self) -> str:
        # LeaderElectionUtils.convertToString
        return "<no leader>" if self.is_empty() else f"{self.session_id}@{self.address}"


_EMPTY = LeaderInformation()


class LeaderInformationRegister:
    """Immutable map ``component id -> LeaderInformation``; empty entries are dropped (Flink semantics)."""

    __slots__ = ("_entries",)

    def __init__(self, entries: Mapping[str, LeaderInformation] | None = None) -> None:
        self._entries: dict[str, LeaderInformation] = {
            k: v for k, v in (entries or {}).items() if not v.is_empty()
        }

    @staticmethod
    def empty() -> LeaderInformationRegister:
        return LeaderInformationRegister()

    @staticmethod
    def of(component_id: str, info: LeaderInformation) -> LeaderInformationRegister:
        return LeaderInformationRegister({component_id: info})

    @staticmethod
    def merge(
        register: LeaderInformationRegister | None, component_id: str, info: LeaderInformation
    ) -> LeaderInformationRegister:
        """A copy with ``component_id`` set to ``info``; an empty ``info`` removes the key."""
        entries = dict(register._entries) if register is not None else {}
        if info.is_empty():
            entries.pop(component_id, None)
        else:
            entries[component_id] = info
        return LeaderInformationRegister(entries)

    @staticmethod
    def clear(register: LeaderInformationRegister | None, component_id: str) -> LeaderInformationRegister:
        return LeaderInformationRegister.merge(register, component_id, LeaderInformation.empty())

    def for_component_id(self, component_id: str) -> LeaderInformation | None:
        return self._entries.get(component_id)

    def for_component_id_or_empty(self, component_id: str) -> LeaderInformation:
        return self._entries.get(component_id, _EMPTY)

    def registered_component_ids(self) -> Iterable[str]:
        return tuple(self._entries)

    def has_leader_information(self, component_id: str) -> bool:
        return component_id in self._entries

    def has_no_leader_information(self) -> bool:
        return not self._entries

    def items(self) -> Iterator[tuple[str, LeaderInformation]]:
        return iter(tuple(self._entries.items()))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LeaderInformationRegister) and self._entries == other._entries

    def __hash__(self) -> int:
        return hash(frozenset(self._entries.items()))

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v}" for k, v in self._entries.items())
        return f"LeaderInformationRegister({inner})"
