"""Retention on a real full disk (a small loop-mounted ext4 the test fills): it is what frees the space
of a broker that filled its own disk, so a roll it cannot make does not stop its deletions, and appends
resume once it has deleted."""

from __future__ import annotations

from logq.config import DAY_MS, LogConfig
from logq.errors import DiskFullError, LogDirOfflineError
from logq.retention import RetentionJob
from logq.segments import LogManager
from logq.testing import FakeClock, make_batch
from tests.small_disk import SmallDisk

CONFIG = LogConfig(
    segment_bytes=256 * 1024, segment_ms=DAY_MS, retention_ms=7 * DAY_MS, file_delete_delay_ms=0
)


def test_retention_deletes_aged_segments_on_a_full_disk_and_appends_resume(
    small_disk: SmallDisk, clock: FakeClock
) -> None:
    manager = LogManager(small_disk.path / "data", CONFIG, clock)
    plog = manager.create("q", 0)
    for tag in range(40):  # 2.5 MiB: ten segments
        plog.append(make_batch(4, value_size=16_000, tag=tag))
    plog.high_watermark = plog.log_end_offset
    plog.flush()
    segments = len(plog.segment_infos())
    end = plog.log_end_offset
    clock.advance(8 * DAY_MS)  # every segment aged out, the active one past segment.ms
    small_disk.fill(inodes=True)  # not even an empty segment file can be created
    big = make_batch(4, value_size=16_000, tag=40)
    try:
        plog.append(big)
        raise AssertionError("the append should have found no space")
    except DiskFullError:
        pass

    job = RetentionJob(manager.logs, clock, CONFIG.retention_check_interval_ms)
    assert job.run_once() == segments - 1  # every segment but the active one, which it could not roll
    assert plog.log_start_offset == plog.segment_infos()[0].base_offset < end
    assert small_disk.free_bytes() > 1024 * 1024  # their blocks are free again
    assert plog.append(big).base_offset == end  # no restart, no help from the operator
    assert not plog.health.full
    manager.close()


def test_retention_still_frees_space_in_an_offline_directory(small_disk: SmallDisk, clock: FakeClock) -> None:
    """Offline (here: an index write failed), nothing is appended until a restart, but deleting aged
    segments below the durable offset is safe, and the space it frees is what the restart will need.
    RocksDB refuses every write after its failed one, so retention leaves the index alone."""
    manager = LogManager(small_disk.path / "data", CONFIG, clock)
    manager.health.index_headroom = 0  # let the index try to write on the full disk
    plog = manager.create("q", 0)
    for tag in range(40):  # 2.5 MiB: ten segments
        plog.append(make_batch(4, value_size=16_000, tag=tag))
    plog.high_watermark = plog.log_end_offset
    plog.flush()
    segments = len(plog.segment_infos())
    small_disk.fill()
    for tag in range(40, 10_000):  # each flush writes a checkpoint: the index soon needs a block
        try:
            plog.append(make_batch(1, value_size=100, tag=tag))
            plog.flush()
        except LogDirOfflineError:
            break
    assert manager.health.offline

    clock.advance(8 * DAY_MS)
    job = RetentionJob(manager.logs, clock, CONFIG.retention_check_interval_ms)
    assert job.run_once() == segments - 1
    assert small_disk.free_bytes() > 1024 * 1024
    manager.close()
