"""DescribeConfigs (key 32, v0-3).

Field lists follow Apache Kafka's ``DescribeConfigsRequest.json``/``DescribeConfigsResponse.json``
(non-flexible versions only: v4 is the first flexible one). v0 reports ``is_default``; v1 replaces it
with ``config_source`` and adds the synonyms; v3 adds the value type and the documentation.
"""

from __future__ import annotations

from dataclasses import dataclass

from logq.protocol.schema import BOOL, INT8, INT16, INT32, STRING, ArrayOf, Struct, wire

__all__ = [
    "DescribeConfigsRequest",
    "DescribeConfigsResource",
    "DescribeConfigsResourceResult",
    "DescribeConfigsResponse",
    "DescribeConfigsResult",
    "DescribeConfigsSynonym",
]


@dataclass(slots=True, kw_only=True)
class DescribeConfigsResource(Struct):
    resource_type: int = wire(INT8)  # 2 = topic, 4 = broker (Kafka's ConfigResource.Type)
    resource_name: str = wire(STRING)
    # null (or, as Kafka reads it, empty) lists every configuration key
    configuration_keys: list[str] | None = wire(ArrayOf(STRING), nullable="0+", default=None)


@dataclass(slots=True, kw_only=True)
class DescribeConfigsRequest(Struct):
    resources: list[DescribeConfigsResource] = wire(ArrayOf(DescribeConfigsResource))
    include_synonyms: bool = wire(BOOL, "1+")  # "IncludeSynoyms" in Kafka's older JSON files
    include_documentation: bool = wire(BOOL, "3+")


@dataclass(slots=True, kw_only=True)
class DescribeConfigsSynonym(Struct):
    name: str = wire(STRING, "1+")
    value: str | None = wire(STRING, "1+", nullable="0+", default=None)
    source: int = wire(INT8, "1+")


@dataclass(slots=True, kw_only=True)
class DescribeConfigsResourceResult(Struct):
    name: str = wire(STRING)
    value: str | None = wire(STRING, nullable="0+", default=None)
    read_only: bool = wire(BOOL)
    is_default: bool = wire(BOOL, "0")  # v0 only; v1+ says it with config_source
    config_source: int = wire(INT8, "1+", default=-1)  # 1 topic, 4 static broker, 5 default, ...
    is_sensitive: bool = wire(BOOL)
    synonyms: list[DescribeConfigsSynonym] = wire(ArrayOf(DescribeConfigsSynonym), "1+")
    config_type: int = wire(INT8, "3+")  # 0 unknown, 1 boolean, 2 string, 3 int, 5 long, ...
    documentation: str | None = wire(STRING, "3+", nullable="0+", default=None)


@dataclass(slots=True, kw_only=True)
class DescribeConfigsResult(Struct):
    error_code: int = wire(INT16)
    error_message: str | None = wire(STRING, nullable="0+", default=None)
    resource_type: int = wire(INT8)
    resource_name: str = wire(STRING)
    configs: list[DescribeConfigsResourceResult] = wire(ArrayOf(DescribeConfigsResourceResult))


@dataclass(slots=True, kw_only=True)
class DescribeConfigsResponse(Struct):
    throttle_time_ms: int = wire(INT32)
    results: list[DescribeConfigsResult] = wire(ArrayOf(DescribeConfigsResult))
