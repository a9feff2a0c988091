"""DeleteGroups (key 42, v0-1) and OffsetDelete (key 47, v0): an operator's deletion of empty groups and
of a group's committed offsets.

Field lists follow Apache Kafka's ``DeleteGroupsRequest.json``/``DeleteGroupsResponse.json`` (v1 is v0 with
the throttle answered before throttling; v2 is the first flexible one) and
``OffsetDeleteRequest.json``/``OffsetDeleteResponse.json`` (v0, the only non-flexible version). Neither
response carries an error message in these versions.
"""

from __future__ import annotations

from dataclasses import dataclass

from logq.protocol.schema import INT16, INT32, STRING, ArrayOf, Struct, wire

__all__ = [
    "DeletableGroupResult",
    "DeleteGroupsRequest",
    "DeleteGroupsResponse",
    "OffsetDeleteRequest",
    "OffsetDeleteRequestPartition",
    "OffsetDeleteRequestTopic",
    "OffsetDeleteResponse",
    "OffsetDeleteResponsePartition",
    "OffsetDeleteResponseTopic",
]


@dataclass(slots=True, kw_only=True)
class DeleteGroupsRequest(Struct):
    groups_names: list[str] = wire(ArrayOf(STRING))


@dataclass(slots=True, kw_only=True)
class DeletableGroupResult(Struct):
    group_id: str = wire(STRING)
    error_code: int = wire(INT16)


@dataclass(slots=True, kw_only=True)
class DeleteGroupsResponse(Struct):
    throttle_time_ms: int = wire(INT32)
    results: list[DeletableGroupResult] = wire(ArrayOf(DeletableGroupResult))


@dataclass(slots=True, kw_only=True)
class OffsetDeleteRequestPartition(Struct):
    partition_index: int = wire(INT32)


@dataclass(slots=True, kw_only=True)
class OffsetDeleteRequestTopic(Struct):
    name: str = wire(STRING)
    partitions: list[OffsetDeleteRequestPartition] = wire(ArrayOf(OffsetDeleteRequestPartition))


@dataclass(slots=True, kw_only=True)
class OffsetDeleteRequest(Struct):
    group_id: str = wire(STRING)
    topics: list[OffsetDeleteRequestTopic] = wire(ArrayOf(OffsetDeleteRequestTopic))


@dataclass(slots=True, kw_only=True)
class OffsetDeleteResponsePartition(Struct):
    partition_index: int = wire(INT32)
    error_code: int = wire(INT16)


@dataclass(slots=True, kw_only=True)
class OffsetDeleteResponseTopic(Struct):
    name: str = wire(STRING)
    partitions: list[OffsetDeleteResponsePartition] = wire(ArrayOf(OffsetDeleteResponsePartition))


@dataclass(slots=True, kw_only=True)
class OffsetDeleteResponse(Struct):
    error_code: int = wire(INT16)
    throttle_time_ms: int = wire(INT32)
    topics: list[OffsetDeleteResponseTopic] = wire(ArrayOf(OffsetDeleteResponseTopic))
