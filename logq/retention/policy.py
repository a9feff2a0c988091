"""Which segments retention deletes: a pure function of the segments' metadata and the settings.

Rules (after Kafka's ``deleteRetentionMsBreachedSegments`` and ``deleteRetentionSizeBreachedSegments``):
- Only a prefix of the log is ever deleted, oldest first, and never the active segment or a segment
  holding data at or above the high watermark.
- retention.ms: a segment goes once its newest batch is older than retention.ms, measured on the
  broker's append time (so a producer clock set in the future cannot pin data on disk). -1 disables.
- retention.bytes: the oldest segment goes while the partition stays at or above retention.bytes
  without it. -1 disables.
- the log start offset (``deleteLogStartOffsetBreachedSegments``): a segment wholly below it goes,
  whatever its age (DeleteRecords moved the start past it). The segment holding the start stays.
- cleanup.policy: retention.ms and retention.bytes apply with ``delete`` and ``compact,delete``; with
  ``compact`` alone neither does (the log cleaner keeps the partition bounded by key instead). The log
  start applies whatever the policy, as in Kafka.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from logq.segments.log import SegmentInfo


@dataclass(frozen=True, slots=True)
class Deletion:
    base_offset: int
    size: int
    reason: str


def select_deletable(
    segments: Sequence[SegmentInfo],
    *,
    now_ms: int,
    retention_ms: int,
    retention_bytes: int,
    high_watermark: int,
    log_start_offset: int = 0,
    cleanup_policy: str = "delete",
) -> list[Deletion]:
    deletions: list[Deletion] = []
    by_time_and_size = "delete" in cleanup_policy.split(
        ","
    )  # Kafka: the log start applies whatever the policy
    total = sum(s.size for s in segments)
    for segment in segments:
        if segment.active or segment.end_offset > high_watermark:
            break
        age = now_ms - segment.last_append_ms
        if segment.end_offset <= log_start_offset:
            reason = f"below the log start offset {log_start_offset}"
        elif not by_time_and_size:
            break
        elif retention_ms >= 0 and segment.last_append_ms >= 0 and age > retention_ms:
            reason = f"retention.ms: newest data is {age} ms old (limit {retention_ms} ms)"
        elif retention_bytes >= 0 and total - segment.size >= retention_bytes:
            reason = f"retention.bytes: partition holds {total} bytes (limit {retention_bytes})"
        else:
            break
        deletions.append(Deletion(segment.base_offset, segment.size, reason))
        total -= segment.size
    return deletions
