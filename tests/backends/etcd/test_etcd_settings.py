"""Configuration of the etcd backend (no server needed) and the services factory against unreachable etcd."""

from __future__ import annotations

from pathlib import Path

import pytest

from standby.backends.etcd import EtcdEndpoint, EtcdHaServicesFactory, EtcdSettings, EtcdUnavailableError
from standby.config import Configuration, ConfigurationError
from standby.testing.servers import free_port


def test_defaults() -> None:
    settings = EtcdSettings.from_configuration(Configuration({}))
    assert settings.endpoints == (EtcdEndpoint("127.0.0.1", 2379),)
    assert settings.root == "/standby"
    assert settings.cluster_prefix == "/standby/default"
    assert settings.lease_ttl_seconds == 10
    assert settings.effective_keep_alive_interval == pytest.approx(10 / 3)
    assert settings.connection_timeout == 5.0
    assert not settings.uses_tls


def test_options_are_read() -> None:
    settings = EtcdSettings.from_configuration(
        Configuration(
            {
                "high-availability.etcd.endpoints": "10.0.0.1:2379;http://10.0.0.2:2379, [::1]:2380",
                "high-availability.etcd.root": "ha//root/",
                "high-availability.cluster-id": "/prod/",
                "high-availability.etcd.lease-ttl": "2 s",
                "high-availability.etcd.keep-alive-interval": "500 ms",
                "high-availability.etcd.connection-timeout": "3 s",
                "high-availability.etcd.username": "jm",
                "high-availability.etcd.password": "secret",
            }
        )
    )
    assert [str(e) for e in settings.endpoints] == ["10.0.0.1:2379", "10.0.0.2:2379", "[::1]:2380"]
    assert settings.cluster_prefix == "/ha/root/prod"
    assert settings.lease_ttl_seconds == 2
    assert settings.effective_keep_alive_interval == 0.5
    assert settings.connection_timeout == 3.0
    assert settings.username == "jm"
    assert "secret" not in repr(settings)


def test_https_endpoint_enables_tls() -> None:
    settings = EtcdSettings(endpoints=(EtcdEndpoint.parse("https://etcd.example:2379"),))
    assert settings.uses_tls


@pytest.mark.parametrize("endpoint", ["etcd", "etcd:", ":2379", "etcd:0", "etcd:70000", "etcd:port"])
def test_invalid_endpoint_names_the_option(endpoint: str) -> None:
    with pytest.raises(ConfigurationError, match=r"high-availability\.etcd\.endpoints"):
        EtcdEndpoint.parse(endpoint)


def test_invalid_combinations_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="keep-alive-interval"):
        EtcdSettings(lease_ttl=2, keep_alive_interval=2)
    with pytest.raises(ConfigurationError, match="password"):
        EtcdSettings(username="jm")
    with pytest.raises(ConfigurationError, match="key-file"):
        EtcdSettings(tls_cert_file="/cert.pem")
    with pytest.raises(ConfigurationError, match="endpoints"):
        EtcdSettings(endpoints=())


async def test_unreachable_etcd_fails_fast_naming_the_endpoint(tmp_path: Path) -> None:
    port = free_port()
    config = Configuration(
        {
            "high-availability.type": "etcd",
            "high-availability.etcd.endpoints": f"127.0.0.1:{port}",
            "high-availability.etcd.connection-timeout": "300 ms",
            "high-availability.storageDir": str(tmp_path),
        }
    )
    with pytest.raises(EtcdUnavailableError, match=f"127.0.0.1:{port}"):
        await EtcdHaServicesFactory().create_ha_services(config)


async def test_missing_tls_file_names_the_option(tmp_path: Path) -> None:
    config = Configuration(
        {
            "high-availability.type": "etcd",
            "high-availability.etcd.endpoints": f"127.0.0.1:{free_port()}",
            "high-availability.etcd.tls.ca-file": str(tmp_path / "missing-ca.pem"),
            "high-availability.storageDir": str(tmp_path),
        }
    )
    with pytest.raises(ConfigurationError, match=r"tls\.ca-file"):
        await EtcdHaServicesFactory().create_ha_services(config)
