"""The log cleaner: keeps, per key, the latest record of a compacted queue (cleanup.policy=compact)."""

from logq.compaction.cleaner import CleanerStats, CleanResult, clean_log
from logq.compaction.manager import LogCleaner
from logq.compaction.offset_map import OffsetMap

__all__ = ["CleanResult", "CleanerStats", "LogCleaner", "OffsetMap", "clean_log"]
