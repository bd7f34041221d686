"""standby.testing: the public test harness — backend contract suites, real server fixtures, fault injection."""
