"""Shared pytest fixtures: real ZooKeeper/etcd servers and the loopback TCP proxy (standby.testing)."""

pytest_plugins = ["standby.testing.pytest_fixtures"]
