"""One cleaning pass over one partition log (after Kafka's Cleaner).

1. The dirty section runs from the cleaner checkpoint (the offset the previous pass cleaned up to) to the
   first uncleanable offset: never the active segment, never at or above the high watermark, never a
   segment with records younger than min.compaction.lag.ms.
2. The offset map takes each key's latest offset in the dirty section, as far as the map holds (it
   covers ``mapped_to``; the rest waits for the next pass).
3. The segments from the log start to ``mapped_to`` are rewritten, in groups of adjacent segments that
   fit in segment.bytes together, each group into one segment: a record stays when it is the latest of
   its key (or past ``mapped_to``); a record without a key goes (Kafka's rule); a tombstone goes once
   its batch's delete horizon has passed (KIP-534: the first pass that keeps a tombstone stamps its
   batch with now + delete.retention.ms), so a tombstone stays delete.retention.ms after it was first
   cleaned. Offsets are kept (gaps are normal) and so are the batch headers; a batch left with no
   record is dropped, unless it is its idempotent producer's latest, which stays empty so that the
   producer state survives a reload.
4. Each group is written to ``<base>.cleaned``, fsynced, and swapped in
   (``PartitionLog.replace_segments``).
5. The cleaner checkpoint moves to ``mapped_to``.

Blocking and slow: it runs on the cleaner thread (``manager.py``), never on the event loop. The segments
it reads take no more appends, so it reads them without the log's lock.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from logq import batch as rb
from logq.compaction.offset_map import OffsetMap
from logq.compaction.records import (
    ATTR_DELETE_HORIZON,
    RawRecord,
    UndecodableError,
    iter_records,
    rebase,
    rebuild,
    records_section,
)
from logq.config import LONG_MAX, LogConfig
from logq.segments import files
from logq.segments.log import CleanedSegment, PartitionLog
from logq.segments.segment import Segment

log = logging.getLogger(__name__)

CHECKPOINT_FILE = files.CLEANER_CHECKPOINT
READ_CHUNK = 1 << 20
WRITE_CHUNK = 1 << 20


class CleaningStoppedError(Exception):
    """The broker is stopping: the pass was abandoned (nothing swapped in part)."""


@dataclass(frozen=True, slots=True)
class CleanerStats:
    """Totals since the broker started (the metrics)."""

    passes: int
    bytes_read: int
    bytes_reclaimed: int
    max_dirty_ratio: float


@dataclass(frozen=True, slots=True)
class DirtySection:
    """What the next pass over a log would clean, and whether it is due."""

    segments: list[Segment]  # the cleanable segments, from the log start
    first_dirty: int
    end: int  # the first uncleanable offset
    clean_bytes: int
    dirty_bytes: int
    overdue: bool  # a dirty record is older than max.compaction.lag.ms

    @property
    def ratio(self) -> float:
        total = self.clean_bytes + self.dirty_bytes
        return self.dirty_bytes / total if total else 0.0

    def due(self, config: LogConfig, *, tombstones_expired: bool = False) -> bool:
        """Dirty enough, or overdue; or tombstones in it have passed their delete horizon (as Kafka,
        which cleans such a log even with nothing dirty)."""
        if tombstones_expired:
            return True
        return self.dirty_bytes > 0 and (self.ratio >= config.min_cleanable_dirty_ratio or self.overdue)


@dataclass(frozen=True, slots=True)
class CleanResult:
    partition: str
    first_dirty: int
    cleaned_to: int
    bytes_read: int
    bytes_before: int
    bytes_after: int
    segments_before: int
    segments_after: int
    seconds: float
    delete_horizon: int  # the earliest delete horizon of the tombstones left (-1: none)


def read_checkpoint(directory: Path) -> int:
    """The offset the previous pass cleaned up to (0 when none was recorded)."""
    try:
        return int((directory / CHECKPOINT_FILE).read_text().strip())
    except (FileNotFoundError, ValueError):
        return 0


def write_checkpoint(directory: Path, offset: int) -> None:
    files.atomic_write(directory / CHECKPOINT_FILE, str(offset).encode())


def dirty_section(plog: PartitionLog, now_ms: int) -> DirtySection | None:
    """The section a pass would clean now, or None when the log is not compacted or has none."""
    config = plog.config
    if "compact" not in config.cleanup_policy:
        return None
    high_watermark = plog.high_watermark
    lag_edge = now_ms - config.min_compaction_lag_ms
    cleanable: list[Segment] = []
    for segment in plog.inactive_segments():
        if segment.next_offset > high_watermark:
            break
        if config.min_compaction_lag_ms > 0 and segment.last_append_ms > lag_edge:
            break
        cleanable.append(segment)
    if not cleanable:
        return None
    start, end = cleanable[0].base_offset, cleanable[-1].next_offset
    checkpoint = read_checkpoint(plog.directory)
    # above the log end: the log was truncated or restarted below it, so everything is dirty again
    first_dirty = start if checkpoint > plog.log_end_offset else max(checkpoint, start)
    clean = [s for s in cleanable if s.next_offset <= first_dirty]
    dirty = cleanable[len(clean) :]
    max_lag = config.max_compaction_lag_ms
    overdue = max_lag < LONG_MAX and any(
        s.first_append_ms >= 0 and now_ms - s.first_append_ms > max_lag for s in dirty
    )
    return DirtySection(
        cleanable, first_dirty, end, sum(s.size for s in clean), sum(s.size for s in dirty), overdue
    )


def iter_batches(segment: Segment) -> Iterator[tuple[rb.BatchHeader, bytes]]:
    """(header, stored bytes) of every batch of a segment that takes no more appends, read a chunk at
    a time."""
    position = 0
    size = segment.size
    while size - position >= rb.HEADER_SIZE:
        chunk = segment.read(position, min(READ_CHUNK, size - position))
        pos = 0
        while len(chunk) - pos >= rb.HEADER_SIZE:
            header = rb.parse_header(chunk, pos)
            if header.size < rb.HEADER_SIZE:
                raise UndecodableError(
                    f"{segment.path}: impossible batch length at position {position + pos}"
                )
            if pos + header.size > len(chunk):
                if pos == 0:  # a batch larger than the chunk: read it alone
                    yield header, segment.read(position, header.size)
                    pos = header.size
                break
            yield header, chunk[pos : pos + header.size]
            pos += header.size
        if pos == 0:
            return
        position += pos


def clean_log(
    plog: PartitionLog,
    section: DirtySection,
    offset_map: OffsetMap,
    *,
    stop: Callable[[], bool],
    crash_point: Callable[[str], None],
    now_ms: int,
) -> CleanResult | None:
    """One pass (the module docstring); None when the map could not take even one batch. Raises
    CleaningStoppedError when ``stop()`` turns true (the cleaned file in progress is removed)."""
    started = time.monotonic()
    config = plog.config
    offset_map.clear()
    mapped_to, bytes_read = _build_map(section, offset_map, stop)
    if mapped_to <= section.first_dirty and section.dirty_bytes > 0:
        log.warning(
            "%s: log.cleaner.dedupe.buffer.size holds %d keys, too few for one batch at offset %d",
            plog.name, offset_map.capacity, section.first_dirty,
        )  # fmt: skip
        return None
    state = _PassState(
        mapped_to, offset_map, plog.producer_last_batches(), now_ms, config.delete_retention_ms, []
    )
    to_clean = [s for s in section.segments if s.base_offset < mapped_to]
    plog.allow_gaps()
    before = after = 0
    groups = _groups(to_clean, config.segment_bytes)
    for group in groups:
        if stop():
            raise CleaningStoppedError
        cleaned = _write_group(plog.directory, group, state, config.index_interval_bytes, stop)
        crash_point("cleaned")
        if not plog.replace_segments(cleaned, crash_point):
            (plog.directory / files.cleaned_name(cleaned.base_offset)).unlink(missing_ok=True)
            log.info("%s: segments changed while they were cleaned; the pass ends here", plog.name)
            break
        bytes_read += sum(s.size for s in group)
        before += sum(s.size for s in group)
        after += cleaned.size
    else:
        write_checkpoint(plog.directory, mapped_to)
    return CleanResult(
        plog.name, section.first_dirty, mapped_to, bytes_read, before, after, len(to_clean), len(groups),
        time.monotonic() - started, min(state.horizons, default=-1),
    )  # fmt: skip


def _build_map(section: DirtySection, offset_map: OffsetMap, stop: Callable[[], bool]) -> tuple[int, int]:
    """Map the dirty section's keys to their latest offsets; returns (offset covered up to, bytes read)."""
    first_dirty = section.first_dirty
    bytes_read = 0
    for segment in section.segments:
        if segment.next_offset <= first_dirty:
            continue
        if stop():
            raise CleaningStoppedError
        bytes_read += segment.size
        for header, data in iter_batches(segment):
            if header.last_offset < first_dirty or header.is_control:
                continue
            if header.records_count > offset_map.room():
                return max(header.base_offset, first_dirty), bytes_read
            try:
                section_bytes = records_section(header, data)
                for record in iter_records(section_bytes, header.records_count):
                    offset = header.base_offset + record.offset_delta
                    if record.key is not None and offset >= first_dirty:
                        offset_map.put(record.key, offset)
            except UndecodableError:
                continue  # kept whole when rewritten; it cannot hide older records of its keys
    return section.end, bytes_read


def _groups(segments: list[Segment], max_bytes: int) -> list[list[Segment]]:
    """Adjacent segments whose sizes fit in ``max_bytes`` together (Kafka's groupSegmentsBySize)."""
    groups: list[list[Segment]] = []
    for segment in segments:
        if groups and sum(s.size for s in groups[-1]) + segment.size <= max_bytes:
            groups[-1].append(segment)
        else:
            groups.append([segment])
    return groups


@dataclass(frozen=True, slots=True)
class _PassState:
    mapped_to: int  # the offset map covers the dirty section up to here
    offset_map: OffsetMap
    producers_last: set[int]  # base offsets of the idempotent producers' latest batches
    now_ms: int
    delete_retention_ms: int
    horizons: list[int]  # the delete horizons of the batches that keep tombstones


def _write_group(
    directory: Path, group: list[Segment], state: _PassState, index_interval: int, stop: Callable[[], bool]
) -> CleanedSegment:
    base = group[0].base_offset
    path = directory / files.cleaned_name(base)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    entries: list[tuple[int, int, int]] = []
    position = 0
    since_entry = index_interval
    pending = bytearray()
    try:
        for segment in group:
            if stop():
                raise CleaningStoppedError
            for header, data in iter_batches(segment):
                out = _filter_batch(header, data, state)
                if out is None:
                    continue
                if position == 0 or since_entry >= index_interval:  # SparseIndexer's rule
                    entries.append((header.base_offset, base, position))
                    since_entry = 0
                since_entry += len(out)
                position += len(out)
                pending += out
                if len(pending) >= WRITE_CHUNK:
                    _write_all(fd, pending)
                    pending.clear()
        _write_all(fd, pending)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    os.close(fd)
    firsts = [s.first_append_ms for s in group if s.first_append_ms >= 0]
    return CleanedSegment(
        base_offset=base,
        replaces=tuple(s.base_offset for s in group),
        size=position,
        offset_entries=entries,
        first_append_ms=min(firsts) if firsts else -1,
        last_append_ms=max(s.last_append_ms for s in group),
    )


def _write_all(fd: int, data: bytearray) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _filter_batch(header: rb.BatchHeader, data: bytes, state: _PassState) -> bytes | None:
    """The batch as it is kept (``data`` itself when nothing changes), or None when it goes entirely."""
    if header.is_control:
        return data
    try:
        records = list(iter_records(records_section(header, data), header.records_count))
    except UndecodableError:
        return data
    has_horizon = bool(header.attributes & ATTR_DELETE_HORIZON)
    drop_tombstones = has_horizon and state.now_ms >= header.base_timestamp
    kept: list[RawRecord] = []
    base = header.base_offset
    for record in records:
        offset = base + record.offset_delta
        if offset >= state.mapped_to:
            kept.append(record)
            continue
        if record.key is None:
            continue
        latest = state.offset_map.latest(record.key)
        if (latest is not None and offset < latest) or (record.tombstone and drop_tombstones):
            continue
        kept.append(record)
    stamp = not has_horizon and any(r.tombstone and base + r.offset_delta < state.mapped_to for r in kept)
    if len(kept) == len(records) and not stamp:
        return data
    if not kept and base not in state.producers_last:
        return None
    if has_horizon and any(r.tombstone for r in kept):
        state.horizons.append(header.base_timestamp)
    if stamp:  # the first pass to keep a tombstone here starts its delete.retention.ms
        horizon = state.now_ms + state.delete_retention_ms
        state.horizons.append(horizon)
        shift = horizon - header.base_timestamp
        return rebuild(
            header,
            [rebase(r, shift) for r in kept],
            attributes=header.attributes | ATTR_DELETE_HORIZON,
            base_timestamp=horizon,
        )
    return rebuild(header, [r.raw for r in kept])
