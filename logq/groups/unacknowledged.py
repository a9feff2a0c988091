"""Commits that are in the offsets log but not acknowledged yet, kept out of OffsetFetch until they are.

An OffsetCommit is appended first and acknowledged after the fsync and, in cluster mode, after every
ISR member has it. Until then (and for ever, if that fails) OffsetFetch must keep answering the last
acknowledged value: a consumer that read a commit the ISR never got would see its position go back after
a failover. Kafka keeps such commits pending the same way.

For each (group, queue, partition) with a commit in flight this holds the value OffsetFetch answers and
the commits in flight, in log order. A commit acknowledged makes its value visible and settles the older
ones; a failed one is only dropped. The store's memory (what replay of the log gives, and what
compaction snapshots) always has the newest written value; this table only hides it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from logq.groups.offset_records import OffsetAndMetadata

TopicPartition = tuple[str, int]


@dataclass(slots=True)
class _Hidden:
    visible: OffsetAndMetadata | None  # what OffsetFetch answers (None: no acknowledged commit)
    in_flight: list[tuple[int, OffsetAndMetadata]] = field(default_factory=list)  # (last offset, value)


class UnacknowledgedCommits:
    """Per group: the partitions whose newest written commit is not acknowledged. Not thread-safe: the
    offset store calls it under its lock."""

    def __init__(self) -> None:
        self._groups: dict[str, dict[TopicPartition, _Hidden]] = {}

    def written(
        self,
        group: str,
        tp: TopicPartition,
        last_offset: int,
        value: OffsetAndMetadata,
        before: OffsetAndMetadata | None,
    ) -> None:
        """A commit of ``value`` was appended in the batch ending at ``last_offset``; ``before`` is the
        store's value it replaced (visible unless a commit was already in flight)."""
        hidden = self._groups.setdefault(group, {}).setdefault(tp, _Hidden(before))
        hidden.in_flight.append((last_offset, value))

    def settled(
        self,
        group: str,
        tp: TopicPartition,
        last_offset: int,
        acknowledged: bool,
        newest: OffsetAndMetadata | None,
    ) -> None:
        """The commit in the batch ending at ``last_offset`` was acknowledged (or failed). ``newest`` is
        the store's current value: once nothing is in flight and it is the visible one, the key is no
        longer hidden."""
        partitions = self._groups.get(group)
        hidden = partitions.get(tp) if partitions is not None else None
        if hidden is None:
            return
        for i, (offset, value) in enumerate(hidden.in_flight):
            if offset == last_offset:
                if acknowledged:  # older commits in flight are overtaken by this one
                    hidden.visible = value
                    del hidden.in_flight[: i + 1]
                else:
                    del hidden.in_flight[i]
                break
        if not hidden.in_flight and hidden.visible == newest:
            self.forget(group, tp)

    def hidden(self, group: str) -> dict[TopicPartition, OffsetAndMetadata | None]:
        """The group's hidden partitions and what OffsetFetch answers for each."""
        return {tp: h.visible for tp, h in self._groups.get(group, {}).items()}

    def forget(self, group: str, tp: TopicPartition | None = None) -> None:
        """A tombstone replaced the commits (``tp`` None: the whole group)."""
        if tp is None:
            self._groups.pop(group, None)
            return
        partitions = self._groups.get(group)
        if partitions is not None:
            partitions.pop(tp, None)
            if not partitions:
                del self._groups[group]
