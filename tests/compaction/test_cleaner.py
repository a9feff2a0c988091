"""The log cleaner on real partition logs (files, RocksDB index, recovery) with a fake clock."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from logq import batch as rb
from logq import codec
from logq.compaction import LogCleaner
from logq.compaction.cleaner import (
    PassPlan,
    clean_log,
    dirty_section,
    read_checkpoint,
    run_pass,
)
from logq.compaction.offset_map import ENTRY_BYTES
from logq.config import LogConfig
from logq.errors import OutOfOrderSequenceError, StorageError
from logq.segments import LogManager, PartitionLog
from logq.testing import FakeClock

CONFIG = LogConfig(
    segment_bytes=4096,
    index_interval_bytes=512,
    cleanup_policy="compact",
    min_cleanable_dirty_ratio=0.01,
    delete_retention_ms=1000,
    file_delete_delay_ms=0,
)


def keyed(
    pairs: list[tuple[bytes | None, bytes | None]],
    *,
    compression: int = rb.CODEC_NONE,
    producer: tuple[int, int, int] | None = None,
) -> bytes:
    records = [rb.Record(value, key) for key, value in pairs]
    pid, epoch, sequence = producer or (rb.NO_PRODUCER_ID, -1, rb.NO_SEQUENCE)
    compressed = None
    if compression != rb.CODEC_NONE:
        compressed = codec.compress(compression, rb.encode_records(records, 1000)[0])
    return rb.build_batch(
        records,
        base_timestamp=1000,
        producer_id=pid,
        producer_epoch=epoch,
        base_sequence=sequence,
        attributes=compression,
        compressed_records=compressed,
    )


def stored_records(plog: PartitionLog) -> list[rb.DecodedRecord]:
    """Every record from the log start, as a consumer reading from offset 0 gets them."""
    out: list[rb.DecodedRecord] = []
    offset = plog.log_start_offset
    while offset < plog.log_end_offset:
        data = bytes(plog.read(offset, 1 << 20))
        if not data:
            break
        pos = 0
        while pos < len(data):
            header = rb.validate(data[pos : pos + rb.read_prefix(data, pos)[1]], stored=True)
            section = codec.decompress(header.codec, data[pos + rb.HEADER_SIZE : pos + header.size])
            out.extend(rb.decode_records(section, header))
            offset = header.last_offset + 1
            pos += header.size
    return out


def latest(records: list[rb.DecodedRecord]) -> dict[bytes | None, bytes | None]:
    return {r.key: r.value for r in records}


@pytest.fixture
def logs(data_dir: Path, clock: FakeClock) -> Iterator[tuple[LogManager, PartitionLog]]:
    manager = LogManager(data_dir, CONFIG, clock)
    yield manager, manager.create("q", 0, CONFIG)
    manager.close()


def fill_updates(plog: PartitionLog, keys: int, rounds: int, **kwargs: object) -> dict[bytes, bytes]:
    """``rounds`` updates of each of ``keys`` keys, one batch per round; returns the latest values."""
    final: dict[bytes, bytes] = {}
    for r in range(rounds):
        pairs: list[tuple[bytes | None, bytes | None]] = []
        for k in range(keys):
            key, value = b"key-%d" % k, b"value-%d-%d" % (k, r) + b"x" * 40
            pairs.append((key, value))
            final[key] = value
        plog.append(keyed(pairs, **kwargs))  # type: ignore[arg-type]
    plog.roll()  # the active segment is never cleaned
    plog.high_watermark = plog.log_end_offset
    return final


def clean(manager: LogManager, clock: FakeClock) -> None:
    """Passes until none is due, with the broker's cleaner (its worker process does the file work)."""
    cleaner = LogCleaner(manager.logs, clock, CONFIG)
    try:
        while cleaner.run_once() is not None:
            pass
    finally:
        cleaner.stop()


def test_a_pass_keeps_the_latest_value_of_each_key_at_its_own_offset(
    logs: tuple[LogManager, PartitionLog], clock: FakeClock
) -> None:
    manager, plog = logs
    final = fill_updates(plog, keys=10, rounds=30)
    before = plog.size_bytes
    end = plog.log_end_offset
    clean(manager, clock)
    records = stored_records(plog)
    assert latest(records) == final
    assert len(records) == 10
    assert [r.offset for r in records] == list(range(end - 10, end))  # offsets kept: the last round
    assert plog.size_bytes < before / 10
    # the segments emptied by cleaning are deleted: the log start (the low watermark) moves past them
    assert 0 < plog.log_start_offset <= end - 10
    assert plog.log_end_offset == end
    assert read_checkpoint(plog.directory) == end


def test_the_cleaned_log_survives_a_restart_and_takes_appends(
    data_dir: Path, logs: tuple[LogManager, PartitionLog], clock: FakeClock
) -> None:
    manager, plog = logs
    final = fill_updates(plog, keys=5, rounds=20)
    clean(manager, clock)
    end = plog.log_end_offset
    manager.abandon()  # a crash: recovery scans the cleaned segments, gaps and all
    manager = LogManager(data_dir, CONFIG, clock)
    reloaded = manager.get("q", 0)
    assert reloaded is not None
    plog = reloaded
    assert plog.log_end_offset == end
    assert latest(stored_records(plog)) == final
    info = plog.append(keyed([(b"key-0", b"new")]))
    assert info.base_offset == end
    assert latest(stored_records(plog))[b"key-0"] == b"new"
    manager.close()


def test_a_read_in_a_removed_range_gets_the_next_batch(
    logs: tuple[LogManager, PartitionLog], clock: FakeClock
) -> None:
    manager, plog = logs
    plog.append(keyed([(b"kept", b"once")]))  # offset 0 stays: the log start does not move
    fill_updates(plog, keys=4, rounds=40)
    end = plog.log_end_offset
    clean(manager, clock)
    assert plog.log_start_offset == 0
    for offset in (1, 2, 50, end - 5):  # removed records, in the same segment or in later ones
        first = rb.parse_header(bytes(plog.read(offset, 1 << 20)))
        assert first.base_offset == end - 4  # only the last round is left after offset 0
    assert [r.offset for r in stored_records(plog)] == [0, *range(end - 4, end)]
    assert plog.offset_for_timestamp(0) is not None


def test_tombstones_stay_until_delete_retention_ms_after_they_were_cleaned(
    logs: tuple[LogManager, PartitionLog], clock: FakeClock
) -> None:
    manager, plog = logs
    fill_updates(plog, keys=4, rounds=5)
    plog.append(keyed([(b"key-1", None), (b"key-2", None)]))
    plog.roll()
    plog.high_watermark = plog.log_end_offset
    cleaner = LogCleaner(manager.logs, clock, CONFIG, run=run_pass)  # the file work in this thread
    assert cleaner.run_once() is not None  # the first pass: the deletes stay, a consumer sees them
    assert cleaner.run_once() is None
    first = stored_records(plog)
    assert latest(first)[b"key-1"] is None
    assert latest(first)[b"key-2"] is None
    assert len(first) == 4
    assert {r.timestamp for r in first} == {1000}  # the horizon stamp keeps the records' own times
    clock.advance(CONFIG.delete_retention_ms + 1)
    assert cleaner.run_once() is not None  # nothing is dirty, but the tombstones' horizon passed
    assert cleaner.run_once() is None
    second = latest(stored_records(plog))
    assert b"key-1" not in second
    assert b"key-2" not in second
    assert set(second) == {b"key-0", b"key-3"}


def test_an_idempotent_producers_emptied_last_batch_stays_and_its_sequence_continues(
    data_dir: Path, logs: tuple[LogManager, PartitionLog], clock: FakeClock
) -> None:
    manager, plog = logs
    sequence = 0
    for r in range(10):
        plog.append(keyed([(b"a", b"%d" % r), (b"b", b"%d" % r)], producer=(7, 0, sequence)))
        sequence += 2
    plog.append(keyed([(b"a", b"other")]))  # makes the producer's last batch dead
    plog.append(keyed([(b"b", b"other")]))
    plog.roll()
    plog.high_watermark = plog.log_end_offset
    clean(manager, clock)
    headers = [rb.parse_header(bytes(plog.read(o, 1 << 20))) for o in (0,)]
    assert headers[0].producer_id == 7
    assert headers[0].records_count == 0
    assert headers[0].base_sequence == 18
    assert headers[0].last_offset_delta == 1
    assert latest(stored_records(plog)) == {b"a": b"other", b"b": b"other"}
    manager.abandon()
    manager = LogManager(data_dir, CONFIG, clock)
    reloaded = manager.get("q", 0)
    assert reloaded is not None
    plog = reloaded
    with pytest.raises(OutOfOrderSequenceError):
        plog.append(keyed([(b"a", b"gap")], producer=(7, 0, sequence + 1)))
    plog.append(keyed([(b"a", b"next")], producer=(7, 0, sequence)))
    duplicate = plog.append(keyed([(b"a", b"next")], producer=(7, 0, sequence)))
    assert duplicate.duplicate
    manager.close()


@pytest.mark.parametrize("compression", [rb.CODEC_GZIP, rb.CODEC_ZSTD])
def test_compressed_batches_are_rewritten_in_their_codec(
    logs: tuple[LogManager, PartitionLog], clock: FakeClock, compression: int
) -> None:
    manager, plog = logs
    final = fill_updates(plog, keys=6, rounds=10, compression=compression)
    plog.append(keyed([(b"key-0", b"last")], compression=compression))
    final[b"key-0"] = b"last"
    plog.roll()
    plog.high_watermark = plog.log_end_offset
    clean(manager, clock)
    assert latest(stored_records(plog)) == final
    first = rb.parse_header(bytes(plog.read(0, 1 << 20)))
    assert first.codec == compression
    assert first.records_count == 5


def test_a_full_offset_map_cleans_only_as_far_as_it_covers(
    logs: tuple[LogManager, PartitionLog], clock: FakeClock
) -> None:
    manager, plog = logs
    final: dict[bytes | None, bytes | None] = {}
    for r in range(20):  # 50 keys, each batch ten of them
        pairs: list[tuple[bytes | None, bytes | None]] = [
            (b"key-%d-%d" % (r % 5, k), b"value-%d" % r + b"x" * 40) for k in range(10)
        ]
        plog.append(keyed(pairs))
        final.update(pairs)
    plog.roll()
    plog.high_watermark = plog.log_end_offset
    section = dirty_section(plog, clock.time_ms())
    assert section is not None
    # log.cleaner.dedupe.buffer.size of 25 entries: room for 22 keys (load factor 0.9), two batches
    result = clean_log(
        plog, section, run=run_pass, buffer_bytes=25 * ENTRY_BYTES, crash_point=lambda step: None,
        now_ms=clock.time_ms(),
    )  # fmt: skip
    assert result is not None
    assert result.cleaned_to == 20  # the map took offsets 0-19
    assert read_checkpoint(plog.directory) == 20
    assert latest(stored_records(plog)) == final
    before = plog.size_bytes
    clean(manager, clock)  # the cleaner's own map is large: the rest in one pass
    assert read_checkpoint(plog.directory) == plog.log_end_offset
    assert plog.size_bytes < before
    records = stored_records(plog)
    assert len(records) == 50
    assert latest(records) == final


def test_the_head_and_young_records_are_not_cleaned(data_dir: Path, clock: FakeClock) -> None:
    config = CONFIG.with_overrides({"min.compaction.lag.ms": 60_000})
    manager = LogManager(data_dir, config, clock)
    plog = manager.create("q", 0, config)
    fill_updates(plog, keys=4, rounds=30)
    before = plog.size_bytes
    clean(manager, clock)
    assert plog.size_bytes == before  # every segment is younger than min.compaction.lag.ms
    clock.advance(60_001)
    cleanable_end = plog.segment_infos()[2].base_offset
    plog.high_watermark = cleanable_end + 1  # the third segment reaches it: it is not cleaned
    clean(manager, clock)
    records = stored_records(plog)
    assert [r.offset for r in records if r.offset >= cleanable_end] == list(range(cleanable_end, 120))
    assert len([r for r in records if r.offset < cleanable_end]) == 4
    manager.close()


def test_a_log_without_the_compact_policy_is_left_alone(data_dir: Path, clock: FakeClock) -> None:
    manager = LogManager(data_dir, CONFIG, clock)
    plog = manager.create("q", 0, CONFIG.with_overrides({"cleanup.policy": "delete"}))
    fill_updates(plog, keys=4, rounds=30)
    before = plog.size_bytes
    clean(manager, clock)
    assert plog.size_bytes == before
    manager.close()


@pytest.mark.parametrize("step", ["cleaned", "swap", "old-deleted", "renamed", "done"])
def test_a_crash_at_any_step_of_a_swap_leaves_the_old_or_the_new_segments(
    data_dir: Path, logs: tuple[LogManager, PartitionLog], clock: FakeClock, step: str
) -> None:
    """In process (the broker tests kill a real process at each step): the crash point raises, the log
    is abandoned without closing, and recovery must find exactly the latest values, no offset twice."""
    manager, plog = logs
    final = fill_updates(plog, keys=5, rounds=30)
    end = plog.log_end_offset

    class Crash(BaseException):
        pass

    def crash_point(at: str) -> None:
        if at == step:
            raise Crash

    section = dirty_section(plog, clock.time_ms())
    assert section is not None
    with pytest.raises(Crash):
        clean_log(
            plog, section, run=run_pass, buffer_bytes=1 << 20, crash_point=crash_point,
            now_ms=clock.time_ms(),
        )  # fmt: skip
    manager.abandon()
    manager = LogManager(data_dir, CONFIG, clock)
    reloaded = manager.get("q", 0)
    assert reloaded is not None
    plog = reloaded
    records = stored_records(plog)
    offsets = [r.offset for r in records]
    assert offsets == sorted(set(offsets))
    assert latest(records) == final
    assert plog.log_end_offset == end
    assert not list(plog.directory.glob("*.swap"))
    assert not list(plog.directory.glob("*.cleaned"))
    clean(manager, clock)  # and the next pass finishes the job
    assert len(stored_records(plog)) == 5
    manager.close()


def test_segments_truncated_and_written_again_meanwhile_are_not_replaced(
    logs: tuple[LogManager, PartitionLog], clock: FakeClock
) -> None:
    """A follower may truncate its log (and append the leader's batches again) while a pass runs: the
    pass's output, made from the old bytes, must not replace the new ones."""
    _, plog = logs
    fill_updates(plog, keys=4, rounds=30)
    section = dirty_section(plog, clock.time_ms())
    assert section is not None
    plog.truncate_to(0)  # the first segment is cut back in place, the others go
    final = fill_updates(plog, keys=4, rounds=30)  # new segments under the same names
    records_before = stored_records(plog)

    # the first segment was cut back in place (same file): the pass reads it, the swap refuses it
    first = section.segments[0]
    first_only = dataclasses.replace(section, segments=[first], end=first.next_offset)
    result = clean_log(
        plog, first_only, run=run_pass, buffer_bytes=1 << 20, crash_point=lambda step: None,
        now_ms=clock.time_ms(),
    )  # fmt: skip
    assert result is not None
    assert result.segments_after == 0  # nothing swapped in
    assert result.bytes_before == 0
    assert stored_records(plog) == records_before
    assert latest(stored_records(plog)) == final
    assert not list(plog.directory.glob("*.cleaned"))
    with pytest.raises(StorageError, match="replaced since the pass was planned"):
        run_pass(
            PassPlan(
                str(plog.directory), section, frozenset(), clock.time_ms(), 0, CONFIG.segment_bytes,
                CONFIG.index_interval_bytes, 1 << 20, "test",
            )
        )  # fmt: skip
