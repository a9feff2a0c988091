"""PartitionLog.offset_for_max_timestamp (ListOffsets MAX_TIMESTAMP, KIP-734) on real files: the exact
record, below a limit (the high watermark), after retention, truncation and a restart."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from logq import batch as rb
from logq import codec
from logq.config import LogConfig
from logq.segments import LogManager, PartitionLog, max_timestamp
from logq.testing import FakeClock

CONFIG = LogConfig(segment_bytes=4 * 1024, index_interval_bytes=512)


def batch_of(timestamps: list[int], compression: int = rb.CODEC_NONE, value_size: int = 40) -> bytes:
    """One batch whose records carry ``timestamps`` in this order (a producer's may go backwards)."""
    records = [
        rb.Record(value=b"v" * value_size, key=b"k%d" % i, timestamp=t) for i, t in enumerate(timestamps)
    ]
    base = timestamps[0]
    if compression == rb.CODEC_NONE:
        return rb.build_batch(records, base_timestamp=base)
    raw, _, _ = rb.encode_records(records, base)
    return rb.build_batch(
        records,
        base_timestamp=base,
        attributes=compression,
        compressed_records=codec.compress(compression, raw),
    )


def expected(plog: PartitionLog, upto: int | None = None) -> tuple[int, int] | None:
    """The answer by brute force: every record of the log decoded."""
    limit = plog.log_end_offset if upto is None else upto
    best: tuple[int, int] | None = None
    offset = plog.log_start_offset
    while offset < limit:
        data = bytes(plog.read(offset, 1 << 20, upto=limit))
        if not data:
            break
        pos = 0
        while pos < len(data):
            header = rb.parse_header(data, pos)
            body = codec.decompress(header.codec, data[pos + rb.HEADER_SIZE : pos + header.size])
            for record in rb.decode_records(body, header):
                if best is None or record.timestamp > best[1]:
                    best = (record.offset, record.timestamp)
            pos += header.size
            offset = header.last_offset + 1
    return best


@pytest.fixture
def log_manager(data_dir: Path, clock: FakeClock) -> LogManager:
    return LogManager(data_dir, CONFIG, clock)


@pytest.mark.parametrize("compression", [rb.CODEC_NONE, rb.CODEC_GZIP, rb.CODEC_ZSTD])
def test_the_record_with_the_largest_timestamp_not_its_batch_end(
    log_manager: LogManager, compression: int
) -> None:
    plog = log_manager.create("q", 0)
    assert plog.offset_for_max_timestamp() is None  # empty
    plog.append(batch_of([1_000, 1_001, 1_002], compression))  # 0-2
    plog.append(batch_of([5_000, 9_000, 4_000, 8_999], compression))  # 3-6: the max is offset 4
    plog.append(batch_of([7_000, 7_001], compression))  # 7-8: later, but older
    assert plog.offset_for_max_timestamp() == (4, 9_000)
    plog.append(batch_of([9_000, 9_000], compression))  # 9-10: equal: the first one stays the answer
    assert plog.offset_for_max_timestamp() == (4, 9_000)
    plog.append(batch_of([100, 9_500, 9_500], compression))  # 11-13: the first of two equal records
    assert plog.offset_for_max_timestamp() == (12, 9_500)
    log_manager.close()


def test_only_batches_below_the_limit_count(log_manager: LogManager) -> None:
    plog = log_manager.create("q", 0)
    plog.append(batch_of([1_000, 3_000]))  # 0-1
    plog.append(batch_of([2_000]))  # 2
    plog.append(batch_of([8_000, 5_000]))  # 3-4: not yet committed in the calls below
    assert plog.offset_for_max_timestamp(upto=3) == (1, 3_000)
    assert plog.offset_for_max_timestamp(upto=2) == (1, 3_000)
    assert plog.offset_for_max_timestamp(upto=0) is None
    assert plog.offset_for_max_timestamp(upto=5) == (3, 8_000)
    plog.flush()  # the time index entries move from memory to RocksDB: the same answers
    assert plog.offset_for_max_timestamp(upto=3) == (1, 3_000)
    assert plog.offset_for_max_timestamp() == (3, 8_000)
    log_manager.close()


def test_after_retention_deleted_the_largest_timestamp(
    data_dir: Path, clock: FakeClock, log_manager: LogManager
) -> None:
    """The time index names a deleted batch then: each segment's own maximum answers, before and after
    more appends, a truncation and a restart."""
    plog = log_manager.create("q", 0)
    plog.append(batch_of([50_000], value_size=3_000))  # segment 0: the largest timestamp ever
    for i in range(12):
        plog.append(batch_of([1_000 + 10 * i, 5_000 - 10 * i, 2_000], value_size=600))
    assert len(plog.segment_infos()) >= 3
    assert plog.offset_for_max_timestamp() == (0, 50_000)
    plog.high_watermark = plog.log_end_offset
    assert plog.delete_oldest_segments(1, "test") == 1
    assert plog.offset_for_max_timestamp() == expected(plog) == (2, 5_000)
    plog.append(batch_of([6_000, 4_000]))
    assert plog.offset_for_max_timestamp() == expected(plog)
    end = plog.log_end_offset
    assert plog.offset_for_max_timestamp(upto=end - 2) == expected(plog, end - 2) == (2, 5_000)
    plog.truncate_to(end - 2)  # the batch with 6_000 is gone: its segment is walked again
    plog.append(batch_of([3_000, 3_001]))
    assert plog.offset_for_max_timestamp() == expected(plog) == (2, 5_000)
    plog.flush()
    log_manager.close()

    reopened = LogManager(data_dir, CONFIG, clock)
    plog = reopened.get("q", 0)
    assert plog is not None
    assert plog.offset_for_max_timestamp() == expected(plog) == (2, 5_000)
    reopened.close()


@pytest.mark.parametrize("step_bytes", [max_timestamp.WALK_BYTES_PER_STEP, 700])
def test_matches_brute_force_through_appends_deletions_and_truncations(
    log_manager: LogManager, monkeypatch: pytest.MonkeyPatch, step_bytes: int
) -> None:
    """700 bytes: a walk over the segments' headers stops and goes on again every few batches."""
    monkeypatch.setattr(max_timestamp, "WALK_BYTES_PER_STEP", step_bytes)
    rng = random.Random(16)
    plog = log_manager.create("q", 0)
    for step in range(300):
        action = rng.random()
        if action < 0.8:
            timestamps = [rng.randrange(0, 100_000) for _ in range(rng.randrange(1, 6))]
            plog.append(batch_of(timestamps, rng.choice([rb.CODEC_NONE, rb.CODEC_GZIP]), value_size=200))
        elif action < 0.9:
            plog.high_watermark = plog.log_end_offset
            plog.delete_oldest_segments(1, "test")
        elif plog.log_end_offset > plog.log_start_offset:
            plog.truncate_to(rng.randrange(plog.log_start_offset, plog.log_end_offset))
        if step % 40 == 0:
            plog.flush()
        end = plog.log_end_offset
        upto = rng.randrange(plog.log_start_offset, end + 1) if end > plog.log_start_offset else end
        assert plog.offset_for_max_timestamp() == expected(plog), step
        assert plog.offset_for_max_timestamp(upto=upto) == expected(plog, upto), step
    log_manager.close()


def test_retention_keeps_the_running_max_indexed(
    data_dir: Path, clock: FakeClock, log_manager: LogManager
) -> None:
    """Retention deleting every time entry used to reset the running max timestamp at the next truncation
    or restart, so later batches were indexed as rises over older data with larger timestamps, and a
    lookup by timestamp skipped that data."""
    plog = log_manager.create("q", 0)
    plog.append(batch_of([50_000], value_size=3_000))  # the only time entry: deleted below
    for _ in range(8):
        plog.append(batch_of([1_000, 5_000, 2_000], value_size=600))
    plog.high_watermark = plog.log_end_offset
    assert plog.delete_oldest_segments(1, "test") == 1
    start = plog.log_start_offset
    plog.truncate_to(plog.log_end_offset - 1)
    plog.append(batch_of([3_000, 3_001]))
    assert plog.offset_for_timestamp(3_500) == (start + 1, 5_000)
    assert plog.offset_for_max_timestamp() == (start + 1, 5_000)
    plog.flush()
    log_manager.close()

    reopened = LogManager(data_dir, CONFIG, clock)
    plog = reopened.get("q", 0)
    assert plog is not None
    plog.append(batch_of([3_002]))
    assert plog.offset_for_timestamp(3_500) == (start + 1, 5_000)
    assert plog.offset_for_max_timestamp() == (start + 1, 5_000)
    reopened.close()
