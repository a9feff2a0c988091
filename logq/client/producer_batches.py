"""What the producer keeps per queue and per partition: the partitions' open, queued, in-flight and failed
batches (:class:`ProducerBatch`), the sticky partition and remembered key placements of a queue
(:class:`QueueState`), and the records of a queue whose metadata is awaited (:class:`PendingRecords`).

The open batch of a partition and a queue's partition list are shared with sending threads under the
producer's lock; everything else here is only touched on the producer's event loop thread.
"""

from __future__ import annotations

import collections
import random
from typing import Protocol

from logq.client.cluster import QueueInfo
from logq.client.partitioner import partition_for_key
from logq.client.producer_futures import Completion, CompletionOwner
from logq.client.records import BatchBuilder, new_batch_builder
from logq.errors import LogqError

__all__ = [
    "PLACED_KEYS",
    "SPENT_BUILDER",
    "BatchOwner",
    "PartitionState",
    "PendingRecords",
    "ProducerBatch",
    "QueueState",
    "Record",
    "place_key",
]

PLACED_KEYS = 16384  # the partitions of this many recent keys are remembered per queue


class BatchOwner(CompletionOwner, Protocol):
    """What a batch uses of its producer, beyond what any completion does."""

    _delivery_timeout_s: float


class ProducerBatch(Completion):
    """The records sent to one partition together, from the first append to the broker's answer."""

    __slots__ = (
        "attempts",
        "builder",
        "count",
        "created",
        "data",
        "deadline",
        "last_error",
        "linked",
        "number",
        "part",
        "sequence",
    )

    def __init__(self, owner: BatchOwner, part: PartitionState, builder: BatchBuilder, now: float) -> None:
        super().__init__(owner, part.qs.name, part.index)
        self.part = part
        self.builder = builder  # SPENT_BUILDER once built
        self.created = now
        self.deadline = now + owner._delivery_timeout_s
        self.data: bytes | None = None  # the built RecordBatch, once closed and drained
        self.count = 0
        self.sequence = -1
        self.attempts = 0
        self.last_error: LogqError | None = None  # why the last attempt failed (named when it expires)
        self.number = 0  # send order, to put retried batches back in order
        # records sent before their queue's metadata was known: (offset delta, their completion)
        self.linked: list[tuple[int, Completion]] | None = None

    def _release_locked(self) -> None:
        self.builder = SPENT_BUILDER
        self.data = None

    def finish(self, base_offset: int, error: LogqError | None, log_append_time: int = -1) -> None:
        super().finish(base_offset, error, log_append_time)
        linked, self.linked = self.linked, None
        if linked:
            for delta, completion in linked:
                offset = base_offset + delta if base_offset >= 0 and error is None else -1
                completion.finish(offset, error, log_append_time)


SPENT_BUILDER = new_batch_builder(0, 0)  # the builder of a batch that was built


class PartitionState:
    __slots__ = (
        "backoff_until",
        "failing",
        "index",
        "inflight",
        "leader",
        "next_seq",
        "open",
        "qs",
        "queue",
        "retry",
    )

    def __init__(self, qs: QueueState, index: int, leader: int) -> None:
        self.qs = qs
        self.index = index
        self.leader = leader
        self.open: ProducerBatch | None = None  # guarded by the producer's lock
        # The rest is only touched on the loop thread.
        self.queue: collections.deque[ProducerBatch] = collections.deque()  # closed, waiting to be sent
        self.inflight: collections.deque[ProducerBatch] = collections.deque()  # in send order
        self.retry: list[ProducerBatch] = []  # failed retriably, to go out again once inflight is empty
        self.failing = False
        self.backoff_until = 0.0
        self.next_seq = 0


class QueueState:
    __slots__ = ("count", "dead", "name", "parts", "placed", "refresh_after", "refreshing", "sticky")

    def __init__(self, name: str, info: QueueInfo) -> None:
        self.name = name
        self.parts = [PartitionState(self, p.partition, p.leader) for p in info.partitions]
        self.count = len(self.parts)
        self.sticky = self.parts[random.randrange(self.count)]
        self.dead: LogqError | None = None
        self.refreshing = False
        self.refresh_after = 0.0
        # The partitions of recent keys (murmur2 in Python costs ~1.5 us, a dict lookup ~50 ns), with the
        # partition count they are for: replaced as a whole when partitions are added.
        self.placed: tuple[int, dict[bytes, int]] = (self.count, {})


Record = tuple[bytes | None, bytes | None, bytes, int | None, int]  # key, value, headers, partition, ts


class PendingRecords:
    """Records of a queue whose metadata is being fetched: routed to partitions once it arrives."""

    __slots__ = ("fetching", "records")

    def __init__(self) -> None:
        self.records: list[tuple[Record, Completion, float]] = []  # (record, its completion, sent at)
        self.fetching = False


def place_key(placed: dict[bytes, int], key: bytes, count: int) -> int:
    """The partition of ``key`` among ``count``, remembered in ``placed`` (a queue's recent keys)."""
    index = partition_for_key(key, count)
    if len(placed) >= PLACED_KEYS:
        placed.clear()
    placed[key] = index
    return index
