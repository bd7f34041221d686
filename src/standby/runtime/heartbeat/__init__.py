"""Heartbeat monitoring between JobManager components and TaskManagers (Flink's ``runtime/heartbeat``)."""

from ._heartbeat import HeartbeatManager as HeartbeatManager
