"""CreatePartitions (key 37, v0-1).

Field lists follow Apache Kafka's ``CreatePartitionsRequest.json``/``CreatePartitionsResponse.json``
(non-flexible versions only: v1 is the same as v0; v2 is the first flexible one).
"""

from __future__ import annotations

from dataclasses import dataclass

from logq.protocol.schema import BOOL, INT16, INT32, STRING, ArrayOf, Struct, wire

__all__ = [
    "CreatePartitionsAssignment",
    "CreatePartitionsRequest",
    "CreatePartitionsResponse",
    "CreatePartitionsTopic",
    "CreatePartitionsTopicResult",
]


@dataclass(slots=True, kw_only=True)
class CreatePartitionsAssignment(Struct):
    broker_ids: list[int] = wire(ArrayOf(INT32))  # the replicas of one new partition, leader first


@dataclass(slots=True, kw_only=True)
class CreatePartitionsTopic(Struct):
    name: str = wire(STRING)
    count: int = wire(INT32)  # the new total, not the number added
    # null: the broker places the new partitions; else one entry per new partition, in order
    assignments: list[CreatePartitionsAssignment] | None = wire(
        ArrayOf(CreatePartitionsAssignment), nullable="0+", default=None
    )


@dataclass(slots=True, kw_only=True)
class CreatePartitionsRequest(Struct):
    topics: list[CreatePartitionsTopic] = wire(ArrayOf(CreatePartitionsTopic))
    timeout_ms: int = wire(INT32, default=60000)
    validate_only: bool = wire(BOOL)


@dataclass(slots=True, kw_only=True)
class CreatePartitionsTopicResult(Struct):
    name: str = wire(STRING)
    error_code: int = wire(INT16)
    error_message: str | None = wire(STRING, nullable="0+", default=None)


@dataclass(slots=True, kw_only=True)
class CreatePartitionsResponse(Struct):
    throttle_time_ms: int = wire(INT32)
    results: list[CreatePartitionsTopicResult] = wire(ArrayOf(CreatePartitionsTopicResult))
