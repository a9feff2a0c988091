"""DescribeLogDirs (key 35, v0-1).

Field lists follow Apache Kafka's ``DescribeLogDirsRequest.json``/``DescribeLogDirsResponse.json``
(non-flexible versions only: v2 is the first flexible one; v1 is the same as v0).
"""

from __future__ import annotations

from dataclasses import dataclass

from logq.protocol.schema import BOOL, INT16, INT32, INT64, STRING, ArrayOf, Struct, wire

__all__ = [
    "DescribableLogDirTopic",
    "DescribeLogDirsPartition",
    "DescribeLogDirsRequest",
    "DescribeLogDirsResponse",
    "DescribeLogDirsResult",
    "DescribeLogDirsTopic",
]


@dataclass(slots=True, kw_only=True)
class DescribableLogDirTopic(Struct):
    topic: str = wire(STRING)
    partitions: list[int] = wire(ArrayOf(INT32))


@dataclass(slots=True, kw_only=True)
class DescribeLogDirsRequest(Struct):
    # null: every partition of every queue; [] : none (the log dirs are still listed)
    topics: list[DescribableLogDirTopic] | None = wire(ArrayOf(DescribableLogDirTopic), nullable="0+")


@dataclass(slots=True, kw_only=True)
class DescribeLogDirsPartition(Struct):
    partition_index: int = wire(INT32)
    partition_size: int = wire(INT64)  # bytes in the partition's segment files
    offset_lag: int = wire(INT64)
    is_future_key: bool = wire(BOOL)


@dataclass(slots=True, kw_only=True)
class DescribeLogDirsTopic(Struct):
    name: str = wire(STRING)
    partitions: list[DescribeLogDirsPartition] = wire(ArrayOf(DescribeLogDirsPartition))


@dataclass(slots=True, kw_only=True)
class DescribeLogDirsResult(Struct):
    error_code: int = wire(INT16)
    log_dir: str = wire(STRING)  # the absolute path of the directory
    topics: list[DescribeLogDirsTopic] = wire(ArrayOf(DescribeLogDirsTopic))


@dataclass(slots=True, kw_only=True)
class DescribeLogDirsResponse(Struct):
    throttle_time_ms: int = wire(INT32)
    results: list[DescribeLogDirsResult] = wire(ArrayOf(DescribeLogDirsResult))
