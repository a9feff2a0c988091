"""CreateTopics (key 19, v0-4) and DeleteTopics (key 20, v0-3).

Field lists follow Apache Kafka's ``CreateTopicsRequest.json``/``CreateTopicsResponse.json`` and
``DeleteTopicsRequest.json``/``DeleteTopicsResponse.json`` (non-flexible versions only).
"""

from __future__ import annotations

from dataclasses import dataclass

from logq.protocol.schema import BOOL, INT16, INT32, STRING, ArrayOf, Struct, wire

__all__ = [
    "CreatableReplicaAssignment",
    "CreatableTopic",
    "CreatableTopicConfig",
    "CreatableTopicResult",
    "CreateTopicsRequest",
    "CreateTopicsResponse",
    "DeletableTopicResult",
    "DeleteTopicsRequest",
    "DeleteTopicsResponse",
]


@dataclass(slots=True, kw_only=True)
class CreatableReplicaAssignment(Struct):
    partition_index: int = wire(INT32)
    broker_ids: list[int] = wire(ArrayOf(INT32))


@dataclass(slots=True, kw_only=True)
class CreatableTopicConfig(Struct):
    name: str = wire(STRING)
    value: str | None = wire(STRING, nullable="0+")


@dataclass(slots=True, kw_only=True)
class CreatableTopic(Struct):
    name: str = wire(STRING)
    num_partitions: int = wire(INT32, default=-1)  # -1 = broker default (v4+) or manual assignment
    replication_factor: int = wire(INT16, default=-1)
    assignments: list[CreatableReplicaAssignment] = wire(ArrayOf(CreatableReplicaAssignment))
    configs: list[CreatableTopicConfig] = wire(ArrayOf(CreatableTopicConfig))


@dataclass(slots=True, kw_only=True)
class CreateTopicsRequest(Struct):
    topics: list[CreatableTopic] = wire(ArrayOf(CreatableTopic))
    timeout_ms: int = wire(INT32, default=60000)
    validate_only: bool = wire(BOOL, "1+")


@dataclass(slots=True, kw_only=True)
class CreatableTopicResult(Struct):
    name: str = wire(STRING)
    error_code: int = wire(INT16)
    error_message: str | None = wire(STRING, "1+", nullable="0+", default=None)


@dataclass(slots=True, kw_only=True)
class CreateTopicsResponse(Struct):
    throttle_time_ms: int = wire(INT32, "2+")
    topics: list[CreatableTopicResult] = wire(ArrayOf(CreatableTopicResult))


@dataclass(slots=True, kw_only=True)
class DeleteTopicsRequest(Struct):
    topic_names: list[str] = wire(ArrayOf(STRING))
    timeout_ms: int = wire(INT32)


@dataclass(slots=True, kw_only=True)
class DeletableTopicResult(Struct):
    name: str = wire(STRING)
    error_code: int = wire(INT16)


@dataclass(slots=True, kw_only=True)
class DeleteTopicsResponse(Struct):
    throttle_time_ms: int = wire(INT32, "1+")
    responses: list[DeletableTopicResult] = wire(ArrayOf(DeletableTopicResult))
