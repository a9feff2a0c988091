from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from logq.config import LogConfig
from logq.segments import LogManager
from logq.testing import FakeClock
from tests.broker_process import BrokerProcess


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
