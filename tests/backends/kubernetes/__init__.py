"""Tests of the Kubernetes HA backend, run against the in-repo Kubernetes API test server."""
