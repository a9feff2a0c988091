"""PartitionLog behaviour on real files: append, read, offsets, rolls, lookups, truncation, flushing."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
from pathlib import Path

import pytest

from logq import batch as rb
from logq.config import LogConfig
from logq.errors import (
    BatchTooLargeError,
    CorruptBatchError,
    InvalidProducerEpochError,
    OffsetOutOfRangeError,
    OutOfOrderSequenceError,
)
from logq.segments import LogManager, PartitionLog
from logq.segments.segment import READ_CHUNK
from logq.testing import FakeClock, make_batch


def read_all(plog: PartitionLog) -> bytes:
    offset, out = plog.log_start_offset, b""
    while offset < plog.log_end_offset:
        chunk = plog.read(offset, 1 << 30)
        out += chunk
        offset = batches_in(chunk)[-1].last_offset + 1
    return out


def batches_in(data: bytes) -> list[rb.BatchHeader]:
    out = []
    pos = 0
    while pos < len(data):
        header = rb.validate(data[pos : pos + rb.read_prefix(data, pos)[1]])
        out.append(header)
        pos += header.size
    return out


def test_append_assigns_offsets_and_patches_only_offset_and_epoch(manager: LogManager) -> None:
    plog = manager.create("orders", 0)
    sent = [make_batch(3, tag=i) for i in range(4)]
    infos = [plog.append(b, leader_epoch=9) for b in sent]
    assert [(i.base_offset, i.last_offset) for i in infos] == [(0, 2), (3, 5), (6, 8), (9, 11)]
    assert plog.log_end_offset == 12
    stored = plog.read(0, 1 << 20)
    assert len(stored) == sum(len(b) for b in sent)
    pos = 0
    for i, original in enumerate(sent):
        chunk = stored[pos : pos + len(original)]
        header = rb.validate(chunk)
        assert (header.base_offset, header.partition_leader_epoch) == (3 * i, 9)
        assert chunk[16:] == original[16:]  # everything else is the producer's bytes
        pos += len(original)


def test_read_returns_whole_batches_within_max_bytes(manager: LogManager) -> None:
    plog = manager.create("q", 0)
    for i in range(10):
        plog.append(make_batch(5, value_size=100, tag=i))
    size = len(make_batch(5, value_size=100))
    # from an offset in the middle of a batch: that whole batch comes first
    data = plog.read(7, 3 * size + 10)
    assert [h.base_offset for h in batches_in(data)] == [5, 10, 15]
    # KIP-74: a first batch larger than max_bytes still comes back whole
    assert [h.base_offset for h in batches_in(plog.read(12, 1))] == [10]
    # capped at an upper offset (the high watermark)
    assert [h.base_offset for h in batches_in(plog.read(0, 1 << 20, upto=15))] == [0, 5, 10]
    assert plog.read(50, 100) == b""
    assert plog.read(15, 100, upto=15) == b""


def test_sequential_reads_cover_the_log_exactly(manager: LogManager) -> None:
    plog = manager.create("q", 0)
    for i in range(200):
        plog.append(make_batch(1 + i % 7, value_size=50 + i, tag=i))
    assert len(plog.segment_infos()) > 1
    offset, seen = 0, []
    while offset < plog.log_end_offset:
        headers = batches_in(plog.read(offset, 3000))
        assert headers, offset
        seen += headers
        offset = headers[-1].last_offset + 1
    assert [h.base_offset for h in seen] == sorted({h.base_offset for h in seen})
    assert seen[-1].last_offset == plog.log_end_offset - 1


def test_out_of_range_reads_raise(manager: LogManager) -> None:
    plog = manager.create("q", 0)
    plog.append(make_batch(3))
    with pytest.raises(OffsetOutOfRangeError, match="outside the log"):
        plog.read(4, 100)
    with pytest.raises(OffsetOutOfRangeError):
        plog.read(-1, 100)


def test_rejected_batches_store_nothing(manager: LogManager) -> None:
    plog = manager.create("q", 0)
    plog.append(make_batch(2))
    bad = bytearray(make_batch(2))
    bad[-1] ^= 1
    with pytest.raises(CorruptBatchError, match="CRC"):
        plog.append(bytes(bad))
    plog.config = LogConfig(max_message_bytes=200)
    with pytest.raises(BatchTooLargeError, match=r"max\.message\.bytes"):
        plog.append(make_batch(10, value_size=100))
    assert plog.log_end_offset == 2
    assert len(batches_in(plog.read(0, 1 << 20))) == 1


def test_rolls_by_size_and_by_age(data_dir: Path, clock: FakeClock) -> None:
    manager = LogManager(data_dir, LogConfig(segment_bytes=1000, segment_ms=60_000), clock)
    plog = manager.create("q", 0)
    for i in range(6):
        plog.append(make_batch(2, value_size=200, tag=i))
    infos = plog.segment_infos()
    assert all(info.size <= 1000 for info in infos)
    assert len(infos) == 3
    assert [p.name for p in sorted((data_dir / "q-0").glob("*.log"))] == [
        f"{info.base_offset:020d}.log" for info in infos
    ]
    clock.advance(61_000)
    plog.append(make_batch(1))
    assert len(plog.segment_infos()) == 4
    clock.advance(61_000)
    assert plog.roll_if_aged()
    assert plog.segment_infos()[-1].size == 0
    manager.close()


@pytest.mark.parametrize("compression", [rb.CODEC_NONE, rb.CODEC_GZIP, rb.CODEC_ZSTD])
def test_offset_for_timestamp_finds_the_first_record_at_or_after(
    manager: LogManager, compression: int
) -> None:
    plog = manager.create("q", 0)
    for i in range(50):
        plog.append(make_batch(10, timestamp=10_000 + 100 * i, compression=compression, value_size=40))
    assert plog.offset_for_timestamp(0) == (0, 10_000)
    assert plog.offset_for_timestamp(10_000) == (0, 10_000)
    assert plog.offset_for_timestamp(10_005) == (5, 10_005)  # record-level inside the batch
    assert plog.offset_for_timestamp(10_010) == (10, 10_100)  # the gap between batches
    assert plog.offset_for_timestamp(10_000 + 100 * 37 + 3) == (373, 13_703)
    assert plog.offset_for_timestamp(10_000 + 100 * 49 + 9) == (499, 14_909)
    assert plog.offset_for_timestamp(10_000 + 100 * 49 + 10) is None


def test_lookups_walk_headers_across_read_chunks(
    data_dir: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """The header walks (a read without an index entry at its batch, offset_for_timestamp, the index
    rebuilt at read time) read a segment a chunk (READ_CHUNK, 1 MiB) at a time: batches straddle the
    chunk ends, and one batch is larger than a chunk."""
    # one segment, few index entries, room for a batch larger than a chunk
    config = LogConfig(segment_bytes=16 << 20, index_interval_bytes=8 << 20, max_message_bytes=4 << 20)
    manager = LogManager(data_dir, config, clock)
    plog = manager.create("q", 0)
    sizes = [140_000 + 997 * i for i in range(40)]  # of the batches, roughly
    sizes[17] = READ_CHUNK + 12_345
    firsts = [
        plog.append(make_batch(2, value_size=size // 2, timestamp=1_000 * i, tag=i)).base_offset
        for i, size in enumerate(sizes)
    ]
    (segment,) = plog.segment_infos()
    assert segment.size > 3 * READ_CHUNK

    def check() -> None:
        for i in reversed(range(len(sizes))):  # backwards: a read never starts where the last one ended
            assert batches_in(plog.read(firsts[i] + 1, 1))[0].base_offset == firsts[i]
            assert plog.offset_for_timestamp(1_000 * i + 1) == (firsts[i] + 1, 1_000 * i + 1)
        assert plog.offset_for_timestamp(1_000 * len(sizes)) is None

    check()
    plog.flush()  # index entries reach RocksDB at a flush
    manager.index.partition("q-0").put_offset(firsts[30], 0, 10_000_000)  # a bad entry: rebuilt on read
    check()
    assert "rebuilding the index" in caplog.text
    manager.close()


def test_truncate_to_removes_the_batch_containing_the_offset_and_after(manager: LogManager) -> None:
    plog = manager.create("q", 0)
    for i in range(40):
        plog.append(make_batch(4, value_size=2000, tag=i))
    assert len(plog.segment_infos()) > 2
    assert plog.truncate_to(42) == 40
    assert plog.log_end_offset == 40
    assert batches_in(plog.read(36, 1 << 20))[-1].last_offset == 39
    with pytest.raises(OffsetOutOfRangeError):
        plog.read(41, 100)
    after = plog.append(make_batch(2))
    assert after.base_offset == 40
    assert plog.offset_for_timestamp(1_000) == (0, 1_000)
    assert plog.truncate_to(0) == 0
    assert plog.log_end_offset == 0
    assert plog.append(make_batch(1)).base_offset == 0


def test_idempotent_producer_rules(manager: LogManager) -> None:
    plog = manager.create("q", 0)
    pid = 4242
    first = plog.append(make_batch(3, producer_id=pid, producer_epoch=0, sequence=0))
    second = plog.append(make_batch(2, producer_id=pid, producer_epoch=0, sequence=3))
    # a retry of either is a duplicate: the original offsets, nothing appended
    again = plog.append(make_batch(3, producer_id=pid, producer_epoch=0, sequence=0))
    assert again == first._replace(duplicate=True)
    assert (
        plog.append(make_batch(2, producer_id=pid, producer_epoch=0, sequence=3)).base_offset
        == second.base_offset
    )
    assert plog.log_end_offset == 5
    with pytest.raises(OutOfOrderSequenceError, match="expected 5"):
        plog.append(make_batch(1, producer_id=pid, producer_epoch=0, sequence=7))
    with pytest.raises(OutOfOrderSequenceError, match="not 0"):
        plog.append(make_batch(1, producer_id=pid, producer_epoch=1, sequence=5))
    plog.append(make_batch(1, producer_id=pid, producer_epoch=1, sequence=0))
    with pytest.raises(InvalidProducerEpochError):
        plog.append(make_batch(1, producer_id=pid, producer_epoch=0, sequence=5))
    # an unknown producer may start anywhere
    plog.append(make_batch(1, producer_id=99, producer_epoch=0, sequence=1000))
    assert plog.log_end_offset == 7


def test_only_the_last_five_batches_are_recognised_as_duplicates(manager: LogManager) -> None:
    plog = manager.create("q", 0)
    for seq in range(0, 12, 2):
        plog.append(make_batch(2, producer_id=1, producer_epoch=0, sequence=seq))
    assert plog.append(make_batch(2, producer_id=1, producer_epoch=0, sequence=2)).duplicate
    with pytest.raises(OutOfOrderSequenceError):
        plog.append(make_batch(2, producer_id=1, producer_epoch=0, sequence=0))


def test_sequence_numbers_wrap_at_int32_max(manager: LogManager) -> None:
    plog = manager.create("q", 0)
    top = 2**31 - 2
    plog.append(make_batch(2, producer_id=1, producer_epoch=0, sequence=top))
    plog.append(make_batch(2, producer_id=1, producer_epoch=0, sequence=0))
    assert plog.log_end_offset == 4


def test_flush_is_a_group_commit_across_threads(manager: LogManager) -> None:
    plog = manager.create("q", 0)
    durable: list[int] = []

    def producer(tag: int) -> None:
        for i in range(25):
            info = plog.append(make_batch(2, tag=tag * 100 + i))
            reached = plog.flush()
            assert reached > info.last_offset
            durable.append(reached)

    threads = [threading.Thread(target=producer, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert plog.durable_offset == plog.log_end_offset == 200
    assert len(durable) == 100


def test_high_watermark_is_set_by_the_owner_and_capped(manager: LogManager) -> None:
    plog = manager.create("q", 0)
    plog.append(make_batch(5))
    assert plog.high_watermark == 0  # appends do not move it: the owner decides what is committed
    plog.high_watermark = 3
    assert plog.high_watermark == 3
    plog.high_watermark = 100
    assert plog.high_watermark == 5


def test_a_clean_restart_keeps_everything_and_scans_nothing(data_dir: Path, clock: FakeClock) -> None:
    config = LogConfig(segment_bytes=4096)
    manager = LogManager(data_dir, config, clock)
    plog = manager.create("q", 3)
    for i in range(30):
        plog.append(make_batch(3, value_size=100, tag=i, producer_id=5, producer_epoch=0, sequence=3 * i))
    before = read_all(plog)
    manager.close()
    assert (data_dir / ".clean-shutdown").exists()
    manager = LogManager(data_dir, config, clock)
    assert manager.clean_shutdown
    assert not (data_dir / ".clean-shutdown").exists()  # removed as soon as it is read
    assert manager.reports[0].scanned_batches == 0
    plog2 = manager.get("q", 3)
    assert plog2 is not None
    assert read_all(plog2) == before
    # producer state survived: a retry is still recognised
    assert plog2.append(make_batch(3, producer_id=5, producer_epoch=0, sequence=87)).duplicate
    manager.close()


def test_a_second_broker_cannot_open_the_same_directory(manager: LogManager) -> None:
    from logq.errors import StorageError

    with pytest.raises(StorageError, match="in use"):
        LogManager(manager.data_dir)


def test_delete_removes_data_and_index(manager: LogManager) -> None:
    plog = manager.create("gone", 0)
    plog.append(make_batch(3))
    assert manager.delete("gone", 0)
    assert not (manager.data_dir / "gone-0").exists()
    again = manager.create("gone", 0)
    assert again.log_end_offset == 0
    assert manager.index.partition("gone-0").last_offset_entry() is None


def test_a_log_left_by_an_older_queue_of_the_same_name_is_replaced(data_dir: Path, clock: FakeClock) -> None:
    manager = LogManager(data_dir, LogConfig(), clock)
    old = manager.create("q", 0, queue_id="a" * 32)
    old.append(make_batch(3, tag=1))
    assert manager.create("q", 0, queue_id="a" * 32) is old  # the same queue: the same log
    manager.close()
    manager = LogManager(data_dir, LogConfig(), clock)  # the broker restarts; "q" was deleted meanwhile
    assert (data_dir / "q-0" / "queue.id").read_text() == "a" * 32
    fresh = manager.create("q", 0, queue_id="b" * 32)  # ... and created again
    assert fresh.log_end_offset == 0
    assert fresh.read(0, 1 << 20) == b""
    assert (data_dir / "q-0" / "queue.id").read_text() == "b" * 32
    fresh.append(make_batch(1))
    manager.close()


def test_a_log_without_a_queue_id_takes_the_first_one_given(data_dir: Path, clock: FakeClock) -> None:
    manager = LogManager(data_dir, LogConfig(), clock)
    plog = manager.create("q", 0)  # e.g. written before queues had ids
    plog.append(make_batch(2))
    assert manager.create("q", 0, queue_id="c" * 32) is plog
    assert plog.log_end_offset == 2
    assert (data_dir / "q-0" / "queue.id").read_text() == "c" * 32
    manager.close()


def test_reads_at_any_offset_find_their_batch_across_small_and_large_batches(data_dir: Path) -> None:
    """A read away from the last one looks its position up from the sparse index and then walks the
    batch headers a growing chunk at a time: batches larger than the first chunk (16 KiB) and runs of
    small ones must both be crossed correctly."""
    manager = LogManager(data_dir, LogConfig(segment_bytes=4 << 20, index_interval_bytes=64 << 10))
    plog = manager.create("q", 0)
    sizes = [40, 30_000, 40, 40, 70_000, *([20] * 300), 120_000, 40]
    for size in sizes:
        plog.append(make_batch(1, value_size=size))
    for offset in reversed(range(len(sizes))):  # never the offset the previous read ended at
        first = batches_in(bytes(plog.read(offset, 1)))[0]
        assert first.base_offset == offset
        assert first.size > sizes[offset]
    manager.close()


def test_background_flush_takes_a_shorter_period_within_a_second(manager: LogManager) -> None:
    """log.flush.interval.ms is a dynamic broker setting: a period shortened while a long one runs is in
    force within a second, not after the long one."""
    manager.config = dataclasses.replace(manager.config, flush_interval_ms=600_000)
    plog = manager.create("orders", 0)
    plog.append(make_batch(3))

    async def body() -> None:
        task = asyncio.create_task(manager.run_background_flush())
        try:
            await asyncio.sleep(0.3)
            assert plog.durable_offset < plog.log_end_offset  # ten minutes to go
            manager.config = dataclasses.replace(manager.config, flush_interval_ms=50)
            deadline = asyncio.get_running_loop().time() + 5
            while plog.durable_offset < plog.log_end_offset:
                assert asyncio.get_running_loop().time() < deadline, "the new period was not taken"
                await asyncio.sleep(0.05)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    asyncio.run(body())
