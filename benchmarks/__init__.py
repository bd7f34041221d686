"""Benchmarks of standby (not tests): failover times, HA primitives, side by side with Flink."""
