"""The coordinator tests use the ``zookeeper`` and ``zk_connect`` fixtures of tests/conftest.py: a real
ZooKeeper, one server per test session, a fresh chroot per test."""
