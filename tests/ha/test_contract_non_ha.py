"""The leader election contract suite for the standalone and embedded services."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from standby.config import Configuration
from standby.ha import EmbeddedHaServices, HighAvailabilityServices, create_high_availability_services
from standby.testing.contract import LeaderElectionContract


class StandaloneBackend:
    supports_failover = False
    publishes_confirmed_address = False

    async def new_services(self) -> HighAvailabilityServices:
        return await create_high_availability_services(Configuration({}))


class TestStandaloneLeaderElection(LeaderElectionContract):
    @pytest.fixture
    def ha_backend(self) -> StandaloneBackend:
        return StandaloneBackend()


class _ProcessView(EmbeddedHaServices):
    """One "process" of an embedded cluster: shares the leader services, closes only itself."""

    def __init__(self, shared: EmbeddedHaServices) -> None:
        super().__init__()
        self._services = shared._services


class EmbeddedBackend:
    supports_failover = True
    publishes_confirmed_address = True
    shares_session_across_components = False  # Flink's embedded services elect each component on its own

    def __init__(self) -> None:
        self.shared = EmbeddedHaServices()

    async def new_services(self) -> HighAvailabilityServices:
        view = _ProcessView(self.shared)

        async def close() -> None:
            view._shut_down = True

        view.close = close  # type: ignore[method-assign]
        return view


class TestEmbeddedLeaderElection(LeaderElectionContract):
    @pytest.fixture
    async def ha_backend(self) -> AsyncIterator[EmbeddedBackend]:
        backend = EmbeddedBackend()
        yield backend
        await backend.shared.close()
