"""The partition log: append-only segment files of RecordBatch v2 bytes, indexed in one RocksDB per
data directory. No networking and no cluster logic here; the broker drives it.

See docs/architecture.md for the on-disk layout and the recovery passes.
"""

from logq.segments.creator import NewPartition
from logq.segments.log import AppendInfo, PartitionLog
from logq.segments.manager import LogManager

__all__ = ["AppendInfo", "LogManager", "NewPartition", "PartitionLog"]
