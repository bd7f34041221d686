"""HA backends: one package per coordination store (filesystem, zookeeper, kubernetes, etcd)."""
