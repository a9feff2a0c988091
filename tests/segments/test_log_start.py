"""A log start offset inside a segment (DeleteRecords): reads, lookups, restarts, truncation, retention."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from logq.config import LogConfig
from logq.errors import OffsetOutOfRangeError
from logq.retention import RetentionJob
from logq.segments import LogManager, PartitionLog
from logq.segments.files import LOG_START_FILE
from logq.segments.manager import INDEX_DIR
from logq.testing import FakeClock, make_batch

CONFIG = LogConfig(segment_bytes=2000, index_interval_bytes=512, file_delete_delay_ms=0)


def filled(manager: LogManager, batches: int = 12) -> PartitionLog:
    """Batches of 2 records, several segments, all below the high watermark."""
    plog = manager.create("q", 0)
    for i in range(batches):
        plog.append(make_batch(2, value_size=300, timestamp=1000 + 10 * i, tag=i))
    plog.high_watermark = plog.log_end_offset
    return plog


def test_the_start_moves_inside_a_segment_and_reads_below_it_fail(data_dir: Path, clock: FakeClock) -> None:
    manager = LogManager(data_dir, CONFIG, clock)
    plog = filled(manager)
    first_segment_end = plog.segment_infos()[0].end_offset
    new_start = first_segment_end + 3  # inside the second segment, inside a batch
    assert plog.advance_log_start(new_start) == new_start
    assert plog.log_start_offset == new_start
    assert (plog.directory / LOG_START_FILE).read_text() == str(new_start)
    with pytest.raises(OffsetOutOfRangeError):
        plog.read(new_start - 1, 1 << 20)
    assert plog.read(new_start, 1 << 20)  # the batch holding it comes back whole, as in Kafka
    # never backwards, never past the high watermark
    assert plog.advance_log_start(1) == new_start
    with pytest.raises(OffsetOutOfRangeError):
        plog.advance_log_start(plog.high_watermark + 1)
    # a timestamp lookup never answers below the start (record timestamps are 1000 + 10 * batch)
    found = plog.offset_for_timestamp(0)
    assert found is not None
    assert found.offset == new_start
    manager.close()


def test_the_start_survives_a_crash_and_a_clean_restart(data_dir: Path, clock: FakeClock) -> None:
    manager = LogManager(data_dir, CONFIG, clock)
    plog = filled(manager)
    plog.advance_log_start(7)
    manager.abandon()  # what kill -9 leaves: no final checkpoint, no clean-shutdown marker
    manager = LogManager(data_dir, CONFIG, clock)
    plog = manager.get("q", 0)
    assert plog is not None
    assert plog.log_start_offset == 7
    manager.close()
    manager = LogManager(data_dir, CONFIG, clock)
    plog = manager.get("q", 0)
    assert plog is not None
    assert plog.log_start_offset == 7
    manager.close()


def test_a_lost_index_does_not_move_the_start_back(data_dir: Path, clock: FakeClock) -> None:
    manager = LogManager(data_dir, CONFIG, clock)
    filled(manager).advance_log_start(9)
    manager.close()
    shutil.rmtree(data_dir / INDEX_DIR)
    manager = LogManager(data_dir, CONFIG, clock)
    plog = manager.get("q", 0)
    assert plog is not None
    assert plog.log_start_offset == 9
    manager.close()


def test_a_log_that_ends_before_its_recorded_start_continues_there(data_dir: Path, clock: FakeClock) -> None:
    manager = LogManager(data_dir, CONFIG, clock)
    plog = filled(manager, batches=3)  # offsets 0-5
    directory = plog.directory
    manager.close()
    (directory / LOG_START_FILE).write_text("9")  # as if the tail past 5 had been lost
    manager = LogManager(data_dir, CONFIG, clock)
    plog = manager.get("q", 0)
    assert plog is not None
    assert (plog.log_start_offset, plog.log_end_offset) == (9, 9)
    assert plog.append(make_batch(1)).base_offset == 9
    manager.close()


def test_truncation_below_the_start_restarts_the_log_there(data_dir: Path, clock: FakeClock) -> None:
    manager = LogManager(data_dir, CONFIG, clock)
    plog = filled(manager, batches=3)  # offsets 0-5, one segment
    plog.advance_log_start(3)  # inside the batch 2-3
    assert plog.truncate_to(2) == 3  # the batch holding the start went: the log continues at 3
    assert (plog.log_start_offset, plog.log_end_offset) == (3, 3)
    assert plog.append(make_batch(1)).base_offset == 3
    manager.close()


def test_retention_deletes_the_segments_wholly_below_the_start(data_dir: Path, clock: FakeClock) -> None:
    manager = LogManager(data_dir, CONFIG, clock)
    plog = filled(manager)
    segments = plog.segment_infos()
    assert len(segments) >= 3
    holding = segments[2]
    new_start = holding.base_offset + 1
    plog.advance_log_start(new_start)
    job = RetentionJob(manager.logs, clock, CONFIG.retention_check_interval_ms)
    assert job.run_once() == 2
    assert plog.segment_infos()[0].base_offset == holding.base_offset  # the one holding the start stays
    assert plog.log_start_offset == new_start
    assert sorted(p.name for p in plog.directory.glob("*.log"))[0] == f"{holding.base_offset:020d}.log"
    manager.close()


def test_an_adopted_start_is_in_force_at_once_and_durable_after_the_next_flush(
    data_dir: Path, clock: FakeClock
) -> None:
    manager = LogManager(data_dir, CONFIG, clock)
    plog = filled(manager)  # a follower's log
    plog.flush()
    plog.adopt_log_start(11)
    assert (plog.log_start_offset, plog.durable_log_start) == (11, 0)
    with pytest.raises(OffsetOutOfRangeError):
        plog.read(10, 1 << 20)
    assert not (plog.directory / LOG_START_FILE).exists()  # no fsync on the follower's fetch path
    plog.adopt_log_start(3)  # never back
    assert plog.log_start_offset == 11
    manager.flush_all()  # the background flush writes it
    assert plog.durable_log_start == 11
    manager.abandon()
    manager = LogManager(data_dir, CONFIG, clock)
    plog = manager.get("q", 0)
    assert plog is not None
    assert plog.log_start_offset == 11
    manager.close()
