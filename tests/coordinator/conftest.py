"""A real ZooKeeper for the coordinator tests: one server per test session, a fresh chroot per test.

Where it comes from: see tests/zookeeper_server.py (LOGQ_TEST_ZOOKEEPER, Debian's package,
testcontainers). Without one the tests are skipped, except under CI, where they fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from tests.zookeeper_server import ZooKeeperUnavailable, find_zookeeper


@pytest.fixture(scope="session")
def zookeeper(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``HOST:PORT`` of a running ZooKeeper."""
    try:
        handle = find_zookeeper(tmp_path_factory.mktemp("zookeeper"))
    except ZooKeeperUnavailable as exc:
        if os.environ.get("CI"):  # .ci/run installs ZooKeeper: a skip there would hide a broken step
            pytest.fail(f"ZooKeeper is required under CI: {exc}")
        pytest.skip(str(exc))
    try:
        yield handle.connect
    finally:
        handle.stop()


@pytest.fixture
def zk_connect(zookeeper: str) -> str:
    """A connect string with a chroot of its own: ``HOST:PORT/logq-test-<random>``."""
    return f"{zookeeper}/logq-test-{uuid.uuid4().hex[:12]}"
