"""The index: one RocksDB (rocksdict, raw bytes) per data directory, shared by every partition.

The only module that imports rocksdict. Everything here is derived data: it can always be rebuilt from
the segment files, and the loader does so when it is missing, corrupt, or disagrees with them.

Keys (``P`` = the partition's directory name, e.g. ``orders-3``; names never contain ``/``):

    F                        format marker (b"logq-index-1")
    c P                      checkpoint: recovery point (segment base, position, next offset)
    o P / be64(offset)       offset index: base offset of a batch -> be64(segment base) be64(position)
    t P / be64(timestamp)    time index: running max timestamp -> be64(base offset of that batch)
    m P / be64(segment base) segment metadata: broker append times (ms) of its first and newest batch
    r P / be64(producer id)  idempotent-producer state as of the checkpoint
    e P / be64(leader epoch) leader-epoch history (KIP-101): be64(start offset), as of the checkpoint

Offset entries are sparse (one per ``index.interval.bytes``); time entries mark each rise of the running
max timestamp. Lookups return the greatest entry at or below the target and the reader scans forward
through batch headers from there.

Range deletes are used only for ranges of many keys: until a compaction drops it, every range
tombstone is re-read by every iterator, and with 10,000 of them (one per partition) a single seek
took ~2 ms instead of ~2 us. A database that holds many anyway (an older version's, or one left by
deleting large queues) is compacted when it is opened.

Thread safety: RocksDB is thread-safe; each PartitionIndex is written only by its log, under its locks.
A failed write raises StorageError (rocksdict's own errors are plain Exceptions); RocksDB then refuses
every later write until it is reopened, so a failed index write takes the data directory offline
(``health.py``).
"""

from __future__ import annotations

import bisect
import contextlib
import logging
import re
import shutil
import struct
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from rocksdict import BottommostLevelCompaction, CompactOptions, Options, Rdict, WriteBatch, WriteOptions

from logq.errors import StorageError

log = logging.getLogger(__name__)

FORMAT_KEY = b"F"
FORMAT_VALUE = b"logq-index-1"
_U64 = struct.Struct(">Q")
_POSITION = struct.Struct(">qq")
_CHECKPOINT = struct.Struct(">Bqqq")
_TIMES = struct.Struct(">qq")
_CHECKPOINT_VERSION = 1
# A range holding at most this many keys is cleared with point deletes (see the module docstring).
POINT_DELETE_LIMIT = 64
# Compact at open when the tables hold more range tombstones than this.
COMPACT_ABOVE_RANGE_DELETES = 1000
_RANGE_DELETES = re.compile(r"# range deletions=(\d+)")


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Everything before (segment_base, position) is fsynced and indexed; next_offset is the offset there."""

    segment_base: int
    position: int
    next_offset: int


@contextlib.contextmanager
def _writing(path: Path) -> Iterator[None]:
    """Turn rocksdict's plain Exception for a failed write (e.g. "IO error: No space left on device")
    into a StorageError."""
    try:
        yield
    except Exception as exc:
        raise StorageError(f"index {path}: {exc}") from exc


class IndexStore:
    """Opens the shared RocksDB; a database that cannot be opened is deleted and started afresh (every
    partition then has no checkpoint, so the loader rebuilds its index from the segments)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rebuilt = False
        self._sync = WriteOptions()
        self._sync.sync = True
        self.db = self._open()

    def _open(self) -> Rdict:
        options = Options(raw_mode=True)
        options.create_if_missing(True)
        options.set_keep_log_file_num(2)
        try:
            db = Rdict(str(self.path), options)
        except Exception as exc:  # rocksdict raises plain Exception for corruption
            log.warning("index at %s cannot be opened (%s); rebuilding it from the segments", self.path, exc)
            shutil.rmtree(self.path, ignore_errors=True)
            self.rebuilt = True
            db = Rdict(str(self.path), options)
        if db.get(FORMAT_KEY) != FORMAT_VALUE:
            probe = db.iter()
            probe.seek_to_first()
            if probe.valid():
                log.warning("index at %s has an unknown format; rebuilding it from the segments", self.path)
                db.close()
                shutil.rmtree(self.path, ignore_errors=True)
                db = Rdict(str(self.path), options)
            self.rebuilt = True
            wb = WriteBatch(raw_mode=True)
            wb.put(FORMAT_KEY, FORMAT_VALUE)
            db.write(wb, self._sync)
        self._drop_range_tombstones(db)
        return db

    def range_deletions(self) -> int:
        """Range tombstones in the database's tables (not in its memtable: ``db.flush()`` first for all)."""
        return _range_deletions(self.db)

    def _drop_range_tombstones(self, db: Rdict) -> None:
        count = _range_deletions(db)
        if count > COMPACT_ABOVE_RANGE_DELETES:
            log.info(
                "index at %s holds %d range deletions; compacting it (they slow every read)", self.path, count
            )
            options = CompactOptions()
            options.set_bottommost_level_compaction(BottommostLevelCompaction.force())
            db.compact_range(None, None, options)

    def partition(self, name: str) -> PartitionIndex:
        return PartitionIndex(self, name)

    def start_partitions(self, names: Sequence[str], segment_times: tuple[int, int]) -> None:
        """One synced write of what new, empty partitions start with (``PartitionIndex.put_start``)."""
        wb = WriteBatch(raw_mode=True)
        for name in names:
            self.partition(name).put_start(wb, segment_times)
        self.write(wb, sync=True)

    def write(self, batch: WriteBatch, *, sync: bool) -> None:
        with _writing(self.path):
            if sync:
                self.db.write(batch, self._sync)
            else:
                self.db.write(batch)

    def close(self, *, flush: bool = True) -> None:
        """Close the database; ``flush=False`` leaves the WAL as it is (what a crash leaves)."""
        with _writing(self.path):
            if flush:
                self.db.flush_wal(True)
            self.db.close()


def _range_deletions(db: Rdict) -> int:
    found = _RANGE_DELETES.search(db.property_value("rocksdb.aggregated-table-properties") or "")
    return int(found.group(1)) if found else 0


def _range_end(prefix: bytes) -> bytes:
    """The smallest key greater than every key starting with ``prefix`` (which ends in b'/')."""
    return prefix[:-1] + b"0"


class PartitionIndex:
    """One partition's slice of the shared index."""

    def __init__(self, store: IndexStore, name: str) -> None:
        raw = name.encode()
        self._store = store
        self._db = store.db
        self._checkpoint_key = b"c" + raw
        self._offsets = b"o" + raw + b"/"
        self._times = b"t" + raw + b"/"
        self._segments = b"m" + raw + b"/"
        self._producers = b"r" + raw + b"/"
        self._epochs = b"e" + raw + b"/"

    # --- offset index ---------------------------------------------------------------------------

    def put_offset(self, offset: int, segment_base: int, position: int) -> None:
        with _writing(self._store.path):
            self._db[self._offsets + _U64.pack(offset)] = _POSITION.pack(segment_base, position)

    def floor_offset(self, offset: int) -> tuple[int, int, int] | None:
        """(entry offset, segment base, position) of the greatest entry <= offset."""
        found = self._floor(self._offsets, _U64.pack(offset))
        if found is None:
            return None
        key, value = found
        segment_base, position = _POSITION.unpack(value)
        return _U64.unpack_from(key, len(self._offsets))[0], segment_base, position

    def last_offset_entry(self) -> tuple[int, int, int] | None:
        return self.floor_offset((1 << 64) - 1)

    def put_many(self, offsets: list[tuple[int, int, int]], times: list[tuple[int, int]]) -> None:
        wb = WriteBatch(raw_mode=True)
        for offset, segment_base, position in offsets:
            wb.put(self._offsets + _U64.pack(offset), _POSITION.pack(segment_base, position))
        for timestamp, offset in times:
            wb.put(self._times + _U64.pack(timestamp), _U64.pack(offset))
        self._store.write(wb, sync=False)

    def delete_offsets_from(self, offset: int) -> None:
        self._delete_now(self._offsets + _U64.pack(offset), _range_end(self._offsets))

    def replace_offsets(self, start: int, end: int, offsets: list[tuple[int, int, int]]) -> None:
        """Replace the entries for offsets in [start, end) with ``offsets`` (segments the log cleaner
        rewrote), in one write."""
        wb = WriteBatch(raw_mode=True)
        self._delete_keys(wb, self._offsets + _U64.pack(start), self._offsets + _U64.pack(end))
        for offset, segment_base, position in offsets:
            wb.put(self._offsets + _U64.pack(offset), _POSITION.pack(segment_base, position))
        self._store.write(wb, sync=False)

    def put_segment_times(self, segment_base: int, times: tuple[int, int]) -> None:
        with _writing(self._store.path):
            self._db[self._segments + _U64.pack(segment_base)] = _TIMES.pack(*times)

    def delete_offsets_below(self, offset: int) -> None:
        self._delete_now(self._offsets, self._offsets + _U64.pack(offset))

    # --- time index -----------------------------------------------------------------------------

    def put_time(self, timestamp: int, offset: int) -> None:
        with _writing(self._store.path):
            self._db[self._times + _U64.pack(timestamp)] = _U64.pack(offset)

    def floor_time(self, timestamp: int) -> tuple[int, int] | None:
        """(indexed timestamp, base offset) of the greatest entry whose timestamp <= ``timestamp``."""
        if timestamp < 0:
            return None
        found = self._floor(self._times, _U64.pack(timestamp))
        if found is None:
            return None
        key, value = found
        return _U64.unpack_from(key, len(self._times))[0], _U64.unpack(value)[0]

    def last_time_entry(self) -> tuple[int, int] | None:
        return self.floor_time((1 << 63) - 1)

    def last_time_below(self, offset: int) -> tuple[int, int] | None:
        """(timestamp, base offset) of the last time entry pointing below ``offset``: the running max
        timestamp of the batches there. Walks back over the entries at or above ``offset`` (those of
        batches past the high watermark: few)."""
        it = self._db.iter()
        it.seek(_range_end(self._times))
        if it.valid():
            it.prev()
        else:
            it.seek_to_last()
        while it.valid() and it.key().startswith(self._times):
            entry_offset: int = _U64.unpack(it.value())[0]
            if entry_offset < offset:
                return _U64.unpack_from(it.key(), len(self._times))[0], entry_offset
            it.prev()
        return None

    def delete_times_from_offset(self, offset: int) -> None:
        """Remove time entries pointing at ``offset`` or later (the index is monotonic in both)."""
        it = self._db.iter()
        it.seek(_range_end(self._times))
        if it.valid():
            it.prev()
        else:
            it.seek_to_last()
        doomed = []
        while it.valid() and it.key().startswith(self._times) and _U64.unpack(it.value())[0] >= offset:
            doomed.append(it.key())
            it.prev()
        del it
        with _writing(self._store.path):
            for key in doomed:
                del self._db[key]

    def delete_times_below_offset(self, offset: int) -> None:
        """Remove time entries pointing below ``offset``, except the last entry, the running max
        (``SparseIndexer.drop_below``)."""
        it = self._db.iter()
        it.seek(self._times)
        doomed = []
        while it.valid() and it.key().startswith(self._times) and _U64.unpack(it.value())[0] < offset:
            doomed.append(it.key())
            it.next()
        if not (it.valid() and it.key().startswith(self._times)):
            doomed = doomed[:-1]  # every entry is below ``offset``: the last one stays
        del it
        with _writing(self._store.path):
            for key in doomed:
                del self._db[key]

    # --- checkpoint, segment metadata, producer state -------------------------------------------

    def read_checkpoint(self) -> Checkpoint | None:
        raw = self._db.get(self._checkpoint_key)
        if raw is None or len(raw) != _CHECKPOINT.size or raw[0] != _CHECKPOINT_VERSION:
            return None
        _, segment_base, position, next_offset = _CHECKPOINT.unpack(raw)
        return Checkpoint(segment_base, position, next_offset)

    def segment_times(self) -> dict[int, tuple[int, int]]:
        """segment base -> (first, last) broker append time in ms."""
        out: dict[int, tuple[int, int]] = {}
        for key, value in self._scan(self._segments):
            if len(value) == _TIMES.size:
                out[_U64.unpack_from(key, len(self._segments))[0]] = _TIMES.unpack(value)
        return out

    def producer_entries(self) -> dict[int, bytes]:
        return {
            _U64.unpack_from(k, len(self._producers))[0]: bytes(v) for k, v in self._scan(self._producers)
        }

    def leader_epochs(self) -> list[tuple[int, int]]:
        """The leader-epoch history as of the checkpoint: (epoch, start offset), in epoch order."""
        return [
            (_U64.unpack_from(k, len(self._epochs))[0], _U64.unpack(v)[0])
            for k, v in self._scan(self._epochs)
            if len(v) == _U64.size
        ]

    def commit(
        self,
        checkpoint: Checkpoint,
        *,
        segment_times: Mapping[int, tuple[int, int]] | None = None,
        dropped_segments: tuple[int, ...] = (),
        producers: Mapping[int, bytes] | None = None,
        dropped_producers: tuple[int, ...] = (),
        leader_epochs: Sequence[tuple[int, int]] | None = None,
        sync: bool = False,
    ) -> None:
        """Write the checkpoint and the state that goes with it atomically (one RocksDB write batch).

        Callers fsync the segment data first, so a checkpoint never points at data that is not on disk.
        The write itself is not fsynced by default: losing it in a power failure only makes recovery
        start from an earlier checkpoint (and rocksdict holds the GIL through a synced write, which
        would stall the broker's event loop). Truncation passes ``sync`` because after it, bytes below
        an older checkpoint may differ from what that checkpoint described.
        ``leader_epochs``, when given, replaces the whole leader-epoch history (it is a handful of entries).
        """
        wb = WriteBatch(raw_mode=True)
        for base, (first_ms, last_ms) in (segment_times or {}).items():
            wb.put(self._segments + _U64.pack(base), _TIMES.pack(first_ms, last_ms))
        for base in dropped_segments:
            wb.delete(self._segments + _U64.pack(base))
        for pid, blob in (producers or {}).items():
            wb.put(self._producers + _U64.pack(pid), blob)
        for pid in dropped_producers:
            wb.delete(self._producers + _U64.pack(pid))
        if leader_epochs is not None:
            self._delete_keys(wb, self._epochs, _range_end(self._epochs))
            for epoch, start_offset in leader_epochs:
                wb.put(self._epochs + _U64.pack(epoch), _U64.pack(start_offset))
        wb.put(
            self._checkpoint_key,
            _CHECKPOINT.pack(
                _CHECKPOINT_VERSION, checkpoint.segment_base, checkpoint.position, checkpoint.next_offset
            ),
        )
        self._store.write(wb, sync=sync)

    def clear(self, *, keep_segment_times: bool = False) -> None:
        """Forget this partition's index (before a full rebuild, or when the partition is deleted)."""
        wb = WriteBatch(raw_mode=True)
        wb.delete(self._checkpoint_key)
        prefixes = [self._offsets, self._times, self._producers, self._epochs]
        if not keep_segment_times:
            prefixes.append(self._segments)
        for prefix in prefixes:
            self._delete_keys(wb, prefix, _range_end(prefix))
        self._store.write(wb, sync=True)

    def is_empty(self) -> bool:
        """Whether nothing at all is stored for this partition (a new partition's name may have been used
        by a deleted one whose index a crash left behind)."""
        if self._db.get(self._checkpoint_key) is not None:
            return False
        prefixes = (self._offsets, self._times, self._segments, self._producers, self._epochs)
        return not any(self._keys_in(prefix, _range_end(prefix), 1) for prefix in prefixes)

    def put_start(self, wb: WriteBatch, segment_times: tuple[int, int]) -> None:
        """Put into ``wb`` what an empty new partition starts with: a checkpoint at offset 0 of segment 0,
        and that segment's times."""
        wb.put(self._segments + _U64.pack(0), _TIMES.pack(*segment_times))
        wb.put(self._checkpoint_key, _CHECKPOINT.pack(_CHECKPOINT_VERSION, 0, 0, 0))

    # --- helpers --------------------------------------------------------------------------------

    def _keys_in(self, start: bytes, end: bytes, limit: int) -> list[bytes]:
        """Up to ``limit`` keys in [start, end)."""
        keys: list[bytes] = []
        it = self._db.iter()
        it.seek(start)
        while len(keys) < limit and it.valid():
            key = it.key()
            if key >= end:
                break
            keys.append(key)
            it.next()
        return keys

    def _delete_keys(self, wb: WriteBatch, start: bytes, end: bytes) -> None:
        """Delete [start, end) in ``wb``: key by key when few, one range tombstone when many."""
        keys = self._keys_in(start, end, POINT_DELETE_LIMIT + 1)
        if len(keys) > POINT_DELETE_LIMIT:
            wb.delete_range(start, end)
        else:
            for key in keys:
                wb.delete(key)

    def _delete_now(self, start: bytes, end: bytes) -> None:
        wb = WriteBatch(raw_mode=True)
        self._delete_keys(wb, start, end)
        if len(wb):
            self._store.write(wb, sync=False)

    def _floor(self, prefix: bytes, suffix: bytes) -> tuple[bytes, bytes] | None:
        it = self._db.iter()
        it.seek_for_prev(prefix + suffix)
        if it.valid():
            key = it.key()
            if key.startswith(prefix):
                return key, it.value()
        return None

    def _scan(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        it = self._db.iter()
        it.seek(prefix)
        while it.valid():
            key = it.key()
            if not key.startswith(prefix):
                return
            yield key, it.value()
            it.next()


class SparseIndexer:
    """Decides which batches get index entries, for appends and recovery alike (so a rebuilt index
    equals one written live), and buffers new entries so that the append path makes no RocksDB call.

    Offset entries are sparse: the first batch of every segment, then one every ``interval_bytes``.
    A time entry is written whenever the running max timestamp grows, so the last time entry always
    holds the running max: it survives restarts and truncation without any other state.

    New entries wait in memory until ``write_pending()`` (every flush, or once ``PENDING_LIMIT``
    accumulate); lookups consult both. Entries lost in a crash are recreated by recovery, which
    re-indexes everything after the checkpoint. While ``writes_wait()`` says so (the disk is nearly
    full: a failed RocksDB write would stop every later one) they keep waiting, and ``drop_below``
    leaves RocksDB's entries below the log start for the next drop (they are never looked up).
    """

    PENDING_LIMIT = 256

    def __init__(self, index: PartitionIndex, interval_bytes: int, *, empty: bool = False) -> None:
        """``empty``: the partition is new, so there is no last time entry to look up."""
        self.index = index
        self.interval_bytes = interval_bytes
        self.writes_wait: Callable[[], bool] = lambda: False  # the log sets its own
        self._since_offset_entry = interval_bytes
        self.max_timestamp = -1
        self._offsets: list[tuple[int, int, int]] = []  # pending (offset, segment base, position)
        self._times: list[tuple[int, int]] = []  # pending (timestamp, offset)
        if not empty:
            self.reset_after_truncation()

    def reset_after_truncation(self) -> None:
        last = self.index.last_time_entry()
        self.max_timestamp = -1 if last is None else last[0]
        self._since_offset_entry = self.interval_bytes

    def add(self, segment_base: int, position: int, base_offset: int, size: int, max_timestamp: int) -> None:
        if position == 0 or self._since_offset_entry >= self.interval_bytes:
            self._offsets.append((base_offset, segment_base, position))
            self._since_offset_entry = 0
        self._since_offset_entry += size
        if max_timestamp > self.max_timestamp:
            self.max_timestamp = max_timestamp
            self._times.append((max_timestamp, base_offset))
        if len(self._offsets) + len(self._times) >= self.PENDING_LIMIT and not self.writes_wait():
            self.write_pending()

    def write_pending(self) -> None:
        """Move buffered entries into RocksDB (one unsynced write batch)."""
        if self._offsets or self._times:
            self.index.put_many(self._offsets, self._times)
            self._offsets = []
            self._times = []

    def drop_from(self, offset: int) -> None:
        """Forget entries pointing at ``offset`` or later (truncation)."""
        self._offsets = [e for e in self._offsets if e[0] < offset]
        self._times = [e for e in self._times if e[1] < offset]
        self.index.delete_offsets_from(offset)
        self.index.delete_times_from_offset(offset)
        self.reset_after_truncation()
        if self._times:
            self.max_timestamp = self._times[-1][0]

    def drop_below(self, offset: int) -> None:
        """Forget entries pointing below ``offset`` (retention moved the log start), except the last time
        entry: it holds the running max timestamp, which must not go down while batches appended under
        it remain, unindexed (a lower max rebuilt from fewer entries would index later batches as rises
        over data with larger timestamps, and both timestamp lookups would skip that data)."""
        self._offsets = [e for e in self._offsets if e[0] >= offset]
        newest = self._times[-1:]
        self._times = [e for e in self._times if e[1] >= offset] or newest
        if not self.writes_wait():
            self.index.delete_offsets_below(offset)
            self.index.delete_times_below_offset(offset)

    def replace_range(self, start: int, end: int, offsets: list[tuple[int, int, int]]) -> None:
        """The entries for offsets in [start, end) become ``offsets`` (segments the log cleaner rewrote)."""
        self._offsets = [e for e in self._offsets if not start <= e[0] < end]
        self.index.replace_offsets(start, end, offsets)

    def floor_offset(self, offset: int) -> tuple[int, int, int] | None:
        """(entry offset, segment base, position) of the greatest entry <= offset."""
        i = bisect.bisect_right(self._offsets, (offset, 1 << 63, 0))
        if i:
            return self._offsets[i - 1]
        return self.index.floor_offset(offset)

    def last_time_below(self, offset: int) -> tuple[int, int] | None:
        """(timestamp, base offset) of the last time entry pointing below ``offset`` (the running max
        timestamp there; pending entries are the newest)."""
        for entry in reversed(self._times):
            if entry[1] < offset:
                return entry
        return self.index.last_time_below(offset)

    def floor_time(self, timestamp: int) -> tuple[int, int] | None:
        """(indexed timestamp, base offset) of the greatest entry whose timestamp <= ``timestamp``."""
        i = bisect.bisect_right(self._times, (timestamp, 1 << 63))
        if i:
            return self._times[i - 1]
        return self.index.floor_time(timestamp)
