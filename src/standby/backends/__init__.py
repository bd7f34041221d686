"""standby.backends: one package per HA backend (filesystem, zookeeper, kubernetes, etcd), loaded by name."""
