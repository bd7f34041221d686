"""The backend-neutral contract suites on a real etcd."""

from __future__ import annotations

import pytest

from standby.testing.contract import LeaderElectionContract

from .conftest import EtcdBackend

pytestmark = pytest.mark.etcd


class TestEtcdLeaderElection(LeaderElectionContract):
    @pytest.fixture
    def ha_backend(self, etcd_backend: EtcdBackend) -> EtcdBackend:
        return etcd_backend
