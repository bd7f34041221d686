"""standby.testing: public test harness — contract suites every HA backend runs, and test helpers."""
