"""The retention job: deletes aged segments (retention.ms) and trims partitions to retention.bytes."""

from logq.retention.job import RetentionJob, RetentionStats
from logq.retention.policy import Deletion, select_deletable

__all__ = ["Deletion", "RetentionJob", "RetentionStats", "select_deletable"]
