"""ZooKeeper HA backend (Flink's ZooKeeper HA services on kazoo)."""
