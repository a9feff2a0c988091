"""Fault injection on real files: torn tails, junk, bit flips, a lost or lying index, interrupted rolls."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import pytest

from logq import batch as rb
from logq.config import LogConfig
from logq.segments import LogManager, PartitionLog
from logq.segments.index import IndexStore
from logq.testing import FakeClock, make_batch
from tests.segments.test_log import batches_in, read_all

CONFIG = LogConfig(segment_bytes=8 * 1024, index_interval_bytes=512)


def fill(plog: PartitionLog, count: int, start_tag: int = 0) -> list[bytes]:
    sent = [
        make_batch(3, value_size=150, tag=start_tag + i, timestamp=1000 * (start_tag + i))
        for i in range(count)
    ]
    for data in sent:
        plog.append(data)
    return sent


def reopen(data_dir: Path, clock: FakeClock) -> tuple[LogManager, PartitionLog]:
    manager = LogManager(data_dir, CONFIG, clock)
    plog = manager.get("q", 0)
    assert plog is not None
    return manager, plog


def values(plog: PartitionLog) -> list[bytes]:
    data = read_all(plog)
    out = []
    pos = 0
    while pos < len(data):
        header = rb.validate(data[pos : pos + rb.read_prefix(data, pos)[1]])
        out += [
            r.value or b"" for r in rb.decode_records(data[pos + rb.HEADER_SIZE : pos + header.size], header)
        ]
        pos += header.size
    return out


def expected_values(sent: list[bytes]) -> list[bytes]:
    out = []
    for data in sent:
        header = rb.validate(data)
        out += [r.value or b"" for r in rb.decode_records(data[rb.HEADER_SIZE :], header)]
    return out


def last_segment(data_dir: Path) -> Path:
    return sorted((data_dir / "q-0").glob("*.log"))[-1]


@pytest.fixture
def crashed(data_dir: Path, clock: FakeClock) -> tuple[list[bytes], list[bytes]]:
    """30 flushed batches, then 10 more that were never flushed, then a crash."""
    manager = LogManager(data_dir, CONFIG, clock)
    plog = manager.create("q", 0)
    flushed = fill(plog, 30)
    plog.flush()
    unflushed = fill(plog, 10, start_tag=30)
    manager.abandon()
    return flushed, unflushed


def test_a_crash_keeps_unflushed_batches_that_reached_the_file(
    data_dir: Path, clock: FakeClock, crashed: tuple[list[bytes], list[bytes]]
) -> None:
    flushed, unflushed = crashed
    manager, plog = reopen(data_dir, clock)
    report = manager.reports[0]
    assert not manager.clean_shutdown
    assert not report.full_rebuild
    assert report.scanned_batches == 10  # only the tail after the checkpoint
    assert values(plog) == expected_values(flushed + unflushed)
    manager.close()


def test_tail_cut_mid_batch_is_truncated_to_the_last_whole_batch(
    data_dir: Path,
    clock: FakeClock,
    crashed: tuple[list[bytes], list[bytes]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    flushed, unflushed = crashed
    segment = last_segment(data_dir)
    size = segment.stat().st_size
    with open(segment, "r+b") as f:
        f.truncate(size - 40)
    manager, plog = reopen(data_dir, clock)
    assert values(plog) == expected_values(flushed + unflushed[:-1])
    assert manager.reports[0].truncated_bytes == len(unflushed[-1]) - 40
    assert "cut short" in caplog.text
    assert "truncated" in caplog.text
    assert plog.append(make_batch(1)).base_offset == plog.log_end_offset - 1
    manager.close()


def test_junk_after_the_last_batch_is_dropped(
    data_dir: Path, clock: FakeClock, crashed: tuple[list[bytes], list[bytes]]
) -> None:
    flushed, unflushed = crashed
    with open(last_segment(data_dir), "ab") as f:
        f.write(b"\x00\x00\x00\x00\x00\x00\x00\x28" + b"\xff" * 100)
    manager, plog = reopen(data_dir, clock)
    assert values(plog) == expected_values(flushed + unflushed)
    assert manager.reports[0].truncated_bytes == 108
    manager.close()


def test_a_bit_flip_in_the_tail_drops_that_batch_and_everything_after(
    data_dir: Path, clock: FakeClock, crashed: tuple[list[bytes], list[bytes]]
) -> None:
    flushed, unflushed = crashed
    segment = last_segment(data_dir)
    data = bytearray(segment.read_bytes())
    # find the 5th unflushed batch in the file and flip one bit inside its records
    target = 35 * 3
    pos = 0
    while rb.read_prefix(data, pos)[0] != target:
        pos += rb.read_prefix(data, pos)[1]
    data[pos + 80] ^= 0x04
    segment.write_bytes(bytes(data))
    manager, plog = reopen(data_dir, clock)
    assert values(plog) == expected_values(flushed + unflushed[:5])
    assert plog.log_end_offset == target
    manager.close()


def test_lost_index_is_rebuilt_from_the_segments(
    data_dir: Path, clock: FakeClock, crashed: tuple[list[bytes], list[bytes]]
) -> None:
    flushed, unflushed = crashed
    shutil.rmtree(data_dir / "index.rocksdb")
    manager, plog = reopen(data_dir, clock)
    assert manager.reports[0].full_rebuild
    assert values(plog) == expected_values(flushed + unflushed)
    assert plog.offset_for_timestamp(17_000) == (17 * 3, 17_000)
    manager.close()


def test_a_bit_flip_anywhere_is_found_by_a_full_rebuild(
    data_dir: Path, clock: FakeClock, crashed: tuple[list[bytes], list[bytes]]
) -> None:
    flushed, _ = crashed
    first = sorted((data_dir / "q-0").glob("*.log"))[0]
    data = bytearray(first.read_bytes())
    second_batch = rb.read_prefix(data, 0)[1]
    data[second_batch + 70] ^= 0x01
    first.write_bytes(bytes(data))
    shutil.rmtree(data_dir / "index.rocksdb")
    manager, plog = reopen(data_dir, clock)
    assert values(plog) == expected_values(flushed[:1])
    assert manager.reports[0].dropped_segments > 0
    manager.close()


def test_producer_state_is_rebuilt_with_the_index(data_dir: Path, clock: FakeClock) -> None:
    manager = LogManager(data_dir, CONFIG, clock)
    plog = manager.create("q", 0)
    for i in range(20):
        plog.append(make_batch(2, producer_id=77, producer_epoch=3, sequence=2 * i))
    manager.close()
    shutil.rmtree(data_dir / "index.rocksdb")
    manager, plog = reopen(data_dir, clock)
    assert plog.append(make_batch(2, producer_id=77, producer_epoch=3, sequence=38)).duplicate
    assert plog.append(make_batch(2, producer_id=77, producer_epoch=3, sequence=40)).base_offset == 40
    manager.close()


def test_producer_state_of_unflushed_batches_is_replayed_after_a_crash(
    data_dir: Path, clock: FakeClock
) -> None:
    manager = LogManager(data_dir, CONFIG, clock)
    plog = manager.create("q", 0)
    plog.append(make_batch(2, producer_id=8, producer_epoch=0, sequence=0))
    plog.flush()
    plog.append(make_batch(2, producer_id=8, producer_epoch=0, sequence=2))
    manager.abandon()
    manager, plog = reopen(data_dir, clock)
    assert plog.append(make_batch(2, producer_id=8, producer_epoch=0, sequence=2)).duplicate
    assert plog.append(make_batch(2, producer_id=8, producer_epoch=0, sequence=4)).base_offset == 4
    manager.close()


def test_an_index_entry_past_the_segment_end_is_detected_at_load(
    data_dir: Path, clock: FakeClock, crashed: tuple[list[bytes], list[bytes]]
) -> None:
    flushed, unflushed = crashed
    store = IndexStore(data_dir / "index.rocksdb")
    segment_base = int(last_segment(data_dir).name[:20])
    store.partition("q-0").put_offset(89, segment_base, 10_000_000)
    store.close()
    manager, plog = reopen(data_dir, clock)
    assert manager.reports[0].full_rebuild
    assert "past the end" in manager.reports[0].reason
    assert values(plog) == expected_values(flushed + unflushed)
    manager.close()


def test_an_index_entry_past_the_segment_end_is_repaired_on_read(
    manager: LogManager, caplog: pytest.LogCaptureFixture
) -> None:
    plog = manager.create("q", 0)
    fill(plog, 20)
    plog.flush()  # index entries reach RocksDB at a flush
    segment_base = plog.segment_infos()[-1].base_offset
    manager.index.partition("q-0").put_offset(segment_base + 1, segment_base, 10_000_000)
    data = plog.read(segment_base + 2, 1 << 20)
    assert batches_in(data)[0].base_offset <= segment_base + 2 <= batches_in(data)[0].last_offset
    assert "rebuilding the index" in caplog.text


def test_crash_right_after_a_roll_created_an_empty_segment(data_dir: Path, clock: FakeClock) -> None:
    manager = LogManager(data_dir, CONFIG, clock)
    plog = manager.create("q", 0)
    sent = fill(plog, 10)
    plog.roll()
    manager.abandon()
    manager, plog = reopen(data_dir, clock)
    assert values(plog) == expected_values(sent)
    assert plog.segment_infos()[-1].size == 0
    assert plog.append(make_batch(1)).base_offset == 30
    manager.close()


def test_crash_during_a_roll_with_a_torn_previous_segment(data_dir: Path, clock: FakeClock) -> None:
    """The old segment's tail never reached the disk, but the new segment's file did."""
    manager = LogManager(data_dir, CONFIG, clock)
    plog = manager.create("q", 0)
    sent = fill(plog, 6)
    plog.flush()
    more = fill(plog, 30, start_tag=6)
    manager.abandon()
    segments = sorted((data_dir / "q-0").glob("*.log"))
    assert len(segments) >= 3
    with open(segments[0], "r+b") as f:
        f.truncate(segments[0].stat().st_size - 7)
    manager, plog = reopen(data_dir, clock)
    kept = len(values(plog)) // 3
    assert values(plog) == expected_values((sent + more)[:kept])
    assert kept >= 6
    assert len(plog.segment_infos()) == 1
    assert manager.reports[0].dropped_segments == len(segments) - 1
    manager.close()


def test_a_segment_with_the_wrong_base_offset_is_dropped(data_dir: Path, clock: FakeClock) -> None:
    manager = LogManager(data_dir, CONFIG, clock)
    plog = manager.create("q", 0)
    sent = fill(plog, 3)
    manager.abandon()
    stray = data_dir / "q-0" / f"{500:020d}.log"
    stray.write_bytes(rb.patch_prefix(rb.validate(sent[0]), 500, 0) + sent[0][16:])
    manager, plog = reopen(data_dir, clock)
    assert values(plog) == expected_values(sent)
    assert not stray.exists()
    manager.close()


def test_junk_after_a_clean_shutdown_is_still_caught(data_dir: Path, clock: FakeClock) -> None:
    manager = LogManager(data_dir, CONFIG, clock)
    sent = fill(manager.create("q", 0), 5)
    manager.close()
    with open(last_segment(data_dir), "ab") as f:
        f.write(struct.pack(">qi", 15, 9999) + b"\x01" * 30)
    manager, plog = reopen(data_dir, clock)
    assert manager.clean_shutdown
    assert values(plog) == expected_values(sent)
    manager.close()


def test_an_unreadable_index_database_is_replaced(
    data_dir: Path, clock: FakeClock, crashed: tuple[list[bytes], list[bytes]]
) -> None:
    flushed, unflushed = crashed
    index_dir = data_dir / "index.rocksdb"
    for path in index_dir.iterdir():
        if path.name.startswith(("CURRENT", "MANIFEST")):
            path.write_bytes(b"garbage")
    manager, plog = reopen(data_dir, clock)
    assert manager.index.rebuilt
    assert values(plog) == expected_values(flushed + unflushed)
    manager.close()


def test_leftover_temp_and_deleted_files_are_removed(data_dir: Path, clock: FakeClock) -> None:
    manager = LogManager(data_dir, CONFIG, clock)
    fill(manager.create("q", 0), 2)
    manager.close()
    (data_dir / "q-0" / "00000000000000000000.deleted").write_bytes(b"old")
    (data_dir / "q-0" / "meta.tmp").write_bytes(b"half")
    (data_dir / "q-1.abc-delete").mkdir()
    manager, _ = reopen(data_dir, clock)
    assert sorted(p.name for p in (data_dir / "q-0").iterdir()) == ["00000000000000000000.log"]
    assert not (data_dir / "q-1.abc-delete").exists()
    manager.close()
