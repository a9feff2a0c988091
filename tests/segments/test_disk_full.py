"""The storage engine on a real full disk (a small loop-mounted ext4 the test fills) and on a disk whose
fsync fails (thin-provisioned storage the test exhausts): an append that finds no space is refused and
cut back, and appends resume once space is freed; a failed fsync or index write takes the data
directory offline for good, and what survives a restart is every acknowledged (flushed) batch, whole."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from logq import batch as rb
from logq.config import LogConfig
from logq.errors import DiskFullError, LogDirOfflineError
from logq.segments import LogManager, PartitionLog
from logq.segments.manager import CLEAN_SHUTDOWN_MARKER
from logq.testing import FakeClock, make_batch
from tests.small_disk import MIB, SmallDisk, ThinDisk

QUEUE = "q"


def open_log(data_dir: Path, clock: FakeClock, config: LogConfig) -> tuple[LogManager, PartitionLog]:
    manager = LogManager(data_dir, config, clock)
    return manager, manager.create(QUEUE, 0)


def segment_bytes(plog: PartitionLog) -> int:
    """What the segment files hold on disk (their sizes), as opposed to what the log counts."""
    return sum(p.stat().st_size for p in plog.directory.glob("*.log"))


def tags(plog: PartitionLog) -> list[int]:
    """The tag of every batch in the log, checking that batches are whole and offsets contiguous."""
    out: list[int] = []
    offset = plog.log_start_offset
    while offset < plog.log_end_offset:
        data = plog.read(offset, 1 << 24)
        position = 0
        while position < len(data):
            header = rb.validate(data[position : position + rb.read_prefix(data, position)[1]])
            assert header.base_offset == offset
            records = rb.decode_records(
                bytes(data[position + rb.HEADER_SIZE : position + header.size]), header
            )
            value = records[0].value
            assert value is not None
            out.append(int(value[:6]))
            offset = header.last_offset + 1
            position += header.size
    return out


def append_and_flush_until_refused(plog: PartitionLog, first_tag: int) -> int:
    """Append and flush one small batch at a time until a flush (or append) is refused with
    LogDirOfflineError; returns the tag of the last batch acknowledged (flushed)."""
    for tag in range(first_tag, first_tag + 5000):  # each flush writes a checkpoint to the index
        try:
            plog.append(make_batch(1, value_size=100, tag=tag))
            plog.flush()
        except LogDirOfflineError:
            return tag - 1
    raise AssertionError("never refused")


def test_an_append_that_finds_no_space_is_refused_whole_and_appends_resume_once_space_is_freed(
    small_disk: SmallDisk, clock: FakeClock
) -> None:
    data_dir = small_disk.path / "data"
    manager, plog = open_log(data_dir, clock, LogConfig())
    for tag in range(5):
        plog.append(make_batch(10, value_size=100, tag=tag))
    plog.flush()
    end, on_disk = plog.log_end_offset, segment_bytes(plog)

    small_disk.fill()
    with pytest.raises(DiskFullError):  # a new partition needs a block for its directory
        manager.create("other", 0)
    with pytest.raises(DiskFullError, match="no space left"):
        plog.append(make_batch(64, value_size=16_000, tag=99))  # 1 MiB: the disk has not 4 KiB
    assert (plog.log_end_offset, segment_bytes(plog)) == (end, on_disk)  # cut back: nothing half-written
    assert (plog.health.full, plog.health.offline) == (True, False)
    assert plog.health.errors["no_space"] == 2
    assert tags(plog) == [0, 1, 2, 3, 4]  # reads go on
    assert plog.flush() == end  # nothing new to flush, and nothing refused

    small_disk.free()
    plog.append(make_batch(10, value_size=100, tag=5))  # no restart needed
    assert (plog.health.full, plog.health.offline) == (False, False)
    plog.append(make_batch(64, value_size=16_000, tag=6))
    plog.append(make_batch(10, value_size=100, tag=7))
    [path] = plog.directory.glob("*.log")
    assert path.stat().st_blocks * 512 > segment_bytes(plog) + 512 * 1024  # reserving ahead again
    assert plog.flush() == plog.log_end_offset
    manager.close()

    manager = LogManager(data_dir, LogConfig(), clock)
    assert manager.reports[0].truncated_bytes == 0
    reopened = manager.get(QUEUE, 0)
    assert reopened is not None
    assert tags(reopened) == [0, 1, 2, 3, 4, 5, 6, 7]
    manager.close()


def test_a_disk_hovering_at_full_is_logged_once_a_minute_not_once_a_request(
    small_disk: SmallDisk, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    manager, plog = open_log(small_disk.path / "data", clock, LogConfig())
    plog.append(make_batch(10, value_size=100, tag=0))
    big = make_batch(64, value_size=16_000, tag=1)
    for _ in range(3):  # full, space again, full again... within a minute
        small_disk.fill()
        for _ in range(5):
            with pytest.raises(DiskFullError):
                plog.append(big)
        small_disk.free()
        plog.append(make_batch(1, tag=2))
    messages = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "logq.segments.health"]
    assert [level for level, _ in messages] == ["ERROR", "WARNING"]
    assert "is full" in messages[0][1]
    assert "has space again" in messages[1][1]
    assert plog.health.errors["no_space"] == 15
    manager.close()


def test_a_batch_that_only_partly_fits_is_cut_back(small_disk: SmallDisk, clock: FakeClock) -> None:
    data_dir = small_disk.path / "data"
    manager, plog = open_log(data_dir, clock, LogConfig(preallocate_bytes=0))
    plog.append(make_batch(10, value_size=100, tag=0))
    plog.flush()
    end, on_disk = plog.log_end_offset, segment_bytes(plog)
    small_disk.fill()
    small_disk.release(256 * 1024)  # 256 KiB free: a short write, then ENOSPC
    assert small_disk.free_bytes() >= 200 * 1024

    with pytest.raises(DiskFullError):
        plog.append(make_batch(64, value_size=16_000, tag=1))  # 1 MiB
    assert (plog.log_end_offset, segment_bytes(plog)) == (end, on_disk)
    assert small_disk.free_bytes() >= 200 * 1024  # the blocks the partial write took were given back

    plog.append(make_batch(8, value_size=8_000, tag=2))  # 64 KiB fits
    plog.flush()
    manager.close()
    manager = LogManager(data_dir, LogConfig(), clock)
    reopened = manager.get(QUEUE, 0)
    assert reopened is not None
    assert manager.reports[0].truncated_bytes == 0
    assert tags(reopened) == [0, 2]
    manager.close()


def test_on_a_full_disk_flushes_go_on_while_appends_fit_and_the_index_catches_up_later(
    small_disk: SmallDisk, clock: FakeClock
) -> None:
    """The segment has blocks reserved ahead, so appends still fit after the disk is full; the checkpoint
    a flush writes to RocksDB would need a new block. The index writes wait (a failed one would stop
    RocksDB for good) while the fsyncs go on, so flushed data is durable and acknowledged; once there is
    space the index catches up without a restart."""
    data_dir = small_disk.path / "data"
    manager, plog = open_log(data_dir, clock, LogConfig(preallocate_bytes=4 * MIB))
    for tag in range(70):
        plog.append(make_batch(4, value_size=16_000, tag=tag))  # 4.4 MiB, and as much reserved ahead
    plog.flush()
    small_disk.fill()

    tag = 70
    while True:  # until the reserved blocks run out
        try:
            plog.append(make_batch(1, value_size=8_000, tag=tag))
        except DiskFullError:
            break
        assert plog.flush() == plog.log_end_offset  # durable: fsynced, the checkpoint waits
        tag += 1
    assert tag > 200  # hundreds of flushes with no index write
    assert (plog.health.full, plog.health.offline) == (True, False)

    small_disk.free()
    plog.append(make_batch(1, value_size=8_000, tag=tag))
    plog.flush()  # writes the index entries and the checkpoint that waited
    manager.close()
    manager = LogManager(data_dir, LogConfig(), clock)
    assert manager.reports[0].scanned_batches == 0  # the checkpoint is at the end: nothing to rescan
    reopened = manager.get(QUEUE, 0)
    assert reopened is not None
    assert tags(reopened) == list(range(tag + 1))
    manager.close()


def test_a_failed_index_write_takes_the_directory_offline_until_a_restart(
    small_disk: SmallDisk, clock: FakeClock
) -> None:
    """RocksDB refuses every write after a failed one, so nothing more is flushed or acknowledged until
    a restart reopens it. (Index writes wait while less than a MiB is free; here that headroom is taken
    away, as when another process fills the disk between the check and the write.)"""
    data_dir = small_disk.path / "data"
    manager, plog = open_log(data_dir, clock, LogConfig(preallocate_bytes=4 * MIB))
    manager.health.index_headroom = 0
    for tag in range(70):
        plog.append(make_batch(4, value_size=16_000, tag=tag))  # 4.4 MiB, and as much reserved ahead
    plog.flush()
    small_disk.fill()

    acknowledged = append_and_flush_until_refused(plog, first_tag=70)
    assert acknowledged >= 70  # appends and flushes worked until the index needed a block
    assert plog.health.offline
    assert plog.health.errors == {"index": 1}  # not the segment: its appends went to reserved blocks
    durable = plog.durable_offset
    plog.high_watermark = plog.log_end_offset  # as a standalone broker sets it
    assert plog.high_watermark == durable < plog.log_end_offset  # reads stop at what was fsynced
    with pytest.raises(LogDirOfflineError):
        plog.append(make_batch(1, value_size=100, tag=5000))
    small_disk.free()
    with pytest.raises(LogDirOfflineError):  # space alone does not bring it back: RocksDB is stuck
        plog.append(make_batch(1, value_size=100, tag=5001))
    with pytest.raises(LogDirOfflineError):
        manager.create("other", 0)
    manager.close()  # abandoned: no clean-shutdown marker, so the next start recovers
    assert not (data_dir / CLEAN_SHUTDOWN_MARKER).exists()

    manager = LogManager(data_dir, LogConfig(), clock)
    reopened = manager.get(QUEUE, 0)
    assert reopened is not None
    assert reopened.log_end_offset >= durable
    recovered = tags(reopened)
    assert recovered[: acknowledged + 1] == list(range(acknowledged + 1))
    reopened.append(make_batch(1, value_size=100, tag=6000))
    reopened.flush()
    manager.close()


def test_an_index_write_that_fails_inside_an_append_keeps_the_batch_and_the_offsets_whole(
    small_disk: SmallDisk, clock: FakeClock
) -> None:
    """Index entries are written to RocksDB from append() every few hundred batches. When that write
    fails, the batch is already whole in the segment: it stays, counted (it was acknowledged with
    acks=1), and the next append is refused. (It used to raise with the batch written but not counted,
    so the next batch was written with the same base offset.) No index headroom, as above."""
    data_dir = small_disk.path / "data"
    manager, plog = open_log(data_dir, clock, LogConfig(preallocate_bytes=4 * MIB))
    manager.health.index_headroom = 0
    for tag in range(70):
        plog.append(make_batch(4, value_size=16_000, tag=tag))  # 4.4 MiB, and as much reserved ahead
    plog.flush()
    small_disk.fill()

    appended: list[int] = []
    for tag in range(70, 10_000):  # rising timestamps: a time-index entry per batch
        try:
            appended.append(plog.append(make_batch(1, timestamp=10_000 + tag, tag=tag)).base_offset)
        except LogDirOfflineError:
            break
    assert plog.health.errors == {"index": 1}
    assert len(appended) > 100  # the failing write was the first that reached RocksDB
    assert appended == list(range(appended[0], appended[0] + len(appended)))
    manager.abandon()  # SIGKILL

    small_disk.free()
    manager = LogManager(data_dir, LogConfig(), clock)
    reopened = manager.get(QUEUE, 0)
    assert reopened is not None
    assert reopened.log_end_offset == appended[-1] + 1
    assert tags(reopened) == list(range(70 + len(appended)))
    manager.close()


def kernel_reports_success(path: Path, tries: int = 5) -> bool:
    """Whether an fsync of ``path`` succeeds within a few tries (each error is reported once)."""
    for _ in range(tries):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fdatasync(fd)
            return True
        except OSError:
            continue
        finally:
            os.close(fd)
    return False


def test_a_failed_fsync_takes_the_directory_offline_for_good(thin_disk: ThinDisk, clock: FakeClock) -> None:
    """After a failed fsync the kernel may have dropped the pages it could not write, and a later fsync
    can succeed over the hole: nothing past the durable offset may ever be acknowledged."""
    data_dir = thin_disk.path / "data"
    manager, plog = open_log(data_dir, clock, LogConfig())
    for tag in range(20):
        plog.append(make_batch(10, value_size=1000, tag=tag))
    plog.flush()
    durable = plog.durable_offset
    thin_disk.exhaust()

    for tag in range(20, 200):  # 2 MiB into the page cache: more than writeback can place
        plog.append(make_batch(10, value_size=1000, tag=tag))
    with pytest.raises(LogDirOfflineError, match="fsync"):
        plog.flush()
    assert plog.health.offline
    assert plog.health.errors["fsync"] == 1
    assert plog.durable_offset == durable
    plog.high_watermark = plog.log_end_offset  # as a standalone broker sets it
    assert plog.high_watermark == durable  # the tail may be gone from the disk: not served
    assert len(tags(plog)) == 200  # (the log itself still has it, in the page cache)
    assert kernel_reports_success(next(plog.directory.glob("*.log")))  # the error, once reported, is gone
    for _ in range(3):  # the log never forgets it
        with pytest.raises(LogDirOfflineError):
            plog.flush()
    with pytest.raises(LogDirOfflineError):
        plog.append(make_batch(1, tag=999))
    assert plog.durable_offset == durable
    manager.close()
    assert not (data_dir / CLEAN_SHUTDOWN_MARKER).exists()

    thin_disk.replenish()
    thin_disk.remount()  # what the disk holds after a power cycle
    manager = LogManager(data_dir, LogConfig(), clock)
    reopened = manager.get(QUEUE, 0)
    assert reopened is not None
    recovered = tags(reopened)  # whole batches only, offsets contiguous
    assert reopened.log_end_offset >= durable
    assert recovered == list(range(len(recovered)))  # a prefix of what was appended
    reopened.append(make_batch(1, tag=len(recovered)))
    reopened.flush()
    manager.close()
