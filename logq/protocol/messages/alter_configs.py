"""AlterConfigs (key 33, v0-1) and IncrementalAlterConfigs (key 44, v0-1).

Field lists follow Apache Kafka's ``AlterConfigsRequest.json``/``AlterConfigsResponse.json`` (v2 is the
first flexible version, not served) and ``IncrementalAlterConfigsRequest.json``/``...Response.json``
(flexible from v1, served: the codec's compact encoding). AlterConfigs replaces a resource's whole set of
overrides; IncrementalAlterConfigs names an operation per key: 0 SET, 1 DELETE, 2 APPEND, 3 SUBTRACT.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from logq.protocol.schema import BOOL, INT8, INT16, INT32, STRING, ArrayOf, Struct, wire

__all__ = [
    "AlterConfigsRequest",
    "AlterConfigsResource",
    "AlterConfigsResourceResponse",
    "AlterConfigsResponse",
    "AlterableConfig",
    "IncrementalAlterConfigsRequest",
    "IncrementalAlterConfigsResource",
    "IncrementalAlterConfigsResponse",
    "IncrementalAlterableConfig",
]


@dataclass(slots=True, kw_only=True)
class AlterableConfig(Struct):
    name: str = wire(STRING)
    value: str | None = wire(STRING, nullable="0+", default=None)


@dataclass(slots=True, kw_only=True)
class AlterConfigsResource(Struct):
    resource_type: int = wire(INT8)  # 2 = topic, 4 = broker (Kafka's ConfigResource.Type)
    resource_name: str = wire(STRING)
    configs: list[AlterableConfig] = wire(ArrayOf(AlterableConfig))


@dataclass(slots=True, kw_only=True)
class AlterConfigsRequest(Struct):
    resources: list[AlterConfigsResource] = wire(ArrayOf(AlterConfigsResource))
    validate_only: bool = wire(BOOL)


@dataclass(slots=True, kw_only=True)
class AlterConfigsResourceResponse(Struct):
    error_code: int = wire(INT16)
    error_message: str | None = wire(STRING, nullable="0+", default=None)
    resource_type: int = wire(INT8)
    resource_name: str = wire(STRING)


@dataclass(slots=True, kw_only=True)
class AlterConfigsResponse(Struct):
    throttle_time_ms: int = wire(INT32)
    responses: list[AlterConfigsResourceResponse] = wire(ArrayOf(AlterConfigsResourceResponse))


@dataclass(slots=True, kw_only=True)
class IncrementalAlterableConfig(Struct):
    name: str = wire(STRING)
    config_operation: int = wire(INT8)  # 0 SET, 1 DELETE, 2 APPEND, 3 SUBTRACT
    value: str | None = wire(STRING, nullable="0+", default=None)


@dataclass(slots=True, kw_only=True)
class IncrementalAlterConfigsResource(Struct):
    resource_type: int = wire(INT8)
    resource_name: str = wire(STRING)
    configs: list[IncrementalAlterableConfig] = wire(ArrayOf(IncrementalAlterableConfig))


@dataclass(slots=True, kw_only=True)
class IncrementalAlterConfigsRequest(Struct):
    FLEXIBLE_FROM: ClassVar[int | None] = 1
    resources: list[IncrementalAlterConfigsResource] = wire(ArrayOf(IncrementalAlterConfigsResource))
    validate_only: bool = wire(BOOL)


@dataclass(slots=True, kw_only=True)
class IncrementalAlterConfigsResponse(Struct):
    FLEXIBLE_FROM: ClassVar[int | None] = 1
    throttle_time_ms: int = wire(INT32)
    responses: list[AlterConfigsResourceResponse] = wire(ArrayOf(AlterConfigsResourceResponse))
