"""The retention job on real logs with a fake clock."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from logq.config import DAY_MS, LogConfig
from logq.errors import OffsetOutOfRangeError
from logq.retention import RetentionJob
from logq.segments import LogManager
from logq.testing import FakeClock, make_batch

CONFIG = LogConfig(segment_bytes=2000, retention_ms=7 * DAY_MS, file_delete_delay_ms=60_000)


def fill(manager: LogManager, clock: FakeClock, batches: int) -> None:
    plog = manager.get("q", 0) or manager.create("q", 0)
    for i in range(batches):
        plog.append(make_batch(2, value_size=300, tag=i))
    plog.high_watermark = plog.log_end_offset


def test_aged_segments_go_and_reads_below_the_new_start_fail(
    data_dir: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="logq")
    manager = LogManager(data_dir, CONFIG, clock)
    fill(manager, clock, 12)  # old data: several segments
    clock.advance(6 * DAY_MS)
    plog = manager.get("q", 0)
    assert plog is not None
    old_segments = len(plog.segment_infos())
    plog.roll()
    young_start = plog.log_end_offset
    fill(manager, clock, 3)  # young data
    job = RetentionJob(manager.logs, clock, CONFIG.retention_check_interval_ms)
    assert job.run_once() == 0
    clock.advance(2 * DAY_MS)
    assert job.run_once() == old_segments
    assert plog.log_start_offset == young_start
    assert job.statistics().segments_deleted == old_segments
    with pytest.raises(OffsetOutOfRangeError, match="outside the log"):
        plog.read(0, 1000)
    assert plog.read(young_start, 1000)
    deletions = [r for r in caplog.records if "deleted segment" in r.getMessage()]
    assert len(deletions) == old_segments
    assert all("retention.ms" in r.getMessage() for r in deletions)
    manager.close()


def test_the_active_segment_and_data_at_or_above_the_high_watermark_stay(
    data_dir: Path, clock: FakeClock
) -> None:
    manager = LogManager(data_dir, CONFIG.with_overrides({"segment.ms": 10 * DAY_MS}), clock)
    fill(manager, clock, 12)
    plog = manager.get("q", 0)
    assert plog is not None
    infos = plog.segment_infos()
    plog.high_watermark = infos[2].base_offset + 1  # inside the third segment
    clock.advance(8 * DAY_MS)
    RetentionJob(manager.logs, clock, 1000).run_once()
    assert plog.log_start_offset == infos[2].base_offset
    plog.high_watermark = plog.log_end_offset
    RetentionJob(manager.logs, clock, 1000).run_once()
    remaining = plog.segment_infos()
    assert len(remaining) == 1
    assert remaining[0].active
    assert plog.read(remaining[0].base_offset, 10_000)
    manager.close()


def test_an_idle_active_segment_is_rolled_and_then_ages_out(data_dir: Path, clock: FakeClock) -> None:
    manager = LogManager(data_dir, CONFIG.with_overrides({"segment.ms": DAY_MS}), clock)
    fill(manager, clock, 1)
    plog = manager.get("q", 0)
    assert plog is not None
    clock.advance(8 * DAY_MS)
    RetentionJob(manager.logs, clock, 1000).run_once()
    assert plog.log_start_offset == plog.log_end_offset == 2
    manager.close()


def test_size_retention(data_dir: Path, clock: FakeClock) -> None:
    manager = LogManager(data_dir, CONFIG.with_overrides({"retention.bytes": 3000}), clock)
    fill(manager, clock, 30)
    plog = manager.get("q", 0)
    assert plog is not None
    RetentionJob(manager.logs, clock, 1000).run_once()
    assert 3000 <= plog.size_bytes < 3000 + 2000
    manager.close()


def test_deleted_files_are_renamed_first_and_unlinked_after_the_delay(
    data_dir: Path, clock: FakeClock
) -> None:
    manager = LogManager(data_dir, CONFIG, clock)
    fill(manager, clock, 12)
    clock.advance(8 * DAY_MS)
    job = RetentionJob(manager.logs, clock, 1000)
    fill(manager, clock, 1)  # so that the active segment is young
    job.run_once()
    pending = sorted(p.name for p in (data_dir / "q-0").glob("*.deleted"))
    assert pending
    clock.advance(30_000)
    job.run_once()
    assert sorted(p.name for p in (data_dir / "q-0").glob("*.deleted")) == pending
    clock.advance(31_000)
    job.run_once()
    assert not list((data_dir / "q-0").glob("*.deleted"))
    manager.close()


def test_retention_settings_survive_as_per_partition_config(data_dir: Path, clock: FakeClock) -> None:
    manager = LogManager(data_dir, CONFIG, clock)
    short = CONFIG.with_overrides({"retention.ms": 1000})
    manager.create("short", 0, short)
    manager.create("long", 0)
    for name in ("short", "long"):
        plog = manager.get(name, 0)
        assert plog is not None
        for i in range(10):
            plog.append(make_batch(2, value_size=300, tag=i))
        plog.high_watermark = plog.log_end_offset
    clock.advance(5000)
    RetentionJob(manager.logs, clock, 1000).run_once()
    short_log, long_log = manager.get("short", 0), manager.get("long", 0)
    assert short_log is not None
    assert long_log is not None
    assert short_log.log_start_offset > 0
    assert long_log.log_start_offset == 0
    manager.close()


def test_the_job_runs_in_the_background_until_cancelled(data_dir: Path, clock: FakeClock) -> None:
    manager = LogManager(data_dir, CONFIG, clock)
    fill(manager, clock, 12)
    clock.advance(8 * DAY_MS)
    fill(manager, clock, 1)
    job = RetentionJob(manager.logs, clock, interval_ms=10)

    async def scenario() -> None:
        task = asyncio.create_task(job.run())
        for _ in range(200):
            await asyncio.sleep(0.01)
            if job.statistics().segments_deleted:
                break
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert job.statistics().segments_deleted > 0
    manager.close()


def test_a_compacted_queue_keeps_its_segments_and_compact_delete_ages_out(
    data_dir: Path, clock: FakeClock
) -> None:
    manager = LogManager(data_dir, CONFIG, clock)
    for name, policy in (("compact", "compact"), ("both", "compact,delete")):
        plog = manager.create(
            name, 0, CONFIG.with_overrides({"cleanup.policy": policy, "retention.ms": 1000})
        )
        for i in range(10):
            plog.append(make_batch(2, value_size=300, tag=i))
        plog.high_watermark = plog.log_end_offset
    clock.advance(5000)
    RetentionJob(manager.logs, clock, 1000).run_once()
    compacted, both = manager.get("compact", 0), manager.get("both", 0)
    assert compacted is not None
    assert both is not None
    assert compacted.log_start_offset == 0
    assert both.log_start_offset > 0
    manager.close()


def test_retention_waits_while_the_log_cleaner_works_on_the_log(data_dir: Path, clock: FakeClock) -> None:
    manager = LogManager(data_dir, CONFIG.with_overrides({"retention.ms": 1000}), clock)
    fill(manager, clock, 10)
    plog = manager.get("q", 0)
    assert plog is not None
    clock.advance(5000)
    job = RetentionJob(manager.logs, clock, 1000)
    with plog.maintenance:  # what the cleaner holds during a pass
        worker = threading.Thread(target=job.run_once)
        worker.start()
        worker.join(0.3)
        assert worker.is_alive()
        assert plog.log_start_offset == 0
    worker.join(10)
    assert plog.log_start_offset > 0
    manager.close()
