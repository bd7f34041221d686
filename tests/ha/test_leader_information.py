"""Flink's LeaderInformationRegisterTest and LeaderInformation semantics."""

from __future__ import annotations

import uuid

import pytest

from standby.ha import LeaderInformation, LeaderInformationRegister


def test_empty_and_known() -> None:
    sid = uuid.uuid4()
    assert LeaderInformation.empty().is_empty()
    assert LeaderInformation.empty() is LeaderInformation.empty()
    info = LeaderInformation.known(sid, "addr")
    assert not info.is_empty()
    assert info == LeaderInformation.known(sid, "addr")
    assert str(info) == f"{sid}@addr"
    assert str(LeaderInformation.empty()) == "<no leader>"
    with pytest.raises(ValueError, match="both"):
        LeaderInformation(sid, None)


def test_register_drops_empty_entries_and_merges() -> None:
    a = LeaderInformation.known(uuid.uuid4(), "a")
    register = LeaderInformationRegister({"x": a, "y": LeaderInformation.empty()})
    assert list(register.registered_component_ids()) == ["x"]
    merged = LeaderInformationRegister.merge(register, "y", a)
    assert merged.has_leader_information("y")
    assert not register.has_leader_information("y")  # immutable
    cleared = LeaderInformationRegister.clear(merged, "x")
    assert not cleared.has_leader_information("x")
    assert cleared.for_component_id_or_empty("x").is_empty()
    assert cleared.for_component_id("x") is None
    assert LeaderInformationRegister.merge(None, "z", LeaderInformation.empty()).has_no_leader_information()
    assert LeaderInformationRegister.of("x", a) == LeaderInformationRegister({"x": a})
