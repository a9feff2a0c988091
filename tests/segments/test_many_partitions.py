"""A data directory with many partitions: one shared index, partitions created in batches, segments opened
on first use, no range tombstones left behind (timings are in benchmarks/partitions_bench.py)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from logq import batch as rb
from logq.config import LogConfig
from logq.segments import LogManager, NewPartition
from logq.segments.index import COMPACT_ABOVE_RANGE_DELETES, IndexStore
from logq.segments.progress import Progress
from logq.testing import FakeClock, make_batch

MANY = 300  # above durable.SYNCFS_ABOVE_PATHS, so the batched sync is the one exercised


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def new_partitions(queue: str, count: int, config: LogConfig | None = None) -> list[NewPartition]:
    return [NewPartition(queue, p, config or LogConfig(), queue_id=f"id-{queue}") for p in range(count)]


def test_one_thousand_partitions_share_one_index(data_dir: Path) -> None:
    manager = LogManager(data_dir)
    for p in range(1000):
        manager.create("wide", p).append(make_batch(1, tag=p))
    manager.close()
    manager = LogManager(data_dir)
    assert len(manager.partitions()) == 1000
    assert [d.name for d in data_dir.iterdir() if d.name.endswith(".rocksdb")] == ["index.rocksdb"]
    for p in (0, 499, 999):
        plog = manager.get("wide", p)
        assert plog is not None
        assert plog.log_end_offset == 1
        assert plog.read(0, 1000)
    manager.close()


def test_partitions_created_in_a_batch_are_complete_without_a_clean_shutdown(data_dir: Path) -> None:
    manager = LogManager(data_dir)
    manager.create_many(new_partitions("big", MANY))
    manager.abandon()  # what a crash right after the creation leaves (no close, no marker)

    manager = LogManager(data_dir)
    try:
        assert manager.partitions() == [("big", p) for p in range(MANY)]
        # each checkpoint was written with its partition: none has to be rebuilt from the segments
        assert not [r.name for r in manager.reports if r.full_rebuild]
        assert {manager.queue_id("big", p) for p in range(MANY)} == {"id-big"}
        assert not [p for p in data_dir.glob("big-*/*") if p.name.endswith(".tmp")]
        for p in (0, MANY - 1):
            plog = manager.get("big", p)
            assert plog is not None
            assert plog.append(make_batch(2, tag=p)).base_offset == 0
            assert plog.read(0, 1 << 20)
    finally:
        manager.close()


def test_creating_again_returns_the_existing_logs_with_the_new_settings(data_dir: Path) -> None:
    manager = LogManager(data_dir)
    try:
        manager.create_many(new_partitions("q", 3))
        first = manager.get("q", 1)
        assert first is not None
        first.append(make_batch(1))
        manager.create_many(new_partitions("q", 3, LogConfig(retention_ms=1234)))
        assert manager.get("q", 1) is first
        assert first.config.retention_ms == 1234
        assert first.log_end_offset == 1
    finally:
        manager.close()


def test_idle_partitions_hold_no_file_descriptors(data_dir: Path) -> None:
    before = open_descriptors()
    manager = LogManager(data_dir)
    manager.create_many(new_partitions("idle", MANY))
    assert open_descriptors() - before < 50  # the lock, RocksDB's files; not one per partition
    manager.close()

    manager = LogManager(data_dir)
    try:
        assert open_descriptors() - before < 50
        for p in range(10):
            plog = manager.get("idle", p)
            assert plog is not None
            plog.append(make_batch(1, tag=p))
        assert open_descriptors() - before < 60  # the ten partitions used, and only those
    finally:
        manager.abandon()  # a crash: the next start scans every partition's tail after its checkpoint

    manager = LogManager(data_dir)
    try:
        assert open_descriptors() - before < 60  # and opens only those that had bytes to scan
        for p in range(MANY):
            plog = manager.get("idle", p)
            assert plog is not None
            assert plog.log_end_offset == (1 if p < 10 else 0)
    finally:
        manager.close()


def test_segments_opened_on_first_use_read_append_truncate_and_age_out(data_dir: Path) -> None:
    clock = FakeClock()
    config = LogConfig(segment_bytes=4096, index_interval_bytes=512, file_delete_delay_ms=0)
    manager = LogManager(data_dir, config, clock)
    plog = manager.create("lazy", 0)
    for tag in range(40):
        plog.append(make_batch(3, value_size=100, tag=tag))
    manager.close()

    manager = LogManager(data_dir, config, clock)  # clean: nothing scanned, no segment opened
    plog = manager.get("lazy", 0)
    assert plog is not None
    segments = len(plog.segment_infos())
    assert segments > 3
    assert plog.log_end_offset == 120
    offset, seen = 0, 0
    while offset < plog.log_end_offset:  # every segment read through a descriptor opened on demand
        data = plog.read(offset, 1 << 20)
        assert data
        seen += len(data)
        offset = _next_offset(bytes(data))
    assert seen == plog.size_bytes
    assert plog.append(make_batch(3, tag=99)).base_offset == 120
    plog.high_watermark = plog.log_end_offset
    assert plog.delete_oldest_segments(1, "test") == 1  # a segment never opened is renamed and unlinked
    assert plog.purge_deleted(force=True) == 1
    assert plog.truncate_to(60) <= 60
    manager.abandon()

    manager = LogManager(data_dir, config, clock)  # unclean: the tail is scanned through fresh descriptors
    try:
        plog = manager.get("lazy", 0)
        assert plog is not None
        assert plog.log_end_offset <= 60
        assert plog.read(plog.log_start_offset, 1 << 20)
        assert plog.append(make_batch(1)).base_offset == plog.log_end_offset - 1
    finally:
        manager.close()


def _next_offset(data: bytes) -> int:
    """The offset after the last batch of a read."""
    pos, offset = 0, -1
    while pos < len(data):
        base, size = rb.read_prefix(data, pos)
        offset = base + rb.read_last_offset_delta(data, pos) + 1
        pos += size
    return offset


def test_creating_and_loading_partitions_leave_no_range_tombstones(data_dir: Path) -> None:
    manager = LogManager(data_dir)
    manager.create_many(new_partitions("t", MANY))
    for p in range(0, MANY, 10):
        plog = manager.get("t", p)
        assert plog is not None
        plog.append(make_batch(2, tag=p))
    manager.close()
    LogManager(data_dir).abandon()  # a clean start, then a crash
    manager = LogManager(data_dir)  # an unclean start
    try:
        manager.index.db.flush()  # count the memtable's too
        assert manager.index.range_deletions() == 0
    finally:
        manager.close()


def test_an_index_full_of_range_tombstones_is_compacted_when_opened(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = IndexStore(tmp_path / "index")
    for i in range(COMPACT_ABOVE_RANGE_DELETES + 500):  # what an older version left: one per partition
        store.db.delete_range(b"o" + b"p-%d/" % i, b"o" + b"p-%d0" % i)
    store.close()
    with caplog.at_level(logging.INFO, logger="logq.segments.index"):
        store = IndexStore(tmp_path / "index")
    try:
        assert store.range_deletions() == 0
        assert "compacting it" in caplog.text
    finally:
        store.close()


def test_a_creation_cut_short_by_a_crash_loads_as_empty_partitions(data_dir: Path) -> None:
    LogManager(data_dir).close()
    (data_dir / "cut-0").mkdir()  # the directory only
    (data_dir / "cut-1").mkdir()  # its queue.id not renamed into place yet
    (data_dir / "cut-1" / "queue.id.tmp").write_text("id-cut")
    (data_dir / "cut-2").mkdir()  # its segment, but no checkpoint
    (data_dir / "cut-2" / f"{0:020d}.log").touch()
    (data_dir / "cut-3").mkdir()  # its queue.id created but not written yet
    (data_dir / "cut-3" / "queue.id").touch()
    manager = LogManager(data_dir)
    try:
        assert manager.partitions() == [("cut", p) for p in range(4)]
        assert not (data_dir / "cut-1" / "queue.id.tmp").exists()
        assert manager.queue_id("cut", 3) == ""
        manager.create_many(new_partitions("cut", 5))  # the queue is hosted again
        assert {manager.queue_id("cut", p) for p in range(5)} == {"id-cut"}
        assert (data_dir / "cut-3" / "queue.id").read_text() == "id-cut"
        for p in range(5):
            plog = manager.get("cut", p)
            assert plog is not None
            assert plog.log_end_offset == 0
            assert plog.append(make_batch(1)).base_offset == 0
    finally:
        manager.close()


def test_loading_logs_what_it_does(data_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    manager = LogManager(data_dir)
    manager.create_many(new_partitions("log", 3))
    manager.close()
    with caplog.at_level(logging.INFO, logger="logq.segments.manager"):
        LogManager(data_dir).close()
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith(f"loading 3 partitions from {data_dir} (clean shutdown)")
    assert lines[1].startswith(f"loaded 3 partitions from {data_dir} (clean shutdown) in ")


def test_progress_lines(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("test.progress")
    progress = Progress(log, "loading", 3, every_s=0)
    with caplog.at_level(logging.INFO, logger="test.progress"):
        progress.step(1)
        progress.step(2)
        progress.step(3)  # the end: the caller's own line says it
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == [
        "loading: 1 of 3 partitions",
        "loading: 2 of 3 partitions",
    ]
    quiet = Progress(log, "loading", 3)  # every 5 s: nothing yet
    caplog.clear()
    quiet.step(1)
    assert not caplog.records
