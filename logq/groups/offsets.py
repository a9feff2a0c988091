"""The committed-offset store: consumer-group offsets as records of the internal queue ``__consumer_offsets``.

Placement: the internal queue has N partitions (default 50); group G lives in partition
``partition_for(G, N)`` (Kafka's rule: ``abs(java_string_hashcode(G)) % N``) and its coordinator is that
partition's leader. A broker that becomes coordinator of a partition calls ``OffsetStore.load`` to
replay it, and ``unload`` when it stops.

Records (encoding in ``logq.groups.offset_records``): every write is one uncompressed RecordBatch v2
built with ``logq.batch.build_batch``, so each OffsetCommit lands atomically. A record is

    key = (type 1, group, queue, partition)  value = (offset, leader_epoch, commit_ts_ms, metadata) | null
    key = (type 2, group)                    value = (empty_since_ms or -1, generation)            | null

and null is a tombstone. Replaying a partition from its log start, latest record per key wins, gives
the state.

Writes go through the broker's leader partition (``OffsetsLog.append``: ``Partition.append_as_leader``
with origin COORDINATOR, as Kafka's appendRecords), which moves the high watermark and wakes the
followers; the store never does. Durability: ``commit`` appends to the page cache only; the coordinator
then waits until the partition acknowledges it (``Partition.wait_acknowledged``, as for an acks=all
produce) before it ``settle``s the commit and answers the client.

Bounded size (compaction by snapshot): ``compact(p)`` rolls the log, re-appends the live state of the
partition (every live offset and group record, no tombstones) in batches of at most
``_SNAPSHOT_BATCH_BYTES``, fsyncs it, and once the high watermark has passed the snapshot (at once on a
cluster of one; once the ISR has it otherwise) deletes every segment before it. The snapshot is appended
batch by batch, yielding to the event loop between batches, so group requests go on meanwhile: each batch
re-reads the current value of its keys, so a commit made during the snapshot is never overwritten by an
older value. Replay from the new log start gives the same state; a crash at any step also does, since the
old segments followed by (part of) a snapshot of the current values replay to the current values.
``maybe_compact(p, max_bytes)`` compacts when the partition's log is larger than both ``max_bytes`` and
``COMPACTION_RATIO`` (2) times what the last snapshot of this store took, so the log stays below about
max(max_bytes, 2 x live state) and a live state larger than max_bytes does not make every call compact.
The log must not be subject to time or size retention: create it with ``offsets_log_config()``.

Retention (offsets.retention.ms, default 7 days): ``expire`` drops the offsets and the group record of
a group that has been empty for longer than the retention; the offsets of a group that has no group
record (only "simple" commits, e.g. assign() users) age one by one from their commit time, as in Kafka.

Acknowledgement: ``commit`` makes a commit visible to ``fetch`` only once the caller ``settle``s it as
acknowledged (fsynced and, in cluster mode, on the ISR); until then ``fetch`` answers the value before
it (``logq.groups.unacknowledged``). Memory otherwise follows the log: what replay and snapshots see.

Threads: the store is the event loop's. Writes append on the loop (a page-cache write, as a produce), so
the order of records in the log is the order in which memory changed; the slow parts run in a thread
without touching the store's state: a load replays the log into a new map that the loop then installs,
and a compaction's fsync. So neither stalls the group requests of the other partitions. Readers on other
threads (the metrics) must ask the loop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from logq import batch as rb
from logq import codec
from logq.clock import Clock
from logq.config import DAY_MS, LogConfig
from logq.error_codes import ErrorCode
from logq.errors import LogqError, StorageError
from logq.groups.offset_records import (
    MAX_NAME_BYTES,
    Change,
    GroupInfo,
    GroupKey,
    OffsetAndMetadata,
    OffsetKey,
    OffsetRecordError,
    decode_change,
    encode_change,
)
from logq.groups.unacknowledged import UnacknowledgedCommits
from logq.segments.log import AppendInfo, PartitionLog

__all__ = [
    "COMPACTION_RATIO",
    "DEFAULT_OFFSETS_PARTITIONS",
    "DEFAULT_OFFSETS_RETENTION_MS",
    "MAX_METADATA_BYTES",
    "OFFSETS_QUEUE",
    "CorruptOffsetsError",
    "GroupInfo",
    "InvalidGroupIdError",
    "NotCoordinatorError",
    "OffsetAndMetadata",
    "OffsetMetadataTooLargeError",
    "OffsetStore",
    "OffsetStoreError",
    "java_string_hashcode",
    "offsets_log_config",
    "partition_for",
]

log = logging.getLogger(__name__)

OFFSETS_QUEUE = "__consumer_offsets"
DEFAULT_OFFSETS_PARTITIONS = 50  # offsets.topic.num.partitions
DEFAULT_OFFSETS_RETENTION_MS = 7 * DAY_MS  # offsets.retention.ms
MAX_METADATA_BYTES = 4096  # offset.metadata.max.bytes
COMPACTION_RATIO = 2
_READ_BYTES = 1 << 20
_SNAPSHOT_BATCH_BYTES = 512 * 1024
_RECORD_OVERHEAD = 32  # bound on a record's length, attributes, deltas and header count varints

TopicPartition = tuple[str, int]


class OffsetStoreError(LogqError):
    """A request the store refuses; ``code`` is the answer for the client."""


class NotCoordinatorError(OffsetStoreError):
    code = ErrorCode.NOT_COORDINATOR


class OffsetMetadataTooLargeError(OffsetStoreError):
    code = ErrorCode.OFFSET_METADATA_TOO_LARGE

    def __init__(self, message: str, partition: TopicPartition) -> None:
        super().__init__(message)
        self.partition = partition  # the (queue, partition) whose metadata was refused


class InvalidGroupIdError(OffsetStoreError):
    code = ErrorCode.INVALID_GROUP_ID


class CorruptOffsetsError(StorageError):
    """A record of the offsets queue could not be decoded while loading a partition."""


# --- placement -------------------------------------------------------------------------------------


def java_string_hashcode(text: str) -> int:
    """Java's ``String.hashCode()``: s[0]*31^(n-1) + ... + s[n-1] over UTF-16 code units, as an int32."""
    units = text.encode("utf-16-be")
    h = 0
    for i in range(0, len(units), 2):
        h = (31 * h + (units[i] << 8 | units[i + 1])) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def partition_for(group: str, partitions: int) -> int:
    """The ``__consumer_offsets`` partition of a group: Kafka's ``Utils.abs(hashCode) % partitions``,
    where ``Utils.abs`` maps INT_MIN to 0."""
    h = java_string_hashcode(group)
    return (0 if h == -(1 << 31) else abs(h)) % partitions


def offsets_log_config(base: LogConfig) -> LogConfig:
    """The config of an offsets partition: no time or size retention (this store's snapshot compaction
    bounds it instead), and never the log cleaner's, even where the broker's default cleanup.policy
    is compact: one compaction per log (docs/architecture.md, "Compacted queues")."""
    return dataclasses.replace(base, retention_ms=-1, retention_bytes=-1, cleanup_policy="delete")


# --- in-memory state -------------------------------------------------------------------------------


@dataclass(slots=True)
class _Group:
    offsets: dict[TopicPartition, OffsetAndMetadata] = field(default_factory=dict)
    info: GroupInfo | None = None

    @property
    def live(self) -> bool:
        return bool(self.offsets) or self.info is not None


_Groups = dict[str, _Group]


def _apply(groups: _Groups, change: Change) -> None:
    key, value = change
    group = groups.get(key.group)
    if group is None:
        if value is None:
            return
        group = groups[key.group] = _Group()
    if isinstance(key, OffsetKey):
        if isinstance(value, OffsetAndMetadata):
            group.offsets[(key.queue, key.partition)] = value
        else:
            group.offsets.pop((key.queue, key.partition), None)
    else:
        group.info = value if isinstance(value, GroupInfo) else None
    if not group.live:
        del groups[key.group]


def _expired_changes(name: str, group: _Group, now_ms: int, retention_ms: int) -> list[Change]:
    info = group.info
    if info is None:  # simple commits only: each offset ages from its own commit
        return [
            Change(OffsetKey(name, queue, partition), None)
            for (queue, partition), value in sorted(group.offsets.items())
            if now_ms - value.commit_timestamp_ms > retention_ms
        ]
    if info.empty_since_ms is None or now_ms - info.empty_since_ms <= retention_ms:
        return []
    tombstones = [Change(OffsetKey(name, q, p), None) for q, p in sorted(group.offsets)]
    return [*tombstones, Change(GroupKey(name), None)]


# --- log I/O ---------------------------------------------------------------------------------------


def _to_record(change: Change) -> rb.Record:
    key, value = encode_change(change)
    return rb.Record(value=value, key=key)


def _replay(partition_log: PartitionLog, groups: _Groups) -> int:
    """Apply every record from the log start to the log end; returns how many were applied."""
    count = 0
    offset, end = partition_log.log_start_offset, partition_log.log_end_offset
    while offset < end:
        view = partition_log.read(offset, _READ_BYTES)
        if not view:
            break
        pos = 0
        while pos < len(view):
            header = rb.parse_header(view, pos)
            if not header.is_control:
                section = codec.decompress(header.codec, view[pos + rb.HEADER_SIZE : pos + header.size])
                for record in rb.decode_records(section, header):
                    _apply(groups, decode_change(record.key, record.value))
                    count += 1
            pos += header.size
            offset = header.last_offset + 1
    return count


# --- the store -------------------------------------------------------------------------------------


class OffsetsLog(Protocol):
    """What the store needs of the ``__consumer_offsets`` partitions this broker leads (the broker's
    ``Partition`` objects)."""

    def log(self, partition: int) -> PartitionLog:
        """The partition's log, for reading (replay), rolling, flushing and deleting old segments."""
        ...

    def append(self, partition: int, batch: bytes, *, acks: int) -> AppendInfo:
        """Append on the leader, now (``Partition.append_as_leader``, origin COORDINATOR); raises a
        LogqError (NOT_LEADER_OR_FOLLOWER when not led here, NOT_ENOUGH_REPLICAS for acks=all...)."""
        ...


class OffsetStore:
    """Committed offsets of the groups whose ``__consumer_offsets`` partitions this broker coordinates.

    Writers append one batch through ``offsets_log`` and then update memory; they do not flush. Every
    method is for the event loop (see the module docstring).
    """

    def __init__(self, offsets_log: OffsetsLog, partitions: int, clock: Clock) -> None:
        if partitions < 1:
            raise ValueError(f"the offsets queue needs at least one partition, not {partitions}")
        self._log = offsets_log
        self.partitions = partitions
        self._clock = clock
        self._state: dict[int, _Groups] = {}
        self._loading: dict[int, object] = {}  # partition -> the token of the load under way
        self._unacked: dict[int, UnacknowledgedCommits] = {}
        self._snapshot_bytes: dict[int, int] = {}  # log size right after this store's last compaction
        self._compacting: set[int] = set()
        # (start, end) of a snapshot whose replaced segments are not deleted yet.
        self._pending_snapshot: dict[int, tuple[int, int]] = {}

    # --- loading ----------------------------------------------------------------------------------

    def partition_of(self, group: str) -> int:
        return partition_for(group, self.partitions)

    def loaded(self, partition: int) -> bool:
        return partition in self._state

    async def load(self, partition: int) -> int:
        """Replay the partition's log from its start into memory (replacing what was loaded); returns the
        number of records replayed. The replay runs in a thread, into a map of its own, which is installed
        on the loop when it ends (unless ``unload`` came meanwhile); until then the partition is not loaded.
        Raises CorruptOffsetsError on undecodable records."""
        token = object()
        self._loading[partition] = token
        self._unload_state(partition)
        groups: _Groups = {}
        try:
            count = await asyncio.to_thread(_replay_partition, self._log.log(partition), groups, partition)
        finally:
            if self._loading.get(partition) is token:
                del self._loading[partition]
            else:
                token = None  # unloaded (or loaded again) meanwhile: this replay is stale
        if token is None:
            return count
        self._state[partition] = groups
        self._unacked[partition] = UnacknowledgedCommits()
        # Members live in memory only: a group recorded with members has none after a load, so its
        # offsets' retention counts from now (Kafka's loaded members would expire by session). It is
        # written, so that a later restart does not start the retention over again.
        now = self._clock.time_ms()
        orphans = [
            Change(GroupKey(name), dataclasses.replace(entry.info, empty_since_ms=now))
            for name, entry in sorted(groups.items())
            if entry.info is not None and entry.info.empty_since_ms is None
        ]
        if orphans:
            try:
                self._write(partition, orphans)
            except LogqError as exc:  # e.g. a full disk: retried at the next load
                log.warning("offsets partition %d: cannot record idle groups: %s", partition, exc)
        log.debug("offsets partition %d: loaded %d groups from %d records", partition, len(groups), count)
        return count

    def unload(self, partition: int) -> None:
        """Forget the partition (this broker stopped leading it); a load under way is abandoned."""
        self._loading.pop(partition, None)
        self._unload_state(partition)

    def _unload_state(self, partition: int) -> None:
        self._state.pop(partition, None)
        self._unacked.pop(partition, None)
        self._snapshot_bytes.pop(partition, None)
        self._pending_snapshot.pop(partition, None)

    # --- reads ------------------------------------------------------------------------------------

    def groups(self, partition: int) -> list[str]:
        """The groups of a loaded partition that have offsets or a group record."""
        if partition not in self._state:
            raise NotCoordinatorError(f"offsets partition {partition} is not loaded")
        return sorted(self._state[partition])

    def fetch(
        self, group: str, wanted: Iterable[TopicPartition] | None = None
    ) -> dict[TopicPartition, OffsetAndMetadata]:
        """The acknowledged committed offsets of ``wanted`` (None: all of them); never-committed ones are
        absent."""
        partition = self._coordinated(group)
        entry = self._state[partition].get(group)
        found = dict(entry.offsets) if entry is not None else {}
        for tp, visible in self._unacked[partition].hidden(group).items():
            if visible is None:
                found.pop(tp, None)
            else:
                found[tp] = visible
        if wanted is None:
            return found
        return {tp: found[tp] for tp in wanted if tp in found}

    def group_info(self, group: str) -> GroupInfo | None:
        entry = self._groups_of(group).get(group)
        return None if entry is None else entry.info

    # --- writes -----------------------------------------------------------------------------------

    def commit(self, group: str, offsets: Mapping[TopicPartition, OffsetAndMetadata]) -> AppendInfo | None:
        """Append the offsets of one OffsetCommit as one batch (acks=all: refused up front while the
        partition has fewer than min.insync.replicas in sync); ``fetch`` shows them once ``settle`` says
        they were acknowledged.

        A commit timestamp of -1 becomes the broker's time. Refuses the whole commit, storing nothing,
        with NotCoordinatorError or OffsetMetadataTooLargeError (``.partition`` names the culprit), or the
        append's LogqError. Returns None for an empty commit. The caller waits for the partition to
        acknowledge the append before it settles the commit and answers.
        """
        now = self._clock.time_ms()
        stamped: dict[TopicPartition, OffsetAndMetadata] = {}
        partition = self._coordinated(group)
        for (queue, queue_partition), value in offsets.items():
            if len(value.metadata.encode()) > MAX_METADATA_BYTES:
                raise OffsetMetadataTooLargeError(
                    f"metadata of {queue}-{queue_partition} is over {MAX_METADATA_BYTES} bytes",
                    (queue, queue_partition),
                )
            if value.commit_timestamp_ms < 0:
                stamped[(queue, queue_partition)] = dataclasses.replace(value, commit_timestamp_ms=now)
            else:
                stamped[(queue, queue_partition)] = value
        if not stamped:
            return None
        entry = self._state[partition].get(group)
        before = {tp: entry.offsets.get(tp) if entry is not None else None for tp in stamped}
        changes = [Change(OffsetKey(group, *tp), v) for tp, v in stamped.items()]
        info = self._write(partition, changes, acks=-1)
        for tp, value in stamped.items():
            self._unacked[partition].written(group, tp, info.last_offset, value, before[tp])
        return info

    def settle(
        self, group: str, tps: Iterable[TopicPartition], info: AppendInfo, *, acknowledged: bool
    ) -> None:
        """The commit that ``commit`` appended as ``info`` was acknowledged (or failed): show it to
        ``fetch``, or keep answering the value before it."""
        partition = partition_for(group, self.partitions)
        unacked = self._unacked.get(partition)
        if unacked is None:  # the partition moved away meanwhile
            return
        entry = self._state[partition].get(group)
        for tp in tps:
            newest = entry.offsets.get(tp) if entry is not None else None
            unacked.settled(group, tp, info.last_offset, acknowledged, newest)

    def delete_offsets(self, group: str, wanted: Iterable[TopicPartition]) -> AppendInfo | None:
        """Tombstone some committed offsets of a group (OffsetDelete); None if none of them existed."""
        partition = self._coordinated(group)
        entry = self._state[partition].get(group)
        present = [] if entry is None else sorted({tp for tp in wanted if tp in entry.offsets})
        changes = [Change(OffsetKey(group, q, p), None) for q, p in present]
        for tp in present:
            self._unacked[partition].forget(group, tp)
        return self._write(partition, changes) if changes else None

    def set_group_empty_since(
        self,
        group: str,
        empty_since_ms: int | None,
        *,
        generation: int | None = None,
        protocol_type: str | None = None,
    ) -> AppendInfo:
        """Write the group record: since when the group has had no members (None: it has members).
        ``generation`` and ``protocol_type`` None keep the stored ones (0 and "" for a new group)."""
        partition = self._coordinated(group)
        entry = self._state[partition].get(group)
        stored = entry.info if entry is not None and entry.info is not None else GroupInfo(None, 0)
        info = GroupInfo(
            empty_since_ms,
            stored.generation if generation is None else generation,
            stored.protocol_type if protocol_type is None else protocol_type,
        )
        return self._write(partition, [Change(GroupKey(group), info)])

    def delete_group(self, group: str) -> AppendInfo | None:
        """Tombstone every offset of the group and its group record; None if the group is unknown."""
        partition = self._coordinated(group)
        entry = self._state[partition].get(group)
        if entry is None:
            return None
        tombstones = [Change(OffsetKey(group, q, p), None) for q, p in sorted(entry.offsets)]
        self._unacked[partition].forget(group)
        return self._write(partition, [*tombstones, Change(GroupKey(group), None)])

    def expire(self, now_ms: int, retention_ms: int) -> list[tuple[str, str, int]]:
        """Apply offsets.retention.ms to every loaded group (one batch per group); returns the
        (group, queue, partition) whose offsets were dropped. A negative retention keeps everything."""
        expired: list[tuple[str, str, int]] = []
        if retention_ms < 0:
            return expired
        for partition, groups in sorted(self._state.items()):
            for name in sorted(groups):
                changes = _expired_changes(name, groups[name], now_ms, retention_ms)
                if changes:
                    self._write(partition, changes)
                    gone = [(k.group, k.queue, k.partition) for k, _ in changes if isinstance(k, OffsetKey)]
                    for _, queue, queue_partition in gone:
                        self._unacked[partition].forget(name, (queue, queue_partition))
                    expired += gone
        return expired

    # --- compaction -------------------------------------------------------------------------------

    async def compact(self, partition: int) -> None:
        """Replace the partition's log by a snapshot of its live state (see the module docstring)."""
        if partition not in self._state:
            raise NotCoordinatorError(f"offsets partition {partition} is not loaded")
        if partition in self._compacting:
            return
        self._compacting.add(partition)
        try:
            await self._compact(partition)
        finally:
            self._compacting.discard(partition)

    async def maybe_compact(self, partition: int, max_bytes: int) -> bool:
        """Compact when the log is larger than max_bytes and than COMPACTION_RATIO x the last snapshot;
        first, delete the segments an earlier snapshot replaced once the high watermark has passed it."""
        if self._drop_replaced_segments(partition):
            return True
        size = self._log.log(partition).size_bytes
        if size <= max(max_bytes, COMPACTION_RATIO * self._snapshot_bytes.get(partition, 0)):
            return False
        await self.compact(partition)
        return True

    async def _compact(self, partition: int) -> None:
        partition_log = self._log.log(partition)
        before = partition_log.size_bytes
        await asyncio.to_thread(partition_log.roll)
        snapshot_start = partition_log.log_end_offset
        keys = _live_keys(self._state[partition])
        limit = min(partition_log.config.max_message_bytes, _SNAPSHOT_BATCH_BYTES)
        i = 0
        while i < len(keys):
            groups = self._state.get(partition)
            if groups is None:
                return  # unloaded meanwhile: the next leader compacts
            # One batch, read and appended with no await in between: it holds the current values.
            records: list[rb.Record] = []
            size = rb.HEADER_SIZE
            while i < len(keys):
                change = _current_change(groups, keys[i])
                if change is None:  # gone since the snapshot began
                    i += 1
                    continue
                record = _to_record(change)
                record_size = len(record.key or b"") + len(record.value or b"") + _RECORD_OVERHEAD
                if records and size + record_size > limit:
                    break  # this key goes into the next batch, read again then
                records.append(record)
                size += record_size
                i += 1
            if records:
                batch = rb.build_batch(records, base_timestamp=self._clock.time_ms())
                self._log.append(partition, batch, acks=1)
            await asyncio.sleep(0)  # group requests go on between the snapshot's batches
        # The snapshot must be durable before the segments it replaces go; they go once every ISR member
        # has it too (the high watermark passed it: at once on a cluster of one), never below the high
        # watermark (the retention rule).
        await asyncio.to_thread(partition_log.flush)
        if partition not in self._state:
            return
        self._pending_snapshot[partition] = (snapshot_start, partition_log.log_end_offset)
        self._drop_replaced_segments(partition)
        log.info(
            "offsets partition %d: compacted %d bytes to a snapshot from offset %d",
            partition, before, snapshot_start,
        )  # fmt: skip

    def _drop_replaced_segments(self, partition: int) -> bool:
        """Delete the segments a snapshot replaced once the high watermark has passed the snapshot (every
        ISR member has it). True if a snapshot was pending (done or not)."""
        pending = self._pending_snapshot.get(partition)
        if pending is None or partition not in self._state:
            return False
        start, end = pending
        partition_log = self._log.log(partition)
        if partition_log.high_watermark < end:
            return True  # not replicated yet: try again at the next check
        del self._pending_snapshot[partition]
        old = sum(1 for s in partition_log.segment_infos() if s.base_offset < start)
        partition_log.delete_oldest_segments(old, "offsets compaction")
        self._snapshot_bytes[partition] = partition_log.size_bytes
        return True

    # --- helpers ----------------------------------------------------------------------------------

    def _coordinated(self, group: str) -> int:
        """The group's offsets partition, which must be loaded here."""
        if len(group.encode()) > MAX_NAME_BYTES:
            raise InvalidGroupIdError(f"group id is longer than {MAX_NAME_BYTES} bytes")
        partition = partition_for(group, self.partitions)
        if partition not in self._state:
            raise NotCoordinatorError(f"group {group!r} belongs to offsets partition {partition}, not loaded")
        return partition

    def _groups_of(self, group: str) -> _Groups:
        return self._state[self._coordinated(group)]

    def _write(self, partition: int, changes: list[Change], *, acks: int = 1) -> AppendInfo:
        """Append the changes as one batch, then apply them to memory (so a failed append changes nothing)."""
        batch = rb.build_batch([_to_record(c) for c in changes], base_timestamp=self._clock.time_ms())
        info = self._log.append(partition, batch, acks=acks)
        groups = self._state[partition]
        for change in changes:
            _apply(groups, change)
        return info


def _replay_partition(partition_log: PartitionLog, groups: _Groups, partition: int) -> int:
    try:
        return _replay(partition_log, groups)
    except (OffsetRecordError, rb.BatchError, codec.UnsupportedCodecError) as exc:
        raise CorruptOffsetsError(f"offsets partition {partition}: {exc}") from exc


_LiveKey = tuple[str, TopicPartition | None]  # (group, offset key) or (group, None) for the group record


def _live_keys(groups: _Groups) -> list[_LiveKey]:
    keys: list[_LiveKey] = []
    for name in sorted(groups):
        group = groups[name]
        if group.info is not None:
            keys.append((name, None))
        keys += [(name, tp) for tp in sorted(group.offsets)]
    return keys


def _current_change(groups: _Groups, key: _LiveKey) -> Change | None:
    """The current value of a key, None if it is gone."""
    name, tp = key
    group = groups.get(name)
    if group is None:
        return None
    if tp is None:
        return Change(GroupKey(name), group.info) if group.info is not None else None
    value = group.offsets.get(tp)
    return Change(OffsetKey(name, *tp), value) if value is not None else None
