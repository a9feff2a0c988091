"""OffsetForLeaderEpoch (key 23, v0-3): a follower asks its leader where an epoch of its log ended.

Field lists follow Apache Kafka's ``OffsetForLeaderEpochRequest.json``/``...Response.json`` (non-flexible
versions only: v4 is the first flexible one). v2 adds the fencing epoch and the throttle time, v3 the
asking replica's id (-1 for a consumer).
"""

from __future__ import annotations

from dataclasses import dataclass

from logq.protocol.schema import INT16, INT32, INT64, STRING, ArrayOf, Struct, wire

__all__ = [
    "EpochEndOffset",
    "OffsetForLeaderEpochRequest",
    "OffsetForLeaderEpochResponse",
    "OffsetForLeaderPartition",
    "OffsetForLeaderTopic",
    "OffsetForLeaderTopicResult",
]


@dataclass(slots=True, kw_only=True)
class OffsetForLeaderPartition(Struct):
    partition: int = wire(INT32)
    current_leader_epoch: int = wire(INT32, "2+", default=-1)  # fences a requester with a stale leader
    leader_epoch: int = wire(INT32)  # the epoch whose end offset is asked


@dataclass(slots=True, kw_only=True)
class OffsetForLeaderTopic(Struct):
    topic: str = wire(STRING)
    partitions: list[OffsetForLeaderPartition] = wire(ArrayOf(OffsetForLeaderPartition))


@dataclass(slots=True, kw_only=True)
class OffsetForLeaderEpochRequest(Struct):
    replica_id: int = wire(INT32, "3+", default=-2)  # a broker id, or -1 for a consumer
    topics: list[OffsetForLeaderTopic] = wire(ArrayOf(OffsetForLeaderTopic))


@dataclass(slots=True, kw_only=True)
class EpochEndOffset(Struct):
    error_code: int = wire(INT16)
    partition: int = wire(INT32)
    leader_epoch: int = wire(INT32, "1+", default=-1)
    end_offset: int = wire(INT64, default=-1)


@dataclass(slots=True, kw_only=True)
class OffsetForLeaderTopicResult(Struct):
    topic: str = wire(STRING)
    partitions: list[EpochEndOffset] = wire(ArrayOf(EpochEndOffset))


@dataclass(slots=True, kw_only=True)
class OffsetForLeaderEpochResponse(Struct):
    throttle_time_ms: int = wire(INT32, "2+")
    topics: list[OffsetForLeaderTopicResult] = wire(ArrayOf(OffsetForLeaderTopicResult))
