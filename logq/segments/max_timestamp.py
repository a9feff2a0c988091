"""Each segment's largest batch timestamp, for ListOffsets MAX_TIMESTAMP (KIP-734) when the time index
cannot answer.

The time index usually answers at once: its entries mark each rise of the running max timestamp, so
the last entry below a limit names the batch with the largest timestamp below that limit. It cannot
once retention has deleted that batch: the largest timestamp still in the log never rose above it, so
no entry names it. Then every segment's own maximum is needed. ``SegmentMaxima`` remembers, per
segment, the largest timestamp among the batches walked so far and where its batch is, and walks only
the batch headers appended since the last question, so a request reads few headers however long the
log is.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass

from logq.segments.segment import Segment


@dataclass(slots=True)
class SegmentMax:
    """What a walk over a prefix of a segment's batches found."""

    walked_to: int  # the position after the last batch walked
    end_offset: int  # the offset after the last batch walked
    max_timestamp: int = -1  # -1: no batch with a timestamp yet
    position: int = -1  # of the first batch holding max_timestamp


def walk(segment: Segment, found: SegmentMax, limit: int) -> SegmentMax:
    """Extend ``found`` over the batches after it that lie wholly below ``limit`` (it is updated)."""
    for position, header in segment.headers(found.walked_to):
        if header.last_offset >= limit:
            break
        if header.max_timestamp > found.max_timestamp:  # strictly: the first of equals wins, as in Kafka
            found.max_timestamp, found.position = header.max_timestamp, position
        found.walked_to, found.end_offset = position + header.size, header.last_offset + 1
    return found


class SegmentMaxima:
    """Per segment, the walk so far. The owner (the log, under its lock) calls ``forget`` when it cuts a
    segment back; a segment replaced by a new file is a new object, so nothing stale is found for it."""

    def __init__(self) -> None:
        self._known: weakref.WeakKeyDictionary[Segment, SegmentMax] = weakref.WeakKeyDictionary()

    def forget(self, segment: Segment) -> None:
        self._known.pop(segment, None)

    def segment_max(self, segment: Segment, limit: int) -> SegmentMax:
        """The largest timestamp among the batches of ``segment`` wholly below ``limit``."""
        known = self._known.get(segment)
        if known is not None and known.end_offset > limit:  # a lower limit than before (rare): walk afresh
            return walk(segment, SegmentMax(0, segment.base_offset), limit)
        if known is None:
            known = self._known[segment] = SegmentMax(0, segment.base_offset)
        return walk(segment, known, limit)

    def largest(
        self, segments: Sequence[Segment], limit: int, start: int, start_position: int
    ) -> tuple[Segment, int] | None:
        """The segment and position of the first batch with the largest timestamp in [start, limit),
        or None when no batch there has a timestamp. ``start_position`` is where ``start`` lies in the
        first segment."""
        best: tuple[Segment, int] | None = None
        best_timestamp = -1
        for i, segment in enumerate(segments):
            if segment.base_offset >= limit:
                break
            if i == 0 and start > segment.base_offset:  # the log starts inside it: only that part counts
                found = walk(segment, SegmentMax(start_position, start), limit)
            else:
                found = self.segment_max(segment, limit)
            if found.max_timestamp > best_timestamp:
                best, best_timestamp = (segment, found.position), found.max_timestamp
        return best
