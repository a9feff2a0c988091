"""Fetch (key 1, v4-11) and ListOffsets (key 2, v1-7).

Field lists follow Apache Kafka's ``FetchRequest.json``/``FetchResponse.json`` (non-flexible versions)
and ``ListOffsetsRequest.json``/``ListOffsetsResponse.json``: ListOffsets is flexible from v6, and v7
adds the timestamp -3 (MAX_TIMESTAMP, KIP-734) without changing the fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from logq.protocol.primitives import INT32_MAX, Buffer
from logq.protocol.schema import INT8, INT16, INT32, INT64, RECORDS, STRING, ArrayOf, Struct, wire

__all__ = [
    "AbortedTransaction",
    "FetchPartition",
    "FetchPartitionData",
    "FetchRequest",
    "FetchResponse",
    "FetchTopic",
    "FetchableTopicResponse",
    "ForgottenTopic",
    "ListOffsetsPartition",
    "ListOffsetsPartitionResponse",
    "ListOffsetsRequest",
    "ListOffsetsResponse",
    "ListOffsetsTopic",
    "ListOffsetsTopicResponse",
]


@dataclass(slots=True, kw_only=True)
class FetchPartition(Struct):
    partition: int = wire(INT32)
    current_leader_epoch: int = wire(INT32, "9+", default=-1)
    fetch_offset: int = wire(INT64)
    log_start_offset: int = wire(INT64, "5+", default=-1)
    partition_max_bytes: int = wire(INT32)


@dataclass(slots=True, kw_only=True)
class FetchTopic(Struct):
    topic: str = wire(STRING)
    partitions: list[FetchPartition] = wire(ArrayOf(FetchPartition))


@dataclass(slots=True, kw_only=True)
class ForgottenTopic(Struct):
    topic: str = wire(STRING, "7+")
    partitions: list[int] = wire(ArrayOf(INT32), "7+")


@dataclass(slots=True, kw_only=True)
class FetchRequest(Struct):
    replica_id: int = wire(INT32, default=-1)
    max_wait_ms: int = wire(INT32)
    min_bytes: int = wire(INT32)
    max_bytes: int = wire(INT32, "3+", default=INT32_MAX)
    isolation_level: int = wire(INT8, "4+")
    session_id: int = wire(INT32, "7+")
    session_epoch: int = wire(INT32, "7+", default=-1)
    topics: list[FetchTopic] = wire(ArrayOf(FetchTopic))
    forgotten_topics_data: list[ForgottenTopic] = wire(ArrayOf(ForgottenTopic), "7+")
    rack_id: str = wire(STRING, "11+")


@dataclass(slots=True, kw_only=True)
class AbortedTransaction(Struct):
    producer_id: int = wire(INT64, "4+")
    first_offset: int = wire(INT64, "4+")


@dataclass(slots=True, kw_only=True)
class FetchPartitionData(Struct):
    partition_index: int = wire(INT32)
    error_code: int = wire(INT16)
    high_watermark: int = wire(INT64)
    last_stable_offset: int = wire(INT64, "4+", default=-1)
    log_start_offset: int = wire(INT64, "5+", default=-1)
    aborted_transactions: list[AbortedTransaction] | None = wire(
        ArrayOf(AbortedTransaction), "4+", nullable="4+"
    )
    # Must be -1 (not garbage) for clients that ignore it (docs/protocol.md, "Pitfalls", 3).
    preferred_read_replica: int = wire(INT32, "11+", default=-1)
    # Stored RecordBatch bytes served unchanged; encoded as a separate chunk (no concatenation).
    records: Buffer | None = wire(RECORDS, nullable="0+")


@dataclass(slots=True, kw_only=True)
class FetchableTopicResponse(Struct):
    topic: str = wire(STRING)
    partitions: list[FetchPartitionData] = wire(ArrayOf(FetchPartitionData))


@dataclass(slots=True, kw_only=True)
class FetchResponse(Struct):
    throttle_time_ms: int = wire(INT32, "1+")
    error_code: int = wire(INT16, "7+")
    session_id: int = wire(INT32, "7+")
    responses: list[FetchableTopicResponse] = wire(ArrayOf(FetchableTopicResponse))


@dataclass(slots=True, kw_only=True)
class ListOffsetsPartition(Struct):
    partition_index: int = wire(INT32)
    current_leader_epoch: int = wire(INT32, "4+", default=-1)
    timestamp: int = wire(INT64)


@dataclass(slots=True, kw_only=True)
class ListOffsetsTopic(Struct):
    name: str = wire(STRING)
    partitions: list[ListOffsetsPartition] = wire(ArrayOf(ListOffsetsPartition))


@dataclass(slots=True, kw_only=True)
class ListOffsetsRequest(Struct):
    FLEXIBLE_FROM: ClassVar[int | None] = 6
    replica_id: int = wire(INT32, default=-1)
    isolation_level: int = wire(INT8, "2+")
    topics: list[ListOffsetsTopic] = wire(ArrayOf(ListOffsetsTopic))


@dataclass(slots=True, kw_only=True)
class ListOffsetsPartitionResponse(Struct):
    partition_index: int = wire(INT32)
    error_code: int = wire(INT16)
    timestamp: int = wire(INT64, "1+", default=-1)
    offset: int = wire(INT64, "1+", default=-1)
    leader_epoch: int = wire(INT32, "4+", default=-1)


@dataclass(slots=True, kw_only=True)
class ListOffsetsTopicResponse(Struct):
    name: str = wire(STRING)
    partitions: list[ListOffsetsPartitionResponse] = wire(ArrayOf(ListOffsetsPartitionResponse))


@dataclass(slots=True, kw_only=True)
class ListOffsetsResponse(Struct):
    FLEXIBLE_FROM: ClassVar[int | None] = 6
    throttle_time_ms: int = wire(INT32, "2+")
    topics: list[ListOffsetsTopicResponse] = wire(ArrayOf(ListOffsetsTopicResponse))
