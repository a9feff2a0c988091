"""OffsetCommit (key 8, v2-7) and OffsetFetch (key 9, v1-5).

Field lists follow Apache Kafka's ``OffsetCommitRequest.json``/``OffsetCommitResponse.json`` and
``OffsetFetchRequest.json``/``OffsetFetchResponse.json`` (non-flexible versions only). The JSON's
``GenerationIdOrMemberEpoch`` is called ``generation_id`` here: logq only speaks the classic protocol.
"""

from __future__ import annotations

from dataclasses import dataclass

from logq.protocol.schema import INT16, INT32, INT64, STRING, ArrayOf, Struct, wire

__all__ = [
    "OffsetCommitRequest",
    "OffsetCommitRequestPartition",
    "OffsetCommitRequestTopic",
    "OffsetCommitResponse",
    "OffsetCommitResponsePartition",
    "OffsetCommitResponseTopic",
    "OffsetFetchRequest",
    "OffsetFetchRequestTopic",
    "OffsetFetchResponse",
    "OffsetFetchResponsePartition",
    "OffsetFetchResponseTopic",
]


@dataclass(slots=True, kw_only=True)
class OffsetCommitRequestPartition(Struct):
    partition_index: int = wire(INT32)
    committed_offset: int = wire(INT64)
    committed_leader_epoch: int = wire(INT32, "6+", default=-1)
    committed_metadata: str | None = wire(STRING, nullable="0+")


@dataclass(slots=True, kw_only=True)
class OffsetCommitRequestTopic(Struct):
    name: str = wire(STRING)
    partitions: list[OffsetCommitRequestPartition] = wire(ArrayOf(OffsetCommitRequestPartition))


@dataclass(slots=True, kw_only=True)
class OffsetCommitRequest(Struct):
    group_id: str = wire(STRING)
    generation_id: int = wire(INT32, default=-1)
    member_id: str = wire(STRING)
    group_instance_id: str | None = wire(STRING, "7+", nullable="7+", default=None)
    retention_time_ms: int = wire(INT64, "2-4", default=-1)
    topics: list[OffsetCommitRequestTopic] = wire(ArrayOf(OffsetCommitRequestTopic))


@dataclass(slots=True, kw_only=True)
class OffsetCommitResponsePartition(Struct):
    partition_index: int = wire(INT32)
    error_code: int = wire(INT16)


@dataclass(slots=True, kw_only=True)
class OffsetCommitResponseTopic(Struct):
    name: str = wire(STRING)
    partitions: list[OffsetCommitResponsePartition] = wire(ArrayOf(OffsetCommitResponsePartition))


@dataclass(slots=True, kw_only=True)
class OffsetCommitResponse(Struct):
    throttle_time_ms: int = wire(INT32, "3+")
    topics: list[OffsetCommitResponseTopic] = wire(ArrayOf(OffsetCommitResponseTopic))


@dataclass(slots=True, kw_only=True)
class OffsetFetchRequestTopic(Struct):
    name: str = wire(STRING)
    partition_indexes: list[int] = wire(ArrayOf(INT32))


@dataclass(slots=True, kw_only=True)
class OffsetFetchRequest(Struct):
    group_id: str = wire(STRING)
    # v2+: None asks for every committed offset of the group.
    topics: list[OffsetFetchRequestTopic] | None = wire(ArrayOf(OffsetFetchRequestTopic), nullable="2+")


@dataclass(slots=True, kw_only=True)
class OffsetFetchResponsePartition(Struct):
    partition_index: int = wire(INT32)
    committed_offset: int = wire(INT64)
    committed_leader_epoch: int = wire(INT32, "5+", default=-1)
    metadata: str | None = wire(STRING, nullable="0+")
    error_code: int = wire(INT16)


@dataclass(slots=True, kw_only=True)
class OffsetFetchResponseTopic(Struct):
    name: str = wire(STRING)
    partitions: list[OffsetFetchResponsePartition] = wire(ArrayOf(OffsetFetchResponsePartition))


@dataclass(slots=True, kw_only=True)
class OffsetFetchResponse(Struct):
    throttle_time_ms: int = wire(INT32, "3+")
    topics: list[OffsetFetchResponseTopic] = wire(ArrayOf(OffsetFetchResponseTopic))
    error_code: int = wire(INT16, "2+")  # top-level error after the topics, unlike most APIs
