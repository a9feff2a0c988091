"""Metadata (key 3, v0-8), ApiVersions (key 18, v0-2) and FindCoordinator (key 10, v0-2).

Field lists follow Apache Kafka's ``MetadataRequest.json``/``MetadataResponse.json``,
``ApiVersionsRequest.json``/``ApiVersionsResponse.json`` and
``FindCoordinatorRequest.json``/``FindCoordinatorResponse.json`` (non-flexible versions only).
"""

from __future__ import annotations

from dataclasses import dataclass

from logq.protocol.primitives import INT32_MIN
from logq.protocol.schema import BOOL, INT8, INT16, INT32, STRING, ArrayOf, Struct, wire

__all__ = [
    "ApiVersionsRequest",
    "ApiVersionsResponse",
    "ApiVersionsResponseKey",
    "FindCoordinatorRequest",
    "FindCoordinatorResponse",
    "MetadataRequest",
    "MetadataRequestTopic",
    "MetadataResponse",
    "MetadataResponseBroker",
    "MetadataResponsePartition",
    "MetadataResponseTopic",
]


@dataclass(slots=True, kw_only=True)
class MetadataRequestTopic(Struct):
    name: str = wire(STRING)


@dataclass(slots=True, kw_only=True)
class MetadataRequest(Struct):
    # v0: [] means all topics; v1+: None means all topics and [] means none.
    topics: list[MetadataRequestTopic] | None = wire(ArrayOf(MetadataRequestTopic), nullable="1+")
    allow_auto_topic_creation: bool = wire(BOOL, "4+", default=True)
    include_cluster_authorized_operations: bool = wire(BOOL, "8-10")
    include_topic_authorized_operations: bool = wire(BOOL, "8+")


@dataclass(slots=True, kw_only=True)
class MetadataResponseBroker(Struct):
    node_id: int = wire(INT32)
    host: str = wire(STRING)
    port: int = wire(INT32)
    rack: str | None = wire(STRING, "1+", nullable="1+", default=None)


@dataclass(slots=True, kw_only=True)
class MetadataResponsePartition(Struct):
    error_code: int = wire(INT16)
    partition_index: int = wire(INT32)
    leader_id: int = wire(INT32)
    leader_epoch: int = wire(INT32, "7+", default=-1)
    replica_nodes: list[int] = wire(ArrayOf(INT32))
    isr_nodes: list[int] = wire(ArrayOf(INT32))
    offline_replicas: list[int] = wire(ArrayOf(INT32), "5+")


@dataclass(slots=True, kw_only=True)
class MetadataResponseTopic(Struct):
    error_code: int = wire(INT16)
    name: str = wire(STRING)
    is_internal: bool = wire(BOOL, "1+")
    partitions: list[MetadataResponsePartition] = wire(ArrayOf(MetadataResponsePartition))
    topic_authorized_operations: int = wire(INT32, "8+", default=INT32_MIN)


@dataclass(slots=True, kw_only=True)
class MetadataResponse(Struct):
    throttle_time_ms: int = wire(INT32, "3+")
    brokers: list[MetadataResponseBroker] = wire(ArrayOf(MetadataResponseBroker))
    cluster_id: str | None = wire(STRING, "2+", nullable="2+", default=None)
    controller_id: int = wire(INT32, "1+", default=-1)
    topics: list[MetadataResponseTopic] = wire(ArrayOf(MetadataResponseTopic))
    cluster_authorized_operations: int = wire(INT32, "8-10", default=INT32_MIN)


@dataclass(slots=True, kw_only=True)
class ApiVersionsRequest(Struct):
    """Empty in v0-2 (the client software fields arrive with flexible v3)."""


@dataclass(slots=True, kw_only=True)
class ApiVersionsResponseKey(Struct):
    api_key: int = wire(INT16)
    min_version: int = wire(INT16)
    max_version: int = wire(INT16)


@dataclass(slots=True, kw_only=True)
class ApiVersionsResponse(Struct):
    error_code: int = wire(INT16)
    api_keys: list[ApiVersionsResponseKey] = wire(ArrayOf(ApiVersionsResponseKey))
    throttle_time_ms: int = wire(INT32, "1+")


@dataclass(slots=True, kw_only=True)
class FindCoordinatorRequest(Struct):
    key: str = wire(STRING)
    key_type: int = wire(INT8, "1+")  # 0 = group, 1 = transaction


@dataclass(slots=True, kw_only=True)
class FindCoordinatorResponse(Struct):
    throttle_time_ms: int = wire(INT32, "1+")
    error_code: int = wire(INT16)
    error_message: str | None = wire(STRING, "1+", nullable="1+", default=None)
    node_id: int = wire(INT32)
    host: str = wire(STRING)
    port: int = wire(INT32)
