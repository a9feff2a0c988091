"""The leader-epoch history of a partition log (KIP-101): recording, fencing, OffsetForLeaderEpoch lookups,
truncation, retention, persistence in the index, and its rebuild from the stored batches."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from logq.config import LogConfig
from logq.error_codes import ErrorCode
from logq.errors import FencedLeaderEpochError
from logq.segments import LogManager, PartitionLog
from logq.segments.index import IndexStore
from logq.testing import FakeClock, make_batch
from tests.segments.test_log import batches_in, read_all

ROOT = Path(__file__).resolve().parents[2]
CONFIG = LogConfig(segment_bytes=2 * 1024, index_interval_bytes=512)


def open_log(data_dir: Path, clock: FakeClock) -> tuple[LogManager, PartitionLog]:
    manager = LogManager(data_dir, CONFIG, clock)
    plog = manager.get("q", 0) or manager.create("q", 0)
    return manager, plog


def append_epochs(plog: PartitionLog, epochs: list[int]) -> None:
    """One 3-record batch per element, appended with that leader epoch."""
    for i, epoch in enumerate(epochs):
        plog.append(make_batch(3, value_size=100, tag=i), leader_epoch=epoch)


def epochs_from_batches(plog: PartitionLog) -> list[tuple[int, int]]:
    """The history as derived from the stored batches' partitionLeaderEpoch fields."""
    out: list[tuple[int, int]] = []
    for header in batches_in(read_all(plog)):
        epoch = header.partition_leader_epoch
        if epoch >= 0 and (not out or epoch > out[-1][0]):
            out.append((epoch, header.base_offset))
    if out and out[0][1] < plog.log_start_offset:
        out[0] = (out[0][0], plog.log_start_offset)
    return out


def stored_epochs(data_dir: Path) -> list[tuple[int, int]]:
    store = IndexStore(data_dir / "index.rocksdb")
    try:
        return store.partition("q-0").leader_epochs()
    finally:
        store.close()


# --- recording and fencing --------------------------------------------------------------------------


def test_history_records_each_new_epoch_at_its_first_batch(data_dir: Path, clock: FakeClock) -> None:
    manager, plog = open_log(data_dir, clock)
    append_epochs(plog, [0, 0, 1, 1, 1, 3])
    assert plog.epoch_history() == [(0, 0), (1, 6), (3, 15)]
    assert plog.latest_leader_epoch == 3
    assert [h.partition_leader_epoch for h in batches_in(read_all(plog))] == [0, 0, 1, 1, 1, 3]
    manager.close()


def test_an_older_epoch_is_fenced_and_nothing_is_written(data_dir: Path, clock: FakeClock) -> None:
    manager, plog = open_log(data_dir, clock)
    append_epochs(plog, [2, 5])
    end, size = plog.log_end_offset, plog.size_bytes
    with pytest.raises(FencedLeaderEpochError) as info:
        plog.append(make_batch(1), leader_epoch=4)
    assert info.value.code == ErrorCode.FENCED_LEADER_EPOCH
    assert (plog.log_end_offset, plog.size_bytes) == (end, size)
    assert plog.epoch_history() == [(2, 0), (5, 3)]
    plog.append(make_batch(1), leader_epoch=5)  # the latest epoch again is fine
    assert plog.epoch_history() == [(2, 0), (5, 3)]
    manager.close()


def test_an_older_epoch_is_fenced_before_the_duplicate_check(data_dir: Path, clock: FakeClock) -> None:
    manager, plog = open_log(data_dir, clock)
    batch = make_batch(2, producer_id=7, producer_epoch=0, sequence=0)
    plog.append(batch, leader_epoch=3)
    plog.append(make_batch(1), leader_epoch=4)
    with pytest.raises(FencedLeaderEpochError):
        plog.append(batch, leader_epoch=3)  # a retry from a deposed leader: refused, not deduplicated
    manager.close()


def test_invalid_epochs_are_refused(data_dir: Path, clock: FakeClock) -> None:
    manager, plog = open_log(data_dir, clock)
    for epoch in (-2, 1 << 31):
        with pytest.raises(ValueError, match="leader epoch"):
            plog.append(make_batch(1), leader_epoch=epoch)
    assert plog.log_end_offset == 0
    manager.close()


def test_epoch_minus_one_records_nothing_and_behaves_as_before(data_dir: Path, clock: FakeClock) -> None:
    manager, plog = open_log(data_dir, clock)
    infos = [plog.append(make_batch(3, tag=i)) for i in range(4)]
    assert [i.base_offset for i in infos] == [0, 3, 6, 9]
    assert [h.partition_leader_epoch for h in batches_in(read_all(plog))] == [-1] * 4
    assert plog.epoch_history() == []
    assert plog.latest_leader_epoch == -1
    assert plog.end_offset_for_epoch(0) == (-1, -1)
    assert plog.end_offset_for_epoch(-1) == (-1, -1)
    plog.truncate_to(5)
    plog.flush()
    manager.close()
    assert stored_epochs(data_dir) == []
    manager, plog = open_log(data_dir, clock)
    assert plog.epoch_history() == []
    manager.close()


def test_epoch_minus_one_after_epochs_is_accepted_and_records_nothing(
    data_dir: Path, clock: FakeClock
) -> None:
    manager, plog = open_log(data_dir, clock)
    append_epochs(plog, [-1, 1, -1, 2])
    assert plog.epoch_history() == [(1, 3), (2, 9)]
    manager.close()
    shutil.rmtree(data_dir / "index.rocksdb")
    manager, plog = open_log(data_dir, clock)
    assert manager.reports[0].full_rebuild
    assert plog.epoch_history() == [(1, 3), (2, 9)]
    manager.close()


# --- OffsetForLeaderEpoch -----------------------------------------------------------------------------


def test_end_offset_for_epoch(data_dir: Path, clock: FakeClock) -> None:
    manager, plog = open_log(data_dir, clock)
    append_epochs(plog, [1, 1, 2, 5, 5])  # history (1, 0), (2, 6), (5, 9); log end 15
    assert plog.epoch_history() == [(1, 0), (2, 6), (5, 9)]
    assert plog.end_offset_for_epoch(1) == (1, 6)  # an exact epoch: the start of the next one
    assert plog.end_offset_for_epoch(2) == (2, 9)
    assert plog.end_offset_for_epoch(3) == (2, 9)  # a gap: the largest epoch below, and its end
    assert plog.end_offset_for_epoch(4) == (2, 9)
    assert plog.end_offset_for_epoch(5) == (5, 15)  # the latest: the log end
    assert plog.end_offset_for_epoch(9) == (-1, -1)  # above the latest: unknown (as Kafka)
    assert plog.end_offset_for_epoch(0) == (0, 0)  # below the first known: the first epoch's start
    assert plog.end_offset_for_epoch(-1) == (-1, -1)
    plog.append(make_batch(1), leader_epoch=5)
    assert plog.end_offset_for_epoch(5) == (5, 16)
    manager.close()


# --- truncation and retention -------------------------------------------------------------------------


def test_truncation_forgets_epochs_that_started_at_or_after_the_new_end(
    data_dir: Path, clock: FakeClock
) -> None:
    manager, plog = open_log(data_dir, clock)
    append_epochs(plog, [1, 2, 2, 3, 4])  # (1, 0), (2, 3), (3, 9), (4, 12)
    assert plog.truncate_to(10) == 9  # inside epoch 3's only batch: the whole batch goes
    assert plog.epoch_history() == [(1, 0), (2, 3)]
    assert plog.end_offset_for_epoch(2) == (2, 9)
    assert plog.end_offset_for_epoch(4) == (-1, -1)  # truncated away: unknown again
    plog.append(make_batch(1), leader_epoch=3)  # epoch 3 may write again: its data is gone
    assert plog.epoch_history() == [(1, 0), (2, 3), (3, 9)]
    plog.truncate_to(3)
    assert plog.epoch_history() == [(1, 0)]
    plog.truncate_to(0)
    assert plog.epoch_history() == []
    plog.append(make_batch(1), leader_epoch=0)
    assert plog.epoch_history() == [(0, 0)]
    manager.abandon()  # truncation is durable before it returns, history included
    assert stored_epochs(data_dir) == []  # truncate_to(0) wrote it; the last append was never flushed
    manager, plog = open_log(data_dir, clock)
    assert plog.epoch_history() == [(0, 0)]
    manager.close()


def test_truncation_is_persisted_with_its_checkpoint(data_dir: Path, clock: FakeClock) -> None:
    manager, plog = open_log(data_dir, clock)
    append_epochs(plog, [1, 2, 3])
    plog.flush()
    plog.truncate_to(6)
    manager.abandon()
    assert stored_epochs(data_dir) == [(1, 0), (2, 3)]
    manager, plog = open_log(data_dir, clock)
    assert plog.epoch_history() == [(1, 0), (2, 3)]
    assert plog.log_end_offset == 6
    manager.close()


def retention_log(data_dir: Path, clock: FakeClock) -> tuple[LogManager, PartitionLog]:
    """Epoch 1 in offsets 0-29, epoch 2 in 30-59, epoch 3 from 60: several segments of ~4 batches."""
    manager, plog = open_log(data_dir, clock)
    append_epochs(plog, [1] * 10 + [2] * 10 + [3] * 10)
    assert len(plog.segment_infos()) > 5
    assert plog.epoch_history() == [(1, 0), (2, 30), (3, 60)]
    plog.high_watermark = plog.log_end_offset
    return manager, plog


def test_retention_clamps_the_first_epoch_to_the_log_start(data_dir: Path, clock: FakeClock) -> None:
    manager, plog = retention_log(data_dir, clock)
    plog.delete_oldest_segments(1, "test")
    start = plog.log_start_offset
    assert 0 < start < 30
    assert plog.epoch_history() == [(1, start), (2, 30), (3, 60)]
    while plog.log_start_offset <= 30:
        plog.delete_oldest_segments(1, "test")
    start = plog.log_start_offset
    assert 30 < start < 60
    assert plog.epoch_history() == [(2, start), (3, 60)]
    assert plog.end_offset_for_epoch(1) == (1, start)  # below the first known (retention trimmed it)
    assert plog.end_offset_for_epoch(2) == (2, 60)
    assert plog.epoch_history() == epochs_from_batches(plog)
    manager.close()
    assert stored_epochs(data_dir) == [(2, start), (3, 60)]
    manager, plog = open_log(data_dir, clock)
    assert plog.epoch_history() == [(2, start), (3, 60)]
    manager.close()


def test_retention_before_a_crash_is_clamped_on_load(data_dir: Path, clock: FakeClock) -> None:
    manager, plog = retention_log(data_dir, clock)
    plog.flush()
    while plog.log_start_offset <= 30:
        plog.delete_oldest_segments(1, "test")
    start = plog.log_start_offset
    plog.purge_deleted(force=True)
    manager.abandon()  # the history in the index still starts at offset 0
    assert stored_epochs(data_dir) == [(1, 0), (2, 30), (3, 60)]
    manager, plog = open_log(data_dir, clock)
    assert plog.log_start_offset == start
    assert plog.epoch_history() == [(2, start), (3, 60)]
    manager.close()


def test_rebuild_after_retention_matches_the_live_history(data_dir: Path, clock: FakeClock) -> None:
    manager, plog = retention_log(data_dir, clock)
    while plog.log_start_offset <= 30:
        plog.delete_oldest_segments(1, "test")
    live = plog.epoch_history()
    manager.close()
    shutil.rmtree(data_dir / "index.rocksdb")
    manager, plog = open_log(data_dir, clock)
    assert manager.reports[0].full_rebuild
    assert plog.epoch_history() == live
    manager.close()


# --- persistence and recovery -------------------------------------------------------------------------


def test_history_survives_close_and_reopen(data_dir: Path, clock: FakeClock) -> None:
    manager, plog = open_log(data_dir, clock)
    append_epochs(plog, [0, 4, 4, 7])
    manager.close()
    assert stored_epochs(data_dir) == [(0, 0), (4, 3), (7, 9)]
    manager, plog = open_log(data_dir, clock)
    report = manager.reports[0]
    assert not report.full_rebuild
    assert report.scanned_batches == 0  # read from the index, not from the batches
    assert plog.epoch_history() == [(0, 0), (4, 3), (7, 9)]
    with pytest.raises(FencedLeaderEpochError):
        plog.append(make_batch(1), leader_epoch=6)
    plog.append(make_batch(1), leader_epoch=8)
    assert plog.epoch_history() == [(0, 0), (4, 3), (7, 9), (8, 12)]
    manager.close()


def test_history_is_written_with_the_checkpoint(data_dir: Path, clock: FakeClock) -> None:
    manager, plog = open_log(data_dir, clock)
    append_epochs(plog, [0, 1])
    plog.flush()
    assert plog.epoch_history() == [(0, 0), (1, 3)]
    append_epochs(plog, [2])
    manager.abandon()
    assert stored_epochs(data_dir) == [(0, 0), (1, 3)]  # as of the last flush
    manager, plog = open_log(data_dir, clock)
    assert plog.epoch_history() == [(0, 0), (1, 3), (2, 6)]  # the tail replayed from the batches
    manager.close()


def test_history_is_rebuilt_when_the_index_is_deleted(data_dir: Path, clock: FakeClock) -> None:
    manager, plog = open_log(data_dir, clock)
    append_epochs(plog, [0, 0, 2, 2, 2, 3] * 1 + [9] * 12)
    live = plog.epoch_history()
    assert live == [(0, 0), (2, 6), (3, 15), (9, 18)]
    manager.close()
    shutil.rmtree(data_dir / "index.rocksdb")
    manager, plog = open_log(data_dir, clock)
    assert manager.reports[0].full_rebuild
    assert plog.epoch_history() == live
    manager.close()
    assert stored_epochs(data_dir) == live


def test_a_stale_history_is_replaced_on_a_full_rebuild(data_dir: Path, clock: FakeClock) -> None:
    manager, plog = open_log(data_dir, clock)
    append_epochs(plog, [1, 2])
    manager.close()
    store = IndexStore(data_dir / "index.rocksdb")
    index = store.partition("q-0")
    checkpoint = index.read_checkpoint()
    assert checkpoint is not None
    index.commit(checkpoint, leader_epochs=[(0, 0), (5, 1), (6, 2)])  # lies
    del store.db[b"cq-0"]  # no checkpoint: the loader rebuilds the partition's index
    store.close()
    manager, plog = open_log(data_dir, clock)
    assert manager.reports[0].full_rebuild
    assert plog.epoch_history() == [(1, 0), (2, 3)]
    manager.close()


def test_a_torn_tail_drops_the_epochs_of_the_lost_batches(
    data_dir: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    manager, plog = open_log(data_dir, clock)
    append_epochs(plog, [1, 1, 2])
    plog.flush()
    append_epochs(plog, [3, 3, 4])  # unflushed: in the page cache when the process dies
    manager.abandon()
    segment = sorted((data_dir / "q-0").glob("*.log"))[-1]
    with open(segment, "r+b") as f:
        f.truncate(segment.stat().st_size - 40)  # the crash tore epoch 4's only batch
    manager, plog = open_log(data_dir, clock)
    assert manager.reports[0].truncated_bytes > 0
    assert "truncated" in caplog.text
    assert plog.log_end_offset == 15
    assert plog.epoch_history() == [(1, 0), (2, 6), (3, 9)]
    assert plog.end_offset_for_epoch(4) == (-1, -1)  # the torn epoch is unknown again
    assert plog.end_offset_for_epoch(3) == (3, 15)
    plog.append(make_batch(1), leader_epoch=4)
    assert plog.epoch_history() == [(1, 0), (2, 6), (3, 9), (4, 15)]
    manager.close()


def test_a_tail_torn_inside_the_checkpointed_epoch_keeps_it(data_dir: Path, clock: FakeClock) -> None:
    manager, plog = open_log(data_dir, clock)
    append_epochs(plog, [1, 2])
    plog.flush()
    append_epochs(plog, [2, 5])
    manager.abandon()
    segment = sorted((data_dir / "q-0").glob("*.log"))[-1]
    with open(segment, "r+b") as f:
        f.truncate(segment.stat().st_size - 1)
    manager, plog = open_log(data_dir, clock)
    assert plog.log_end_offset == 9
    assert plog.epoch_history() == [(1, 0), (2, 3)]
    manager.close()


def test_history_survives_sigkill_of_a_writing_process(tmp_path: Path) -> None:
    """A real writer appends with a rising leader epoch (a new one every 2 batches, so the unflushed tail
    starts new epochs) and is SIGKILLed; the tail is then torn mid-batch. The recovered history equals the
    one derived from the surviving batches."""
    data_dir = tmp_path / "data"
    next_tag = 0
    for round_ in range(2):
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.segments.crash_writer", str(data_dir), str(next_tag), "2"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        time.sleep(0.3 + 0.2 * round_)
        os.kill(child.pid, signal.SIGKILL)
        child.communicate(timeout=10)
        segment = sorted((data_dir / "crash-0").glob("*.log"))[-1]
        if segment.stat().st_size > 100:
            with open(segment, "r+b") as f:
                f.truncate(segment.stat().st_size - 50)

        manager = LogManager(data_dir)
        plog = manager.get("crash", 0)
        assert plog is not None
        history = plog.epoch_history()
        headers = []
        offset = 0
        while offset < plog.log_end_offset:
            chunk = bytes(plog.read(offset, 1 << 20))
            found = batches_in(chunk)
            headers += found
            offset = found[-1].last_offset + 1
        expected: list[tuple[int, int]] = []
        for header in headers:
            if not expected or header.partition_leader_epoch > expected[-1][0]:
                expected.append((header.partition_leader_epoch, header.base_offset))
        assert history == expected
        assert len(history) >= 2
        assert plog.end_offset_for_epoch(history[-1][0]) == (history[-1][0], plog.log_end_offset)
        next_tag = len(headers)
        manager.close()


def test_a_read_time_index_repair_keeps_the_history(
    data_dir: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    manager, plog = retention_log(data_dir, clock)
    plog.delete_oldest_segments(1, "test")
    live = plog.epoch_history()
    plog.flush()
    segment_base = plog.segment_infos()[-1].base_offset
    manager.index.partition("q-0").put_offset(segment_base + 1, segment_base, 10_000_000)
    plog.read(segment_base + 2, 1 << 20)
    assert "rebuilding the index" in caplog.text
    assert plog.epoch_history() == live
    manager.close()
    manager, plog = open_log(data_dir, clock)
    assert plog.epoch_history() == live
    manager.close()
