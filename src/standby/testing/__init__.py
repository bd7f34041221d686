"""Test harness for standby: real ZooKeeper and etcd servers, network fault injection, backend contract suites."""
