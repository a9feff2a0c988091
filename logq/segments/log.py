"""PartitionLog: one partition's append-only log of segments.

Thread safety: every public method is safe to call from any thread. ``_lock`` guards the segment list,
the offsets, the producer state and index writes, and is held only for memory work and short syscalls.
``_flush_lock`` serialises fsyncs and truncation; a flush holds it (not ``_lock``) while it fsyncs, so
appends continue during an fsync, and callers that queue behind a running flush usually find their data
already covered when they get the lock: that is the group commit. Helpers ending in ``_locked`` expect
``_lock`` to be held.

Offsets: log_start_offset <= high_watermark <= log_end_offset, and durable_offset <= log_end_offset.
The high watermark is set by the owner (the broker: the end of the replicated data); the durable offset
is the fsynced prefix.

Storage failures (``health.py``, shared by every log of the data directory): an append that finds no
space is cut back and refused with DiskFullError, leaving the log as it was; any failure whose effect
on the disk is unknown (a failed fsync, index write, truncation) takes the directory offline, after
which appends, flushes and truncations raise LogDirOfflineError, the durable offset never moves again,
and the high watermark stops at it (the tail past it may not survive).
"""

from __future__ import annotations

import bisect
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from logq import batch as rb
from logq import codec
from logq.clock import Clock
from logq.config import LogConfig
from logq.errors import (
    BatchTooLargeError,
    CorruptBatchError,
    LogClosedError,
    OffsetOutOfRangeError,
    StorageError,
)
from logq.segments import files
from logq.segments.health import StorageHealth, is_disk_full
from logq.segments.index import Checkpoint, PartitionIndex, SparseIndexer
from logq.segments.leader_epochs import LeaderEpochHistory
from logq.segments.max_timestamp import SegmentMaxima
from logq.segments.producer_state import ProducerStateTable
from logq.segments.segment import Segment

log = logging.getLogger(__name__)


class AppendInfo(NamedTuple):
    base_offset: int
    last_offset: int
    duplicate: bool = False  # a retried idempotent batch: these are the offsets of the original
    leader_epoch: int = -1  # the leader epoch the append was made in (-1: none)
    log_append_time: int = -1  # the broker's time stamped on the batch (LogAppendTime queues), else -1


class TimestampOffset(NamedTuple):
    offset: int
    timestamp: int


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    """What the retention policy needs to know about a segment."""

    base_offset: int
    end_offset: int  # the offset after its last batch
    size: int
    last_append_ms: int  # broker time of its newest batch; -1 if unknown
    active: bool


@dataclass(frozen=True, slots=True)
class CleanedSegment:
    """A segment the log cleaner wrote (``file_name`` in the partition directory, fsynced) to replace
    the segments ``replaces`` (base offsets, oldest first, the first one being ``base_offset``)."""

    file_name: str
    base_offset: int
    replaces: tuple[int, ...]
    # (inode, truncations) of each segment read: one truncated or written again since is not replaced
    replaced_versions: tuple[tuple[int, int], ...]
    size: int
    offset_entries: list[tuple[int, int, int]]  # (offset, segment base, position), as SparseIndexer
    first_append_ms: int
    last_append_ms: int


def _same_files(segments: list[Segment], versions: tuple[tuple[int, int], ...]) -> bool:
    try:
        return tuple((os.stat(s.path).st_ino, s.truncations) for s in segments) == versions
    except OSError:
        return False


class _CheckpointChanges(NamedTuple):
    """What a checkpoint writes along with it: the changes made since the previous one, taken from memory
    at once (under ``_lock``) and put back if the write does not happen."""

    dropped_segments: tuple[int, ...]
    producers: dict[int, bytes]
    dropped_producers: tuple[int, ...]
    leader_epochs: list[tuple[int, int]] | None  # the whole history, if it changed


class PartitionLog:
    """Built by ``loader.load_partition``; not constructed directly."""

    def __init__(
        self,
        *,
        name: str,
        directory: Path,
        index: PartitionIndex,
        indexer: SparseIndexer,
        segments: list[Segment],
        producers: ProducerStateTable,
        next_offset: int,
        checkpoint: Checkpoint,
        config: LogConfig,
        clock: Clock,
        leader_epochs: LeaderEpochHistory | None = None,
        log_start_offset: int = 0,
    ) -> None:
        self.name = name
        self.directory = directory
        self.config = config
        self._clock = clock
        self._index = index
        self._indexer = indexer
        self._segments = segments
        self._bases = [s.base_offset for s in segments]
        self._producers = producers
        self._epochs = leader_epochs if leader_epochs is not None else LeaderEpochHistory()
        self._leader_epoch = -1  # stamped on appends that name none (become_leader sets it)
        self._next_offset = next_offset
        # DeleteRecords' start (files.LOG_START_FILE); below the first segment's base it says nothing.
        self._log_start = log_start_offset
        self._durable_log_start = log_start_offset  # what the file holds: flush() catches up with the above
        self._durable_offset = checkpoint.next_offset
        self._high_watermark = next_offset
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._trash: list[tuple[Segment, int]] = []  # (renamed segment, unlink after this time_ms)
        self._dropped_segment_meta: list[int] = []
        self._maxima = SegmentMaxima()  # ListOffsets MAX_TIMESTAMP when the time index cannot answer
        self._closed = False
        # Held by the retention job and the log cleaner while they work on this log, so that the cleaner
        # never rewrites segments retention is deleting at the same moment.
        self.maintenance = threading.Lock()
        # Offset gaps (the log cleaner's, or replicated from a leader's) are allowed by recovery only
        # where this file exists: elsewhere a gap means a stray or damaged file.
        self._gaps_marker = directory / files.CLEANER_CHECKPOINT
        # The LogManager gives every log of a data directory the same one.
        self.health = StorageHealth(directory.parent)
        indexer.writes_wait = self._index_writes_wait

    # --- offsets ----------------------------------------------------------------------------------

    @property
    def log_start_offset(self) -> int:
        """The first offset a reader may ask for: the first segment's base offset, or further on where
        ``advance_log_start`` (DeleteRecords) put it inside that segment."""
        return max(self._log_start, self._segments[0].base_offset)

    @property
    def durable_log_start(self) -> int:
        """The log start as the partition directory records it: what survives a crash, so what a
        follower reports to its leader (a start adopted from the leader is written by the next flush)."""
        return max(self._durable_log_start, self._segments[0].base_offset)

    @property
    def log_end_offset(self) -> int:
        return self._next_offset

    @property
    def durable_offset(self) -> int:
        """Every batch below this offset has been fsynced."""
        return self._durable_offset

    @property
    def high_watermark(self) -> int:
        if self.health.offline:  # past the last fsync the disk may hold nothing: serve none of it
            return min(self._high_watermark, self._next_offset, self._durable_offset)
        return min(self._high_watermark, self._next_offset)

    @high_watermark.setter
    def high_watermark(self, offset: int) -> None:
        self._high_watermark = max(self.log_start_offset, min(offset, self._next_offset))

    @property
    def size_bytes(self) -> int:
        return sum(s.size for s in self._segments)

    @property
    def closed(self) -> bool:
        return self._closed

    def segment_infos(self) -> list[SegmentInfo]:
        with self._lock:
            last = len(self._segments) - 1
            return [
                SegmentInfo(s.base_offset, s.next_offset, s.size, s.last_append_ms, i == last)
                for i, s in enumerate(self._segments)
            ]

    def inactive_segments(self) -> list[Segment]:
        """The segments that take no more appends, oldest first: what the log cleaner may read (their bytes
        never change; a deleted one keeps its descriptor until file.delete.delay.ms has passed)."""
        with self._lock:
            self._check_open_locked()
            return self._segments[:-1]

    def allow_gaps(self) -> None:
        """Record (durably, once) that this log may have offset gaps: before the cleaner swaps a cleaned
        segment in, and on a follower before it stores a batch past its log end."""
        if not self._gaps_marker.exists():
            files.atomic_write(self._gaps_marker, b"0")

    def producer_last_batches(self) -> set[int]:
        """The base offset of each idempotent producer's latest batch: the batch the log cleaner keeps
        (emptied if need be) so that the producer's state survives a reload."""
        with self._lock:
            return {e.batches[-1].base_offset for e in self._producers.entries.values() if e.batches}

    # --- append -----------------------------------------------------------------------------------

    def append(self, data: bytes | memoryview, *, leader_epoch: int | None = None) -> AppendInfo:
        """Validate one batch as a producer sent it, assign its offsets and write it.

        Only baseOffset (bytes 0-7) and partitionLeaderEpoch (12-15) are rewritten, both outside the CRC.
        ``leader_epoch`` (default: the epoch of ``become_leader``, -1 until then) is stamped into the
        batch; a leader epoch newer than the latest one recorded starts a new entry (epoch, base offset)
        of the leader-epoch history. -1 means "no epoch" (standalone) and records nothing.
        Raises BatchTooLargeError, CorruptBatchError, FencedLeaderEpochError (an epoch below the latest
        recorded one), a ProducerStateError for idempotent batches, DiskFullError (nothing written) or
        LogDirOfflineError. The batch is in the page cache when this returns; ``flush()`` makes it durable.
        """
        if len(data) > self.config.max_message_bytes:
            raise BatchTooLargeError(
                f"batch of {len(data)} bytes exceeds max.message.bytes {self.config.max_message_bytes}"
            )
        try:
            header = rb.validate(data)
        except rb.BatchError as exc:
            raise CorruptBatchError(str(exc)) from None
        view = memoryview(data)
        idempotent = header.producer_id >= 0
        with self._lock:
            if self._closed:
                raise LogClosedError(f"{self.name}: the log is closed")
            if self.health.offline:
                raise self.health.offline_error()
            if leader_epoch is None:
                leader_epoch = self._leader_epoch
            if leader_epoch != -1:
                self._epochs.check(leader_epoch)
            if idempotent:
                original = self._producers.check(header)
                if original is not None:
                    return AppendInfo(original.base_offset, original.last_offset, True, leader_epoch)
            now = self._clock.time_ms()
            segment = self._maybe_roll_locked(len(data), now)
            base = self._next_offset
            try:
                position = segment.append(
                    rb.patch_prefix(header, base, leader_epoch), view[16:], self.config.preallocate_bytes
                )
            except (OSError, StorageError) as exc:
                raise self._write_failed(f"append to {segment.path}", exc) from exc
            if leader_epoch != -1:
                self._epochs.assign(leader_epoch, base)
            if idempotent:
                self._producers.update(header, base)
            self._next_offset = segment.next_offset = base + header.last_offset_delta + 1
            if segment.first_append_ms < 0:
                segment.first_append_ms = now
            segment.last_append_ms = now
            self._index_locked(segment.base_offset, position, base, len(data), header.max_timestamp)
            if self.health.full:
                self.health.appended()
            return AppendInfo(base, self._next_offset - 1, leader_epoch=leader_epoch)

    def _index_writes_wait(self) -> bool:
        # offline: RocksDB may refuse every write already, and retention must still get to its unlinks
        return self.health.offline or self.health.index_writes_wait()

    def _write_failed(self, what: str, exc: OSError | StorageError) -> StorageError:
        """The error for a failed write: for want of space the write was cut back and the log is as it
        was (DiskFullError); anything else takes the data directory offline."""
        if is_disk_full(exc):
            return self.health.no_space(what, exc)
        return self.health.fail("write", what, exc)

    def _index_locked(self, segment_base: int, position: int, base: int, size: int, max_ts: int) -> None:
        """Index a batch already written and counted in the log's offsets. The index is derived data and
        the batch is whole: a failed index write does not undo the append (it is kept in memory, and
        recovery re-indexes from the segments), but RocksDB takes no more writes, so the directory goes
        offline and the next append or flush says so."""
        try:
            self._indexer.add(segment_base, position, base, size, max_ts)
        except StorageError as exc:
            self.health.fail("index", "index write", exc)

    def append_replicated(self, data: bytes | memoryview) -> int:
        """A follower's append of whole batches fetched from its leader, stored with the offsets and leader
        epochs the leader gave them (the bytes are not changed). Each batch is validated (CRC-32C
        included) and must start at or after the log end (after it: the leader's cleaner left a gap); a
        trailing partial batch is ignored. Updates the
        leader-epoch history and the producer state from the batch headers. Returns the new log end.
        Raises CorruptBatchError (nothing after the bad batch is written)."""
        view = memoryview(data)
        position = 0
        with self._lock:
            self._check_open_locked()
            if self.health.offline:
                raise self.health.offline_error()
            while len(view) - position >= rb.HEADER_SIZE:
                base, size = rb.read_prefix(view, position)
                if len(view) - position < size:
                    break
                try:
                    header = rb.validate(view[position : position + size], stored=True)
                except rb.BatchError as exc:
                    raise CorruptBatchError(f"{self.name}: replicated batch at {base}: {exc}") from None
                if base < self._next_offset:  # above it: a gap the leader's log cleaner left
                    raise CorruptBatchError(
                        f"{self.name}: replicated batch starts at {base}, the log ends at {self._next_offset}"
                    )
                if base > self._next_offset:
                    self.allow_gaps()
                now = self._clock.time_ms()
                segment = self._maybe_roll_locked(size, now)
                epoch = header.partition_leader_epoch
                try:
                    stored_at = segment.append(
                        bytes(view[position : position + 16]),
                        view[position + 16 : position + size],
                        self.config.preallocate_bytes,
                    )
                except (OSError, StorageError) as exc:
                    raise self._write_failed(f"append to {segment.path}", exc) from exc
                if epoch >= 0:
                    self._epochs.replay(epoch, base)
                self._producers.update(header, base)
                self._next_offset = segment.next_offset = base + header.last_offset_delta + 1
                if segment.first_append_ms < 0:
                    segment.first_append_ms = now
                segment.last_append_ms = now
                self._index_locked(segment.base_offset, stored_at, base, size, header.max_timestamp)
                if self.health.full:
                    self.health.appended()
                position += size
            return self._next_offset

    def become_leader(self, leader_epoch: int) -> None:
        """Start leading in ``leader_epoch``: record that it starts at the log end (Kafka's
        assignEpochStartOffset, so a returning follower asking about an older epoch learns where it
        ended) and stamp it on the appends that follow. FencedLeaderEpochError if the log already
        has a newer epoch."""
        with self._lock:
            self._check_open_locked()
            self._epochs.check(leader_epoch)
            self._epochs.assign(leader_epoch, self._next_offset)
            self._leader_epoch = leader_epoch

    def _maybe_roll_locked(self, incoming: int, now: int) -> Segment:
        active = self._segments[-1]
        if active.size > 0 and (
            active.size + incoming > self.config.segment_bytes
            or (active.first_append_ms >= 0 and now - active.first_append_ms > self.config.segment_ms)
        ):
            return self._roll_locked()
        return active

    def _roll_locked(self) -> Segment:
        if self.health.offline:
            raise self.health.offline_error()
        self._segments[-1].release_reserved()
        try:
            segment = Segment(self.directory, self._next_offset, create=True)
        except OSError as exc:  # nothing was created: the active segment stays active
            raise self._write_failed(f"creating a segment in {self.directory}", exc) from exc
        segment.next_offset = self._next_offset
        try:
            files.fsync_dir(self.directory)  # the new name must survive a crash once its data is acked
        except OSError as exc:
            segment.close()
            raise self.health.fail("fsync", f"fsync of {self.directory}", exc) from exc
        self._segments.append(segment)
        self._bases.append(segment.base_offset)
        log.debug("%s: rolled segment %s", self.name, segment.path.name)
        return segment

    def roll(self) -> None:
        """Start a new active segment now (if the current one holds data)."""
        with self._lock:
            self._check_open_locked()
            if self._segments[-1].size > 0:
                self._roll_locked()

    def roll_if_aged(self) -> bool:
        """Roll an idle active segment older than segment.ms, so that retention can delete it."""
        with self._lock:
            self._check_open_locked()
            active = self._segments[-1]
            now = self._clock.time_ms()
            if (
                active.size > 0
                and active.first_append_ms >= 0
                and now - active.first_append_ms > self.config.segment_ms
            ):
                self._roll_locked()
                return True
            return False

    # --- read -------------------------------------------------------------------------------------

    def read(self, offset: int, max_bytes: int, *, upto: int | None = None) -> memoryview:
        """Whole stored batches, starting with the one that contains ``offset``, as a read-only view
        (no copy is made to trim the read to whole batches; ``bytes(view)`` copies).

        The first batch is returned whole even when it is larger than ``max_bytes`` (KIP-74); later
        batches only while they fit. Batches reaching ``upto`` (e.g. the high watermark) are left out.
        Reading at the log end returns an empty view; below the log start or past the end raises
        OffsetOutOfRangeError. A read never crosses a segment boundary.
        """
        with self._lock:
            self._check_open_locked()
            start, end = self.log_start_offset, self._next_offset
            if offset < start or offset > end:
                raise OffsetOutOfRangeError(
                    f"{self.name}: offset {offset} is outside the log [{start}, {end}]"
                )
            limit = end if upto is None else min(upto, end)
            if offset >= limit:
                return memoryview(b"")
            found = self._locate_locked(offset)
            if found is None:
                return memoryview(b"")
            segment, position = found
            return self._read_batches_locked(segment, position, max(max_bytes, 0), limit)

    def _segment_for_locked(self, offset: int) -> Segment:
        return self._segments[bisect.bisect_right(self._bases, offset) - 1]

    def _locate_locked(self, offset: int) -> tuple[Segment, int] | None:
        """The segment and position of the batch holding ``offset`` or, when the log cleaner removed it,
        of the next batch after it (possibly in a later segment); None when there is none."""
        i = bisect.bisect_right(self._bases, offset) - 1
        while i < len(self._segments):
            segment = self._segments[i]
            position = self._position_of_locked(segment, max(offset, segment.base_offset))
            # at the segment's end (a read hint there): the offset is in a gap after its last batch
            if position is not None and position < segment.size:
                return segment, position
            i += 1
        return None

    def _position_of_locked(self, segment: Segment, offset: int) -> int | None:
        """Position of the batch in ``segment`` that contains ``offset`` (which is inside the segment), or
        of the first batch after it; None if the segment has none (a gap the log cleaner left at its end)."""
        hinted = segment.hint(offset)
        if hinted is not None:
            return hinted
        position = 0
        entry = self._indexer.floor_offset(offset)
        if entry is not None and entry[1] == segment.base_offset:
            entry_offset, _, position = entry
            if not self._entry_is_valid(segment, entry_offset, position):
                log.warning(
                    "%s: index entry for offset %d is invalid; rebuilding the index", self.name, entry_offset
                )
                self._reindex_locked()
                return self._position_of_locked(segment, offset)
        for pos, header in segment.headers(position):
            if header.base_offset + header.last_offset_delta >= offset:
                return pos
        return None

    @staticmethod
    def _entry_is_valid(segment: Segment, entry_offset: int, position: int) -> bool:
        if position + rb.LOG_OVERHEAD > segment.size:
            return False
        base, _ = rb.read_prefix(segment.read(position, rb.LOG_OVERHEAD))
        return base == entry_offset

    def _read_batches_locked(self, segment: Segment, position: int, max_bytes: int, limit: int) -> memoryview:
        available = segment.size - position
        data = segment.read(position, min(available, max(max_bytes, rb.HEADER_SIZE)))
        end = 0
        next_offset = -1
        while len(data) - end >= rb.HEADER_SIZE:
            base, size = rb.read_prefix(data, end)
            last = base + rb.read_last_offset_delta(data, end)
            if last >= limit:
                break
            if end + size > len(data):
                if end == 0 and size <= available:  # KIP-74: the first batch goes out whole
                    data = segment.read(position, size)
                    end, next_offset = size, last + 1
                break
            end += size
            next_offset = last + 1
        if next_offset >= 0:
            segment.remember(next_offset, position + end)
        return memoryview(data)[:end]

    # --- lookups ----------------------------------------------------------------------------------

    def offset_for_timestamp(self, timestamp: int) -> TimestampOffset | None:
        """The first record whose timestamp is >= ``timestamp`` (its offset and timestamp), or None.

        The time index narrows the search to a batch (by its max timestamp); inside that batch the
        records are decoded to find the exact record (a batch that does not decompress answers with its
        base offset).
        """
        with self._lock:
            self._check_open_locked()
            start = self.log_start_offset
            entry = self._indexer.floor_time(timestamp - 1) if timestamp > 0 else None
            if entry is not None:
                start = max(start, entry[1])
            if start >= self._next_offset:
                return None
            found = self._locate_locked(start)
            if found is None:
                return None
            i, position = self._segments.index(found[0]), found[1]
            for segment in self._segments[i:]:
                for pos, header in segment.headers(position):
                    if header.max_timestamp >= timestamp:
                        return self._exact_offset_locked(
                            segment, pos, header, timestamp, self.log_start_offset
                        )
                position = 0
            return None

    @staticmethod
    def _exact_offset_locked(
        segment: Segment, position: int, header: rb.BatchHeader, timestamp: int, log_start: int
    ) -> TimestampOffset:
        """Records below ``log_start`` (DeleteRecords may put it inside a batch) are never the answer."""
        data = segment.read(position + rb.HEADER_SIZE, header.size - rb.HEADER_SIZE)
        try:
            records = rb.decode_records(codec.decompress(header.codec, data), header)
        except (codec.UnsupportedCodecError, rb.BatchError, OSError, ValueError):
            records = []
        for record in records:
            if record.timestamp >= timestamp and record.offset >= log_start:
                return TimestampOffset(record.offset, record.timestamp)
        return TimestampOffset(max(header.base_offset, log_start), header.max_timestamp)

    def offset_for_max_timestamp(self, upto: int | None = None) -> TimestampOffset | None:
        """ListOffsets MAX_TIMESTAMP (KIP-734): the first record with the largest timestamp among the
        batches below ``upto`` (default: the log end), or None when there are none or none has a
        timestamp. The record itself, not its batch's last offset (KAFKA-16310).

        The time index names the batch (``SparseIndexer.last_time_below``) unless retention deleted
        it; then each segment's remembered maximum does (``max_timestamp.py``). Only that batch is
        decoded.
        """
        while True:
            with self._lock:
                self._check_open_locked()
                start = self.log_start_offset
                limit = self._next_offset if upto is None else min(upto, self._next_offset)
                if start < limit < self._next_offset:  # only whole batches count: down to a batch start
                    segment = self._segment_for_locked(limit)
                    at = self._position_of_locked(segment, limit)
                    if at is not None:  # None: limit is in a gap the cleaner left, no batch to cut
                        limit, _ = rb.read_prefix(segment.read(at, rb.LOG_OVERHEAD))
                if start >= limit:
                    return None
                entry = self._indexer.last_time_below(limit)
                named = None
                if entry is not None and entry[1] >= start:
                    segment = self._segment_for_locked(entry[1])
                    named = self._position_of_locked(segment, entry[1])
                if named is not None:
                    position = named
                else:  # no entry, or its batch was cleaned away
                    first = self._segments[0]
                    start_position = (
                        self._position_of_locked(first, start) if start > first.base_offset else 0
                    )
                    if start_position is None:  # the first segment holds nothing from the start on
                        start_position = first.size
                    done, found = self._maxima.largest(self._segments, limit, start, start_position)
                    if not done:
                        continue  # a long walk: the lock is released between its steps
                    if found is None:
                        return None
                    segment, position = found
                header = rb.parse_header(segment.read(position, rb.HEADER_SIZE))
                if header.max_timestamp < 0:
                    return None
                return self._exact_offset_locked(segment, position, header, header.max_timestamp, start)

    # --- leader epochs (KIP-101) ------------------------------------------------------------------

    def epoch_history(self) -> list[tuple[int, int]]:
        """The leader-epoch history: (epoch, start offset) for every epoch with data in the log, oldest
        first (the first entry's start is clamped to the log start once retention deletes older data)."""
        with self._lock:
            return self._epochs.entries()

    @property
    def latest_leader_epoch(self) -> int:
        """The newest recorded leader epoch, or -1 when none has been recorded."""
        with self._lock:
            return self._epochs.latest_epoch

    def end_offset_for_epoch(self, epoch: int) -> tuple[int, int]:
        """OffsetForLeaderEpoch, with Kafka's answers (see ``LeaderEpochHistory.end_offset_for``)."""
        with self._lock:
            self._check_open_locked()
            return self._epochs.end_offset_for(epoch, self._next_offset)

    # --- flush (group commit) ---------------------------------------------------------------------

    def flush(self) -> int:
        """fsync everything appended so far; returns the offset below which all data is durable.

        Blocking: the broker runs it off the event loop. Concurrent callers share fsyncs (see the
        module docstring). The order is segment data (fdatasync), then one RocksDB write of the index
        entries and the checkpoint, so a checkpoint never points at data that is not on disk.
        On a nearly full disk the index write waits for a later flush (``health.py``); the data is
        durable all the same. A failed fsync or index write takes the data directory offline
        (LogDirOfflineError), and from then on every flush with data to cover raises it: the durable
        offset never moves again.
        """
        target = self._next_offset
        with self._flush_lock:
            if self._durable_offset >= target and self._durable_log_start >= self._log_start:
                return self._durable_offset
            health = self.health
            if health.offline:  # after a failed fsync a later one may "succeed" over dropped pages
                raise health.offline_error()
            index_waits = health.index_writes_wait()
            with self._lock:
                self._check_open_locked()
                try:
                    if not index_waits:
                        self._indexer.write_pending()
                except StorageError as exc:
                    raise health.fail("index", "index write", exc) from exc
                dirty = [s for s in self._segments if s.synced_size < s.size]
                active = self._segments[-1]
                checkpoint = Checkpoint(active.base_offset, active.size, self._next_offset)
                times = {s.base_offset: self._segment_times(s) for s in dirty or [active]}
                changes = self._take_checkpoint_changes_locked()
                log_start = self._log_start
            kind, what = "fsync", f"fsync of {self.name}"
            try:
                for segment in dirty:
                    what = f"fsync of {segment.path}"
                    segment.flush()
                if log_start > self._durable_log_start:  # adopted from the leader: the data below is synced
                    kind, what = "write", f"writing the log start of {self.name}"
                    files.write_log_start(self.directory, log_start)
                    self._durable_log_start = log_start
                kind, what = "index", "index write"
                if not index_waits:
                    self._write_checkpoint(checkpoint, changes, segment_times=times)
            except (OSError, StorageError) as exc:
                with self._lock:
                    self._restore_checkpoint_changes_locked(changes)
                raise health.fail(kind, what, exc) from exc
            if index_waits:  # the checkpoint and what goes with it: at the next flush with space
                with self._lock:
                    self._restore_checkpoint_changes_locked(changes)
            self._durable_offset = checkpoint.next_offset
            return self._durable_offset

    # --- checkpoints ------------------------------------------------------------------------------

    def _take_checkpoint_changes_locked(self) -> _CheckpointChanges:
        """The changes the next checkpoint must carry (forgotten here: the write owns them now)."""
        producers, gone = self._producers.take_changes()
        dropped = tuple(self._dropped_segment_meta)
        self._dropped_segment_meta.clear()
        return _CheckpointChanges(dropped, producers, gone, self._epochs.take_changes())

    def _restore_checkpoint_changes_locked(self, changes: _CheckpointChanges) -> None:
        """Put back what a checkpoint took, when its index write did not happen."""
        self._producers.restore_changes(changes.producers, changes.dropped_producers)
        self._epochs.restore_changes(changes.leader_epochs)
        self._dropped_segment_meta.extend(changes.dropped_segments)

    def _write_checkpoint(
        self,
        checkpoint: Checkpoint,
        changes: _CheckpointChanges,
        *,
        segment_times: dict[int, tuple[int, int]] | None = None,
        sync: bool = False,
    ) -> None:
        """One RocksDB write of the checkpoint and the changes that go with it (``PartitionIndex.commit``).
        The caller has fsynced the segment data it covers."""
        self._index.commit(
            checkpoint,
            segment_times=segment_times,
            dropped_segments=changes.dropped_segments,
            producers=changes.producers,
            dropped_producers=changes.dropped_producers,
            leader_epochs=changes.leader_epochs,
            sync=sync,
        )

    @staticmethod
    def _segment_times(segment: Segment) -> tuple[int, int]:
        return segment.first_append_ms, segment.last_append_ms

    # --- truncation and deletion ------------------------------------------------------------------

    def truncate_to(self, offset: int) -> int:
        """Remove every batch that contains ``offset`` or lies after it; returns the new log end.

        Batches are whole units, so the new end is the base offset of the batch that contained
        ``offset`` (possibly below ``offset``). Truncating below the log start empties the log down to
        its first segment. Durable before it returns.
        """
        with self._flush_lock, self._lock:
            self._check_open_locked()
            if self.health.offline:
                raise self.health.offline_error()
            if offset >= self._next_offset:
                return self._next_offset
            try:
                end = self._truncate_locked(max(offset, self.log_start_offset))
                if end < self._log_start:  # the batch holding the log start went: the start never moves back
                    self._restart_locked(self._log_start)
                    log.warning("%s: emptied and restarted at its log start %d", self.name, self._log_start)
                    end = self._next_offset
                return end
            except (OSError, StorageError) as exc:  # done in part: only recovery knows what is on disk
                raise self.health.fail("write", f"truncating {self.name} to offset {offset}", exc) from exc

    def _truncate_locked(self, offset: int) -> int:
        i = bisect.bisect_right(self._bases, offset) - 1
        segment = self._segments[i]
        found = self._position_of_locked(segment, offset)
        # None: ``offset`` is in a gap the log cleaner left at the segment's end, nothing to cut here
        position = segment.size if found is None else found
        new_end = offset
        if position < segment.size:  # the batch there may start before ``offset`` (or after: a gap)
            base, _ = rb.read_prefix(segment.read(position, rb.LOG_OVERHEAD))
            new_end = min(base, offset)
        for later in self._segments[i + 1 :]:
            self._trash_locked(later)
        del self._segments[i + 1 :]
        del self._bases[i + 1 :]
        dropped_bytes = segment.size - position
        segment.truncate(position)
        self._maxima.forget(segment)
        segment.next_offset = new_end
        self._next_offset = new_end
        self._durable_offset = min(self._durable_offset, new_end)
        self._high_watermark = min(self._high_watermark, new_end)
        self._indexer.drop_from(new_end)
        self._producers.truncate(new_end)
        self._epochs.truncate_from_end(new_end)
        segment.flush()
        files.fsync_dir(self.directory)
        changes = self._take_checkpoint_changes_locked()
        self._write_checkpoint(Checkpoint(segment.base_offset, position, new_end), changes, sync=True)
        self._durable_offset = new_end
        log.info(
            "%s: truncated to offset %d (%d bytes in the active segment dropped)",
            self.name,
            new_end,
            dropped_bytes,
        )
        return new_end

    def restart_at(self, offset: int) -> None:
        """Empty the log and continue it at ``offset`` (Kafka's truncateFullyAndStartAt): a follower
        whose leader has deleted (retention, compaction) everything this replica lacks. Nothing here
        is worth keeping then: the leader's log starts after all of it. Durable before it returns."""
        self.truncate_to(self.log_start_offset)  # one empty segment is left
        with self._flush_lock, self._lock:
            self._check_open_locked()
            if offset <= self._next_offset:
                return
            try:
                self._restart_locked(offset)
            except (OSError, StorageError) as exc:  # done in part: only recovery knows what is on disk
                raise self.health.fail("write", f"restarting {self.name} at offset {offset}", exc) from exc
        log.warning("%s: emptied and restarted at offset %d (the leader's log start)", self.name, offset)

    def _restart_locked(self, offset: int) -> None:
        emptied = self._segments[:]
        self._next_offset = offset
        self._roll_locked()
        del self._segments[:-1]
        del self._bases[:-1]
        for segment in emptied:
            self._trash_locked(segment)
        self._durable_offset = self._high_watermark = offset
        self._indexer.drop_below(offset)
        self._epochs.truncate_from_start(offset)
        self._write_checkpoint(
            Checkpoint(offset, 0, offset), self._take_checkpoint_changes_locked(), sync=True
        )

    def delete_oldest_segments(self, count: int, reason: str) -> int:
        """Delete the ``count`` oldest segments (never the active one, never data at or above the high
        watermark); advances the log start offset. Returns how many were deleted.

        The files are renamed to ``.deleted`` and unlinked after file.delete.delay.ms, so a reader in
        the middle of one keeps its bytes.
        """
        with self._lock:
            self._check_open_locked()
            try:
                deleted = self._delete_oldest_locked(count, reason)
            except (OSError, StorageError) as exc:  # a rename or the index: recovery knows what is on disk
                raise self.health.fail("write", f"deleting old segments of {self.name}", exc) from exc
        if deleted:
            try:
                files.fsync_dir(self.directory)
            except OSError as exc:
                raise self.health.fail("fsync", f"fsync of {self.directory}", exc) from exc
        return deleted

    def delete_empty_prefix(self) -> int:
        """Delete the empty segments at the start of the log (the log cleaner emptied them), so that the
        log start offset moves past records that are gone (Kafka's low watermark does the same). Never
        the active segment, never at or above the high watermark. Returns how many were deleted."""
        with self._lock:
            self._check_open_locked()
            empty = 0
            while empty + 1 < len(self._segments) and self._segments[empty].size == 0:
                empty += 1
            if not empty:
                return 0
            try:
                deleted = self._delete_oldest_locked(empty, "no record left after cleaning")
            except (OSError, StorageError) as exc:
                raise self.health.fail("write", f"deleting empty segments of {self.name}", exc) from exc
        if deleted:
            try:
                files.fsync_dir(self.directory)
            except OSError as exc:
                raise self.health.fail("fsync", f"fsync of {self.directory}", exc) from exc
        return deleted

    def _delete_oldest_locked(self, count: int, reason: str) -> int:
        deleted = 0
        hw = self.high_watermark
        while deleted < count and len(self._segments) > 1 and self._segments[1].base_offset <= hw:
            self._trash_locked(self._segments[0])  # renamed first: a failed rename changes nothing
            segment = self._segments.pop(0)
            self._bases.pop(0)
            deleted += 1
            log.info(
                "%s: deleted segment %s (offsets %d-%d, %d bytes): %s",
                self.name,
                files.segment_name(segment.base_offset),
                segment.base_offset,
                segment.next_offset - 1,
                segment.size,
                reason,
            )
        if deleted:
            # The first segment's entries stay: the log start may lie inside it (DeleteRecords).
            self._indexer.drop_below(self._segments[0].base_offset)
            self._epochs.truncate_from_start(self.log_start_offset)
        return deleted

    def advance_log_start(self, offset: int) -> int:
        """Move the log start forward to ``offset`` (DeleteRecords, or a follower taking its leader's
        start); returns the log start after it. It never moves back: an offset at or below the current
        start changes nothing. Past the high watermark: OffsetOutOfRangeError.

        Durable before it returns: the data below ``offset`` is fsynced first (so that recovery never
        ends the log before its start), then the offset is written to the partition directory
        (``files.LOG_START_FILE``, read back by the loader). Reads below it are refused at once; the
        segments wholly below it stay until retention deletes them. Blocking (fsyncs).
        """
        if offset > self._durable_offset:
            self.flush()
        with self._flush_lock:  # serialised with truncation, which must not cut below the new start
            with self._lock:
                self._check_open_locked()
                if self.health.offline:
                    raise self.health.offline_error()
                start = self.log_start_offset
                if offset <= start:
                    return start
                if offset > self.high_watermark:
                    raise OffsetOutOfRangeError(
                        f"{self.name}: log start {offset} is past the high watermark {self.high_watermark}"
                    )
            try:
                files.write_log_start(self.directory, offset)
            except OSError as exc:
                raise self._write_failed(f"writing the log start of {self.name}", exc) from exc
            self._durable_log_start = offset
            with self._lock:
                self._log_start = max(self._log_start, offset)
                self._epochs.truncate_from_start(self._log_start)
                return self.log_start_offset

    def adopt_log_start(self, offset: int) -> None:
        """A follower takes its leader's log start (capped at its high watermark): in force at once, in
        memory only, so that the event loop never waits for it; the next ``flush()`` writes it, and
        ``durable_log_start`` (what the follower reports) follows then. Never moves it back."""
        with self._lock:
            self._check_open_locked()
            offset = min(offset, self.high_watermark)
            if offset > self.log_start_offset:
                self._log_start = offset
                self._epochs.truncate_from_start(offset)

    def replace_segments(self, cleaned: CleanedSegment, crash_point: Callable[[str], None]) -> bool:
        """Swap a cleaned segment in for the segments it replaces (the log cleaner's copy-then-swap).

        Crash safe at every step: the cleaned file is renamed to ``<base>-<end>.swap`` (the decision),
        the old segments are renamed ``.deleted`` (readers in the middle keep their descriptors), the
        swap file becomes ``<base>.log``. A restart finds either no swap file (the old segments, the
        cleaned file is removed) or one, which it finishes (``loader.py``). ``_flush_lock`` keeps
        truncation away for the whole swap; ``_lock`` is held only for the renames and the index.
        Returns False, changing nothing, if the segments changed meanwhile. ``crash_point(step)`` is
        called after each step (tests kill the process there)."""
        with self._flush_lock:
            with self._lock:
                self._check_open_locked()
                olds = [s for s in self._segments[:-1] if s.base_offset in cleaned.replaces]
                if tuple(s.base_offset for s in olds) != cleaned.replaces or not _same_files(
                    olds, cleaned.replaced_versions
                ):
                    return False
                first = self._segments.index(olds[0])
                end = self._segments[first + len(olds)].base_offset
            cleaned_path = self.directory / cleaned.file_name
            swap_path = self.directory / files.swap_name(cleaned.base_offset, end)
            try:
                os.replace(cleaned_path, swap_path)
                files.fsync_dir(self.directory)
                crash_point("swap")
                with self._lock:
                    self._swap_in_locked(cleaned, olds, first, end, swap_path, crash_point)
                files.fsync_dir(self.directory)
            except (OSError, StorageError) as exc:  # done in part: only recovery knows what is on disk
                raise self.health.fail("write", f"swapping cleaned segments into {self.name}", exc) from exc
            crash_point("done")
            return True

    def _swap_in_locked(  # noqa: PLR0917 (one caller, the steps of one swap)
        self,
        cleaned: CleanedSegment,
        olds: list[Segment],
        first: int,
        end: int,
        swap_path: Path,
        crash_point: Callable[[str], None],
    ) -> None:
        delete_at = self._clock.time_ms() + self.config.file_delete_delay_ms
        for old in olds:
            old.mark_deleted()
            self._trash.append((old, delete_at))
        crash_point("old-deleted")
        os.replace(swap_path, self.directory / files.segment_name(cleaned.base_offset))
        crash_point("renamed")
        segment = Segment(self.directory, cleaned.base_offset, size=cleaned.size)
        segment.next_offset = end
        segment.first_append_ms = cleaned.first_append_ms
        segment.last_append_ms = cleaned.last_append_ms
        self._segments[first : first + len(olds)] = [segment]
        self._bases[first : first + len(olds)] = [segment.base_offset]
        # the first base is the new segment's: its metadata is rewritten, not dropped
        self._dropped_segment_meta.extend(o.base_offset for o in olds[1:])
        try:
            self._indexer.replace_range(cleaned.base_offset, end, cleaned.offset_entries)
            self._index.put_segment_times(
                cleaned.base_offset, (cleaned.first_append_ms, cleaned.last_append_ms)
            )
        except StorageError as exc:
            self.health.fail("index", "index write", exc)

    def _trash_locked(self, segment: Segment) -> None:
        segment.mark_deleted()
        self._dropped_segment_meta.append(segment.base_offset)
        self._trash.append((segment, self._clock.time_ms() + self.config.file_delete_delay_ms))

    def purge_deleted(self, *, force: bool = False) -> int:
        """Unlink deleted segment files whose delay has passed (all of them with ``force``)."""
        now = self._clock.time_ms()
        with self._lock:
            due = [s for s, at in self._trash if force or at <= now]
            self._trash = [(s, at) for s, at in self._trash if not (force or at <= now)]
        for segment in due:
            segment.close()
            segment.path.unlink(missing_ok=True)
        return len(due)

    # --- lifecycle --------------------------------------------------------------------------------

    def close(self) -> None:
        """Flush, write the final checkpoint and close the files. Idempotent. LogDirOfflineError when the
        data directory is offline (or goes offline now): then only ``abandon()`` is left."""
        if self._closed:
            return
        if self.health.offline:
            raise self.health.offline_error()
        self.flush()
        with self._flush_lock, self._lock:
            # On a nearly full disk there is no final checkpoint: the next start scans the tail instead.
            if not self.health.index_writes_wait():
                self._write_final_checkpoint_locked()
            self._closed = True
        self.purge_deleted(force=True)
        for segment in self._segments:
            segment.close()

    def _write_final_checkpoint_locked(self) -> None:
        active = self._segments[-1]
        changes = self._take_checkpoint_changes_locked()
        try:
            self._indexer.write_pending()
            self._write_checkpoint(
                Checkpoint(active.base_offset, active.size, self._next_offset),
                changes,
                segment_times={s.base_offset: self._segment_times(s) for s in self._segments},
            )
        except StorageError as exc:
            raise self.health.fail("index", "index write", exc) from exc

    def abandon(self) -> None:
        """Close the files without flushing or checkpointing: what a crash leaves (for tests and
        for a partition that is being deleted)."""
        with self._lock:
            self._closed = True
        self.purge_deleted(force=True)
        for segment in self._segments:
            segment.close()

    def _check_open_locked(self) -> None:
        if self._closed:
            raise LogClosedError(f"{self.name}: the log is closed")

    # --- index repair -----------------------------------------------------------------------------

    def _reindex_locked(self) -> None:
        """Rebuild the offset and time index and the leader-epoch history from the batch headers of every
        segment (the history is written with the next checkpoint)."""
        self._index.delete_offsets_from(0)
        self._index.delete_times_from_offset(0)
        self._indexer = SparseIndexer(self._index, self.config.index_interval_bytes)
        self._indexer.writes_wait = self._index_writes_wait
        epochs = LeaderEpochHistory()
        for segment in self._segments:
            for pos, header in segment.headers():
                self._indexer.add(
                    segment.base_offset, pos, header.base_offset, header.size, header.max_timestamp
                )
                epochs.replay(header.partition_leader_epoch, header.base_offset)
        self._indexer.write_pending()
        epochs.truncate_from_end(self._next_offset)
        epochs.mark_dirty()
        self._epochs = epochs
