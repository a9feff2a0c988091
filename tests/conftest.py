from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from logq.config import LogConfig
from logq.segments import LogManager
from logq.testing import FakeClock
from tests import small_disk as disks
from tests.broker_process import BrokerProcess
from tests.zookeeper_server import ZooKeeperUnavailable, find_zookeeper


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def manager(data_dir: Path, clock: FakeClock) -> Iterator[LogManager]:
    m = LogManager(data_dir, LogConfig(segment_bytes=64 * 1024, index_interval_bytes=1024), clock)
    yield m
    m.close()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[BrokerProcess]:
    """A standalone broker process with delete.queue.enable on."""
    proc = BrokerProcess(tmp_path / "broker-data").start()
    yield proc
    proc.kill()


# Small real filesystems on loop devices (tests/small_disk.py) for full-disk and failed-fsync tests; skipped
# where loop devices cannot be mounted (not root, none in a container), except under CI, where it fails.


def _mount(mounting: contextlib.AbstractContextManager[disks.D]) -> Iterator[disks.D]:
    stack = contextlib.ExitStack()
    try:
        disk = stack.enter_context(mounting)
    except disks.DiskUnavailableError as exc:
        if os.environ.get("CI"):  # a skip there would hide that these tests never run
            pytest.fail(f"a loop-mounted filesystem is required under CI: {exc}")
        pytest.skip(f"cannot mount a loop device: {exc}")
    with stack:
        yield disk


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[disks.SmallDisk]:
    """A 48 MiB ext4 filesystem that the test can fill (``fill()``, ``free()``)."""
    yield from _mount(disks.small_disk(tmp_path))


@pytest.fixture
def thin_disk(tmp_path: Path) -> Iterator[disks.ThinDisk]:
    """A 64 MiB ext4 filesystem on 24 MiB of backing store that the test can exhaust (``exhaust()``):
    writes then still succeed, but fsync fails."""
    yield from _mount(disks.thin_disk(tmp_path))


# A real ZooKeeper (tests/zookeeper_server.py: LOGQ_TEST_ZOOKEEPER, Debian's package, testcontainers) for
# tests/coordinator and tests/cluster; skipped without one, except under CI, where it fails.


@pytest.fixture(scope="session")
def zookeeper(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``HOST:PORT`` of a running ZooKeeper."""
    try:
        handle = find_zookeeper(tmp_path_factory.mktemp("zookeeper"))
    except ZooKeeperUnavailable as exc:
        if os.environ.get("CI"):  # make test installs it: a skip there would hide a broken step
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


# The fault scenarios' figures (acknowledged, lost, windows), printed at the end so CI logs show them. They
# travel in each test's report, which pytest-xdist sends from its workers to the process that prints.
_FIGURES = "fault figures"
_figure_lines: list[str] = []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if report.when == "call" and "cluster" in item.path.parts:
        from tests.cluster.fault_harness import FIGURE_LINES

        report.user_properties.extend((_FIGURES, line) for line in FIGURE_LINES)
        FIGURE_LINES.clear()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _figure_lines.extend(str(value) for key, value in report.user_properties if key == _FIGURES)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _figure_lines:
        terminalreporter.section(_FIGURES)
        for line in _figure_lines:
            terminalreporter.write_line(line)
