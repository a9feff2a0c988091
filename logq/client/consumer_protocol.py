"""The "consumer" embedded protocol of consumer groups: what members put in JoinGroup's protocol metadata
(ConsumerProtocolSubscription) and what the leader hands out through SyncGroup
(ConsumerProtocolAssignment). Both are opaque bytes to the broker.

Layouts (Kafka's ``ConsumerProtocolSubscription.json`` / ``ConsumerProtocolAssignment.json``; big-endian,
int16-length strings, int32-count arrays, int32-length nullable bytes):

    Subscription v0: version int16, topics [string], user_data bytes
                 v1: + owned_partitions [topic string, partitions [int32]]   (cooperative rebalancing)
                 v2: + generation_id int32;  v3: + rack_id nullable string
    Assignment   v0/v1: version int16, assigned_partitions [topic string, partitions [int32]], user_data bytes

logq writes Subscription v1 and Assignment v1 (v0 when nothing needs v1). Like Kafka, it reads any
version: the fields of the versions it knows, then it ignores the rest (librdkafka writes v3).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from logq.client.cluster import QueuePartition
from logq.errors import ConsumerProtocolError

PROTOCOL_TYPE = "consumer"

_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")


@dataclass(frozen=True, slots=True)
class Subscription:
    queues: tuple[str, ...]
    user_data: bytes | None = None
    owned_partitions: tuple[QueuePartition, ...] = ()
    generation_id: int = -1  # v2+ only; -1 when absent
    rack_id: str | None = None  # v3+ only
    version: int = 1


@dataclass(frozen=True, slots=True)
class Assignment:
    partitions: tuple[QueuePartition, ...]
    user_data: bytes | None = None
    version: int = 1


# --- encoding -------------------------------------------------------------------------------------


def _string(out: bytearray, text: str) -> None:
    raw = text.encode()
    out += _I16.pack(len(raw))
    out += raw


def _nullable_bytes(out: bytearray, data: bytes | None) -> None:
    if data is None:
        out += _I32.pack(-1)
    else:
        out += _I32.pack(len(data))
        out += data


def _partitions(out: bytearray, partitions: Iterable[QueuePartition]) -> None:
    by_queue: dict[str, list[int]] = {}
    for queue, partition in partitions:
        by_queue.setdefault(queue, []).append(partition)
    out += _I32.pack(len(by_queue))
    for queue in sorted(by_queue):
        numbers = sorted(by_queue[queue])
        _string(out, queue)
        out += _I32.pack(len(numbers))
        out += struct.pack(f">{len(numbers)}i", *numbers)


def encode_subscription(subscription: Subscription) -> bytes:
    """Subscription at ``subscription.version`` (0 or 1)."""
    version = subscription.version
    if version not in (0, 1):
        raise ValueError(f"logq writes ConsumerProtocolSubscription v0-1, not v{version}")
    out = bytearray(_I16.pack(version))
    out += _I32.pack(len(subscription.queues))
    for queue in subscription.queues:
        _string(out, queue)
    _nullable_bytes(out, subscription.user_data)
    if version >= 1:
        _partitions(out, subscription.owned_partitions)
    return bytes(out)


def encode_assignment(assignment: Assignment) -> bytes:
    """Assignment at ``assignment.version`` (0 or 1; the layouts are the same)."""
    if assignment.version not in (0, 1):
        raise ValueError(f"logq writes ConsumerProtocolAssignment v0-1, not v{assignment.version}")
    out = bytearray(_I16.pack(assignment.version))
    _partitions(out, assignment.partitions)
    _nullable_bytes(out, assignment.user_data)
    return bytes(out)


# --- decoding -------------------------------------------------------------------------------------


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def remaining(self) -> int:
        return len(self.data) - self.pos

    def _take(self, size: int) -> bytes:
        if size < 0 or self.pos + size > len(self.data):
            raise ConsumerProtocolError("consumer-protocol message is truncated")
        chunk = self.data[self.pos : self.pos + size]
        self.pos += size
        return chunk

    def int16(self) -> int:
        value: int = _I16.unpack(self._take(2))[0]
        return value

    def int32(self) -> int:
        value: int = _I32.unpack(self._take(4))[0]
        return value

    def string(self) -> str:
        try:
            return self._take(self.int16()).decode()
        except UnicodeDecodeError as exc:
            raise ConsumerProtocolError(f"consumer-protocol string is not UTF-8: {exc}") from None

    def nullable_string(self) -> str | None:
        size = self.int16()
        return None if size < 0 else self._take(size).decode(errors="replace")

    def nullable_bytes(self) -> bytes | None:
        size = self.int32()
        return None if size < 0 else self._take(size)

    def count(self) -> int:
        n = self.int32()
        if n < 0:
            return 0  # a null array
        if n > self.remaining():
            raise ConsumerProtocolError(f"array count {n} exceeds the bytes left")
        return n

    def partitions(self) -> tuple[QueuePartition, ...]:
        out: list[QueuePartition] = []
        for _ in range(self.count()):
            queue = self.string()
            n = self.count()
            numbers = struct.unpack(f">{n}i", self._take(4 * n))
            out.extend(QueuePartition(queue, p) for p in numbers)
        return tuple(out)


def decode_subscription(data: bytes) -> Subscription:
    """Any version (fields past the ones logq knows are ignored); ConsumerProtocolError if malformed."""
    reader = _Reader(bytes(data))
    version = reader.int16()
    if version < 0:
        raise ConsumerProtocolError(f"subscription version {version} is not valid")
    queues = tuple(reader.string() for _ in range(reader.count()))
    # Very old members may stop after the topics; user_data then counts as null.
    user_data = reader.nullable_bytes() if reader.remaining() else None
    owned: tuple[QueuePartition, ...] = ()
    generation = -1
    rack = None
    if version >= 1 and reader.remaining():
        owned = reader.partitions()
    if version >= 2 and reader.remaining() >= 4:
        generation = reader.int32()
    if version >= 3 and reader.remaining() >= 2:
        rack = reader.nullable_string()
    return Subscription(queues, user_data, owned, generation, rack, version)


def decode_assignment(data: bytes) -> Assignment:
    """Any version; empty bytes (a broker's answer to a member that was given nothing) decode as empty."""
    if not data:
        return Assignment((), None, 0)
    reader = _Reader(bytes(data))
    version = reader.int16()
    if version < 0:
        raise ConsumerProtocolError(f"assignment version {version} is not valid")
    partitions = reader.partitions()
    user_data = reader.nullable_bytes() if reader.remaining() >= 4 else None
    return Assignment(partitions, user_data, version)


def queue_partitions(pairs: Sequence[QueuePartition | tuple[str, int]]) -> list[QueuePartition]:
    """Normalise (queue, partition) tuples to QueuePartition, keeping order."""
    return [p if isinstance(p, QueuePartition) else QueuePartition(p[0], int(p[1])) for p in pairs]
