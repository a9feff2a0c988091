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

# A walk holds the log's lock; a long one (after a restart, over a large log) gives it up after this many
# bytes of batches, so appends and reads go on, and carries on from where it stopped.
WALK_BYTES_PER_STEP = 8 << 20


@dataclass(slots=True)
class SegmentMax:
    """What a walk over a prefix of a segment's batches found."""

    walked_to: int  # the position after the last batch walked
    end_offset: int  # the offset after the last batch walked
    max_timestamp: int = -1  # -1: no batch with a timestamp yet
    position: int = -1  # of the first batch holding max_timestamp


@dataclass(slots=True)
class _Budget:
    bytes_left: int | None  # None: no limit


def walk(segment: Segment, found: SegmentMax, limit: int, budget: _Budget) -> bool:
    """Extend ``found`` (in place) over the batches after it that lie wholly below ``limit``; False if
    the budget ran out first."""
    for position, header in segment.headers(found.walked_to):
        if header.last_offset >= limit:
            return True
        if budget.bytes_left is not None:
            if budget.bytes_left <= 0:
                return False
            budget.bytes_left -= header.size
        if header.max_timestamp > found.max_timestamp:  # strictly: the first of equals wins, as in Kafka
            found.max_timestamp, found.position = header.max_timestamp, position
        found.walked_to, found.end_offset = position + header.size, header.last_offset + 1
    return True


class SegmentMaxima:
    """Per segment, the walk so far. The owner (the log, under its lock) calls ``forget`` when it cuts a
    segment back; a segment replaced by a new file is a new object, so nothing stale is found for it."""

    def __init__(self) -> None:
        self._known: weakref.WeakKeyDictionary[Segment, SegmentMax] = weakref.WeakKeyDictionary()

    def forget(self, segment: Segment) -> None:
        self._known.pop(segment, None)

    def _segment_max(self, segment: Segment, limit: int, budget: _Budget) -> SegmentMax | None:
        """The largest timestamp among the batches of ``segment`` wholly below ``limit`` (None: the
        budget ran out; the walk so far is kept)."""
        known = self._known.get(segment)
        if known is not None and known.end_offset > limit:  # a lower limit than before (rare): walk afresh
            afresh = SegmentMax(0, segment.base_offset)
            walk(segment, afresh, limit, _Budget(None))
            return afresh
        if known is None:
            known = self._known[segment] = SegmentMax(0, segment.base_offset)
        return known if walk(segment, known, limit, budget) else None

    def largest(
        self, segments: Sequence[Segment], limit: int, start: int, start_position: int
    ) -> tuple[bool, tuple[Segment, int] | None]:
        """(done, the segment and position of the first batch with the largest timestamp in [start,
        limit), or None when no batch there has a timestamp). Not done: the walk stopped after
        WALK_BYTES_PER_STEP; call again (with the lock released in between) to go on.
        ``start_position`` is where ``start`` lies in the first segment."""
        budget = _Budget(WALK_BYTES_PER_STEP)
        best: tuple[Segment, int] | None = None
        best_timestamp = -1
        for i, segment in enumerate(segments):
            if segment.base_offset >= limit:
                break
            found: SegmentMax | None
            if i == 0 and start > segment.base_offset:  # the log starts inside it: only that part counts
                found = SegmentMax(start_position, start)
                walk(segment, found, limit, _Budget(None))
            else:
                found = self._segment_max(segment, limit, budget)
            if found is None:
                return False, None
            if found.max_timestamp > best_timestamp:
                best, best_timestamp = (segment, found.position), found.max_timestamp
        return True, best
