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
4. Each group is written to ``<base>.<tag>.cleaned`` and fsynced; then each is swapped in
   (``PartitionLog.replace_segments``).
5. The cleaner checkpoint moves to ``mapped_to``; empty segments at the log start are deleted, so the
   log start offset (the low watermark consumers see) moves past records that are all gone.

Steps 2-4 (``run_pass``) read and write files only, from a ``PassPlan`` that names them: the cleaner
runs them in a worker process (``manager.py``), so that its CPU work never holds the broker's GIL. The
segments it reads take no more appends (and the retention job keeps away meanwhile), so they are read
without the log's lock. ``clean_log`` plans, has the pass run, and swaps the results in.
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
from logq.errors import StorageError
from logq.segments import files
from logq.segments.log import CleanedSegment, PartitionLog
from logq.segments.segment import Segment

log = logging.getLogger(__name__)

CHECKPOINT_FILE = files.CLEANER_CHECKPOINT
READ_CHUNK = 1 << 20
WRITE_CHUNK = 1 << 20
WORK_SLICE_S = 0.010  # the pass pauses PAUSE_S after every WORK_SLICE_S of work
PAUSE_S = 0.002


@dataclass(frozen=True, slots=True)
class CleanerStats:
    """Totals since the broker started (the metrics)."""

    passes: int
    bytes_read: int
    bytes_reclaimed: int
    max_dirty_ratio: float


@dataclass(frozen=True, slots=True)
class SegmentRef:
    """A segment as a pass reads it (picklable: it goes to the worker process)."""

    path: str
    base_offset: int
    next_offset: int
    size: int
    first_append_ms: int
    last_append_ms: int
    inode: int  # the file as planned: the pass refuses another one of the same name
    truncations: int  # ... and the swap one truncated since (``Segment.truncations``)

    @classmethod
    def of(cls, segment: Segment) -> SegmentRef:
        return cls(
            str(segment.path), segment.base_offset, segment.next_offset, segment.size,
            segment.first_append_ms, segment.last_append_ms, os.stat(segment.path).st_ino,
            segment.truncations,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class DirtySection:
    """What the next pass over a log would clean, and whether it is due."""

    segments: list[SegmentRef]  # the cleanable segments, from the log start
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
class PassPlan:
    """Everything ``run_pass`` needs, picklable."""

    directory: str
    section: DirtySection
    producers_last: frozenset[int]  # base offsets of the idempotent producers' latest batches
    now_ms: int
    delete_retention_ms: int
    segment_bytes: int
    index_interval_bytes: int
    buffer_bytes: int  # log.cleaner.dedupe.buffer.size
    tag: str  # in the cleaned files' names


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


@dataclass(frozen=True, slots=True)
class PassOutput:
    mapped_to: int  # 0 with nothing written: the map could not take one batch
    map_capacity: int
    bytes_read: int
    cleaned: list[CleanedSegment]
    delete_horizon: int  # the earliest delete horizon of the tombstones kept (-1: none)


class _Pacer:
    """Pauses the pass briefly after every slice of work: left to run flat out, the cleaner (even in
    its own process, at a lower priority) delayed the broker's event loop on a busy 2-CPU machine."""

    def __init__(self) -> None:
        self._slice_started = time.monotonic()

    def __call__(self) -> None:
        if time.monotonic() - self._slice_started >= WORK_SLICE_S:
            time.sleep(PAUSE_S)
            self._slice_started = time.monotonic()


pace = _Pacer()


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
        [SegmentRef.of(s) for s in cleanable], first_dirty, end, sum(s.size for s in clean),
        sum(s.size for s in dirty), overdue,
    )  # fmt: skip


def iter_batches(segment: SegmentRef) -> Iterator[tuple[rb.BatchHeader, bytes]]:
    """(header, stored bytes) of every batch of a segment that takes no more appends, read a chunk at
    a time."""
    fd = os.open(segment.path, os.O_RDONLY)
    try:
        if os.fstat(fd).st_ino != segment.inode:
            raise StorageError(f"{segment.path} was replaced since the pass was planned")
        position = 0
        size = segment.size
        while size - position >= rb.HEADER_SIZE:
            chunk = os.pread(fd, min(READ_CHUNK, size - position), position)
            pos = 0
            while len(chunk) - pos >= rb.HEADER_SIZE:
                header = rb.parse_header(chunk, pos)
                if header.size < rb.HEADER_SIZE:
                    raise UndecodableError(f"{segment.path}: impossible batch length at {position + pos}")
                if pos + header.size > len(chunk):
                    if pos == 0:  # a batch larger than the chunk: read it alone
                        yield header, os.pread(fd, header.size, position)
                        pos = header.size
                    break
                yield header, chunk[pos : pos + header.size]
                pos += header.size
            if pos == 0:
                return
            position += pos
    finally:
        os.close(fd)


def clean_log(
    plog: PartitionLog,
    section: DirtySection,
    *,
    run: Callable[[PassPlan], PassOutput],
    buffer_bytes: int,
    crash_point: Callable[[str], None],
    now_ms: int,
) -> CleanResult | None:
    """One pass (the module docstring): ``run`` runs ``run_pass`` (in a worker process, or here); None
    when the map could not take even one batch. Cleaned files not swapped in are removed."""
    started = time.monotonic()
    config = plog.config
    plan = PassPlan(
        str(plog.directory), section, frozenset(plog.producer_last_batches()), now_ms,
        config.delete_retention_ms, config.segment_bytes, config.index_interval_bytes, buffer_bytes,
        f"{os.getpid()}-{time.monotonic_ns()}",
    )  # fmt: skip
    plog.allow_gaps()  # before any swap: recovery must accept the gaps a swapped-in segment has
    output = run(plan)
    if output.mapped_to <= section.first_dirty and section.dirty_bytes > 0:
        log.warning(
            "%s: log.cleaner.dedupe.buffer.size holds %d keys, too few for one batch at offset %d",
            plog.name, output.map_capacity, section.first_dirty,
        )  # fmt: skip
        return None
    crash_point("cleaned")
    by_base = {s.base_offset: s for s in section.segments}
    before = after = 0
    swapped = 0
    try:
        for cleaned in output.cleaned:
            if not plog.replace_segments(cleaned, crash_point):
                log.info("%s: segments changed while they were cleaned; the pass ends here", plog.name)
                break
            swapped += 1
            before += sum(by_base[base].size for base in cleaned.replaces)
            after += cleaned.size
        else:
            write_checkpoint(plog.directory, output.mapped_to)
        plog.delete_empty_prefix()  # the log start moves past what cleaning emptied
    finally:
        for unused in output.cleaned[swapped:]:
            (plog.directory / unused.file_name).unlink(missing_ok=True)
    return CleanResult(
        plog.name, section.first_dirty, output.mapped_to, output.bytes_read, before, after,
        sum(len(c.replaces) for c in output.cleaned[:swapped]), swapped, time.monotonic() - started,
        output.delete_horizon,
    )  # fmt: skip


def run_pass(plan: PassPlan) -> PassOutput:
    """Steps 2-4: map the dirty section, write the cleaned groups. Files only (a worker process's job)."""
    offset_map = OffsetMap(plan.buffer_bytes)
    section = plan.section
    mapped_to, bytes_read = _build_map(section, offset_map)
    if mapped_to <= section.first_dirty and section.dirty_bytes > 0:
        return PassOutput(0, offset_map.capacity, bytes_read, [], -1)
    state = _PassState(mapped_to, offset_map, plan.producers_last, plan.now_ms, plan.delete_retention_ms, [])
    to_clean = [s for s in section.segments if s.base_offset < mapped_to]
    written: list[CleanedSegment] = []
    try:
        for group in _groups(to_clean, plan.segment_bytes):
            written.append(_write_group(Path(plan.directory), group, state, plan))
            bytes_read += sum(s.size for s in group)
    except BaseException:
        for cleaned in written:
            (Path(plan.directory) / cleaned.file_name).unlink(missing_ok=True)
        raise
    return PassOutput(mapped_to, offset_map.capacity, bytes_read, written, min(state.horizons, default=-1))


def _build_map(section: DirtySection, offset_map: OffsetMap) -> tuple[int, int]:
    """Map the dirty section's keys to their latest offsets; returns (offset covered up to, bytes read)."""
    first_dirty = section.first_dirty
    bytes_read = 0
    for segment in section.segments:
        if segment.next_offset <= first_dirty:
            continue
        bytes_read += segment.size
        for header, data in iter_batches(segment):
            pace()
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


def _groups(segments: list[SegmentRef], max_bytes: int) -> list[list[SegmentRef]]:
    """Adjacent segments whose sizes fit in ``max_bytes`` together (Kafka's groupSegmentsBySize)."""
    groups: list[list[SegmentRef]] = []
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
    producers_last: frozenset[int]  # base offsets of the idempotent producers' latest batches
    now_ms: int
    delete_retention_ms: int
    horizons: list[int]  # the delete horizons of the batches that keep tombstones


def _write_group(
    directory: Path, group: list[SegmentRef], state: _PassState, plan: PassPlan
) -> CleanedSegment:
    base = group[0].base_offset
    index_interval = plan.index_interval_bytes
    name = files.cleaned_name(base, plan.tag)
    path = directory / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    entries: list[tuple[int, int, int]] = []
    position = 0
    since_entry = index_interval
    pending = bytearray()
    try:
        for segment in group:
            for header, data in iter_batches(segment):
                pace()
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
        file_name=name,
        base_offset=base,
        replaces=tuple(s.base_offset for s in group),
        replaced_versions=tuple((s.inode, s.truncations) for s in group),
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
