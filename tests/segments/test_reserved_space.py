"""Disk blocks reserved ahead of the active segment (log.preallocate.bytes): never visible as data, given
back on roll and close, and harmless to recovery after a crash."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from logq.config import LogConfig
from logq.segments import LogManager, PartitionLog, space
from logq.testing import FakeClock, make_batch

MIB = 1 << 20


@pytest.fixture(autouse=True)
def _needs_fallocate(tmp_path: Path) -> None:
    fd = os.open(tmp_path / "probe", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if not space.reserve(fd, 0, 4096):
            pytest.skip("this filesystem cannot reserve blocks")
    finally:
        os.close(fd)


def allocated(path: Path) -> int:
    return os.stat(path).st_blocks * 512


def segment_files(plog: PartitionLog) -> list[Path]:
    return sorted(plog.directory.glob("*.log"))


def fill(plog: PartitionLog, batches: int) -> bytes:
    for i in range(batches):
        plog.append(make_batch(100, value_size=600, tag=i))  # ~64 KiB each
    return plog.read(0, 1 << 30)


def test_the_active_segment_reserves_ahead_but_its_size_is_its_data(data_dir: Path, clock: FakeClock) -> None:
    manager = LogManager(data_dir, LogConfig(preallocate_bytes=MIB), clock)
    plog = manager.create("q", 0)
    fill(plog, 40)
    [path] = segment_files(plog)
    size = plog.segment_infos()[-1].size
    assert os.stat(path).st_size == size  # reads, recovery and retention see only data
    assert allocated(path) > size + 256 * 1024  # blocks are reserved ahead of the next appends
    assert allocated(path) <= size + MIB + 128 * 1024  # never more than log.preallocate.bytes ahead
    manager.close()
    assert allocated(path) < size + 64 * 1024  # given back on close


def test_a_quiet_partition_reserves_no_more_than_it_holds(data_dir: Path, clock: FakeClock) -> None:
    manager = LogManager(data_dir, LogConfig(preallocate_bytes=64 * MIB), clock)
    plog = manager.create("q", 0)
    plog.append(make_batch(1, value_size=100))
    plog.append(make_batch(1, value_size=100))
    [path] = segment_files(plog)
    assert allocated(path) <= 16 * 1024  # a few blocks, not 64 MiB
    manager.close()


def test_a_roll_gives_back_the_reserved_blocks(data_dir: Path, clock: FakeClock) -> None:
    manager = LogManager(data_dir, LogConfig(preallocate_bytes=MIB, segment_bytes=2 * MIB), clock)
    plog = manager.create("q", 0)
    fill(plog, 50)  # rolls once, at ~2 MiB
    infos = plog.segment_infos()
    assert len(infos) == 2
    first = segment_files(plog)[0]
    assert allocated(first) < infos[0].size + 64 * 1024
    manager.close()


def test_no_reservation_when_switched_off(data_dir: Path, clock: FakeClock) -> None:
    manager = LogManager(data_dir, LogConfig(preallocate_bytes=0), clock)
    plog = manager.create("q", 0)
    fill(plog, 20)
    [path] = segment_files(plog)
    assert allocated(path) < plog.segment_infos()[-1].size + 64 * 1024
    manager.close()


def test_a_crash_with_blocks_reserved_loses_nothing_and_scans_no_padding(
    data_dir: Path, clock: FakeClock
) -> None:
    config = LogConfig(preallocate_bytes=MIB)
    manager = LogManager(data_dir, config, clock)
    plog = manager.create("q", 0)
    before = fill(plog, 30)
    plog.flush()
    end = plog.log_end_offset
    manager.abandon()  # what SIGKILL leaves: no checkpoint, blocks still reserved past the end
    manager = LogManager(data_dir, config, clock)
    report = manager.reports[0]
    assert report.truncated_bytes == 0  # the reserved blocks are past the end of the file, not a torn tail
    plog = manager.get("q", 0)
    assert plog is not None
    assert plog.log_end_offset == end
    assert plog.read(0, 1 << 30) == before
    plog.append(make_batch(1))
    assert plog.log_end_offset == end + 1
    manager.close()


def test_truncation_keeps_the_file_size_at_the_data(data_dir: Path, clock: FakeClock) -> None:
    manager = LogManager(data_dir, LogConfig(preallocate_bytes=MIB), clock)
    plog = manager.create("q", 0)
    fill(plog, 10)
    plog.truncate_to(500)
    [path] = segment_files(plog)
    assert os.stat(path).st_size == plog.segment_infos()[-1].size
    plog.append(make_batch(100, value_size=600))
    assert os.stat(path).st_size == plog.segment_infos()[-1].size
    assert plog.log_end_offset == 600
    manager.close()
