"""Idempotent-producer state of one partition (docs/protocol.md, "Idempotent producers"; after Kafka's
ProducerStateEntry).

For each producer id: its epoch and its last 5 batches (first sequence, last sequence, base offset,
last offset delta). Idempotent clients keep at most 5 requests in flight, so a retried batch is always
among these five. Not thread-safe: the partition log calls it under its lock.

Checks on append, in this order:
1. epoch below the stored one             -> InvalidProducerEpochError
2. epoch above the stored one             -> the first sequence must be 0, then the state resets
3. no state for this producer id          -> any sequence is accepted (as Kafka and Redpanda do)
4. (first, last) sequence already cached  -> a duplicate: answer with the original offsets, append nothing
5. first sequence != last sequence + 1    -> OutOfOrderSequenceError
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass, field

from logq.batch import BatchHeader
from logq.errors import InvalidProducerEpochError, OutOfOrderSequenceError

BATCHES_TO_RETAIN = 5
SEQUENCE_WRAP = 1 << 31
_ENTRY_HEAD = struct.Struct(">hB")
_ENTRY_BATCH = struct.Struct(">iiqi")


@dataclass(frozen=True, slots=True)
class SequencedBatch:
    first_seq: int
    last_seq: int
    base_offset: int
    last_offset_delta: int

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta


@dataclass(slots=True)
class ProducerEntry:
    epoch: int
    batches: deque[SequencedBatch] = field(default_factory=lambda: deque(maxlen=BATCHES_TO_RETAIN))

    def encode(self) -> bytes:
        parts = [_ENTRY_HEAD.pack(self.epoch, len(self.batches))]
        parts += [
            _ENTRY_BATCH.pack(b.first_seq, b.last_seq, b.base_offset, b.last_offset_delta)
            for b in self.batches
        ]
        return b"".join(parts)

    @classmethod
    def decode(cls, raw: bytes) -> ProducerEntry:
        epoch, count = _ENTRY_HEAD.unpack_from(raw)
        entry = cls(epoch)
        for i in range(count):
            entry.batches.append(
                SequencedBatch(*_ENTRY_BATCH.unpack_from(raw, _ENTRY_HEAD.size + i * _ENTRY_BATCH.size))
            )
        return entry


class ProducerStateTable:
    def __init__(self) -> None:
        self.entries: dict[int, ProducerEntry] = {}
        self._dirty: set[int] = set()
        self._dropped: set[int] = set()

    def check(self, header: BatchHeader) -> SequencedBatch | None:
        """Validate an idempotent batch before it is appended; returns the original batch of a duplicate."""
        pid = header.producer_id
        if pid < 0:
            return None
        entry = self.entries.get(pid)
        if entry is None:
            return None
        if header.producer_epoch < entry.epoch:
            raise InvalidProducerEpochError(
                f"producer {pid} epoch {header.producer_epoch} is older than the current epoch {entry.epoch}"
            )
        if header.producer_epoch > entry.epoch:
            if header.base_sequence != 0:
                raise OutOfOrderSequenceError(
                    f"producer {pid} bumped its epoch to {header.producer_epoch} "
                    f"but started at sequence {header.base_sequence}, not 0"
                )
            return None
        last_seq = header.last_sequence
        for cached in entry.batches:
            if cached.first_seq == header.base_sequence and cached.last_seq == last_seq:
                return cached
        if entry.batches:
            expected = (entry.batches[-1].last_seq + 1) % SEQUENCE_WRAP
            if header.base_sequence != expected:
                raise OutOfOrderSequenceError(
                    f"producer {pid} sent sequence {header.base_sequence}, expected {expected}"
                )
        return None

    def update(self, header: BatchHeader, base_offset: int) -> None:
        """Record an appended batch (also used to replay batch headers when the log loads)."""
        pid = header.producer_id
        if pid < 0:
            return
        entry = self.entries.get(pid)
        if entry is None or entry.epoch != header.producer_epoch:
            entry = self.entries[pid] = ProducerEntry(header.producer_epoch)
        entry.batches.append(
            SequencedBatch(header.base_sequence, header.last_sequence, base_offset, header.last_offset_delta)
        )
        self._dirty.add(pid)
        self._dropped.discard(pid)

    def truncate(self, offset: int) -> None:
        """Forget batches at or above ``offset``; a producer left with none is forgotten entirely."""
        for pid, entry in list(self.entries.items()):
            kept = [b for b in entry.batches if b.last_offset < offset]
            if len(kept) == len(entry.batches):
                continue
            if kept:
                entry.batches.clear()
                entry.batches.extend(kept)
                self._dirty.add(pid)
            else:
                del self.entries[pid]
                self._dirty.discard(pid)
                self._dropped.add(pid)

    def take_changes(self) -> tuple[dict[int, bytes], tuple[int, ...]]:
        """Encoded entries changed since the last call, and the ids forgotten since then."""
        changed = {pid: self.entries[pid].encode() for pid in self._dirty}
        dropped = tuple(self._dropped)
        self._dirty.clear()
        self._dropped.clear()
        return changed, dropped

    def restore_changes(self, changed: dict[int, bytes], dropped: tuple[int, ...]) -> None:
        """Put back changes whose write failed, so the next checkpoint writes them."""
        self._dirty.update(pid for pid in changed if pid in self.entries)
        self._dropped.update(pid for pid in dropped if pid not in self.entries)

    def load(self, encoded: dict[int, bytes]) -> None:
        self.entries = {pid: ProducerEntry.decode(raw) for pid, raw in encoded.items()}
        self._dirty.clear()
        self._dropped.clear()

    def mark_all_dirty(self) -> None:
        self._dirty.update(self.entries)
