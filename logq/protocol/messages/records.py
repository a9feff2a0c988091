"""DeleteRecords (key 21, v0-1).

Field lists follow Apache Kafka's ``DeleteRecordsRequest.json``/``DeleteRecordsResponse.json``
(non-flexible versions only: v2 is the first flexible one; v1 is the same as v0).
"""

from __future__ import annotations

from dataclasses import dataclass

from logq.protocol.schema import INT16, INT32, INT64, STRING, ArrayOf, Struct, wire

__all__ = [
    "DeleteRecordsPartition",
    "DeleteRecordsPartitionResult",
    "DeleteRecordsRequest",
    "DeleteRecordsResponse",
    "DeleteRecordsTopic",
    "DeleteRecordsTopicResult",
]


@dataclass(slots=True, kw_only=True)
class DeleteRecordsPartition(Struct):
    partition_index: int = wire(INT32)
    offset: int = wire(INT64)  # the new log start; -1: the high watermark


@dataclass(slots=True, kw_only=True)
class DeleteRecordsTopic(Struct):
    name: str = wire(STRING)
    partitions: list[DeleteRecordsPartition] = wire(ArrayOf(DeleteRecordsPartition))


@dataclass(slots=True, kw_only=True)
class DeleteRecordsRequest(Struct):
    topics: list[DeleteRecordsTopic] = wire(ArrayOf(DeleteRecordsTopic))
    timeout_ms: int = wire(INT32)


@dataclass(slots=True, kw_only=True)
class DeleteRecordsPartitionResult(Struct):
    partition_index: int = wire(INT32)
    low_watermark: int = wire(INT64)  # the log start, the smallest over the in-sync replicas
    error_code: int = wire(INT16)


@dataclass(slots=True, kw_only=True)
class DeleteRecordsTopicResult(Struct):
    name: str = wire(STRING)
    partitions: list[DeleteRecordsPartitionResult] = wire(ArrayOf(DeleteRecordsPartitionResult))


@dataclass(slots=True, kw_only=True)
class DeleteRecordsResponse(Struct):
    throttle_time_ms: int = wire(INT32)
    topics: list[DeleteRecordsTopicResult] = wire(ArrayOf(DeleteRecordsTopicResult))
