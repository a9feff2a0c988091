"""The leader-epoch history of one partition log (KIP-101): (epoch, start offset) pairs.

An entry says that ``epoch`` wrote its first batch at ``start offset``; epochs and start offsets both
strictly increase. It is derived data, like the rest of the index: every stored batch carries its leader
epoch in partitionLeaderEpoch (bytes 12-15), so the history can always be rebuilt by replaying the batch
headers in order. Epoch -1 ("no epoch", a standalone broker) records nothing.

Not thread-safe: used only under its log's ``_lock`` (or by the loader before the log exists).
"""

from __future__ import annotations

from collections.abc import Iterable

from logq.errors import FencedLeaderEpochError

NO_EPOCH = -1
MAX_EPOCH = (1 << 31) - 1


class LeaderEpochHistory:
    def __init__(self, entries: Iterable[tuple[int, int]] = ()) -> None:
        self._entries: list[tuple[int, int]] = []
        for epoch, start in sorted(entries):
            self.replay(epoch, start)
        self._dirty = False

    @property
    def latest_epoch(self) -> int:
        return self._entries[-1][0] if self._entries else NO_EPOCH

    def entries(self) -> list[tuple[int, int]]:
        return list(self._entries)

    def check(self, epoch: int) -> None:
        """Raise unless ``epoch`` may be appended: -1, or at least the latest recorded epoch."""
        if epoch == NO_EPOCH:
            return
        if not 0 <= epoch <= MAX_EPOCH:
            raise ValueError(f"leader epoch {epoch} is not -1 or an int32 >= 0")
        if epoch < self.latest_epoch:
            raise FencedLeaderEpochError(
                f"leader epoch {epoch} is older than the log's latest leader epoch {self.latest_epoch}"
            )

    def assign(self, epoch: int, start_offset: int) -> None:
        """Record that ``epoch`` starts at ``start_offset`` if it is newer than the latest (after check()).
        Entries starting at or after ``start_offset`` go (Kafka's assign): an epoch that began there and
        wrote nothing (a leader that took over and lost the lead at once) ended before it started."""
        if epoch > self.latest_epoch:
            while self._entries and self._entries[-1][1] >= start_offset:
                self._entries.pop()
            self._entries.append((epoch, start_offset))
            self._dirty = True

    def replay(self, epoch: int, start_offset: int) -> None:
        """Recovery and replication: assign() for a stored batch, ignoring epochs that do not move
        forward (the stored bytes are trusted; they were checked on append)."""
        self.assign(epoch, start_offset)

    def truncate_from_end(self, end_offset: int) -> None:
        """The log was truncated to ``end_offset``: forget the epochs that started at or after it."""
        kept = [e for e in self._entries if e[1] < end_offset]
        if len(kept) != len(self._entries):
            self._entries = kept
            self._dirty = True

    def truncate_from_start(self, start_offset: int) -> None:
        """The log start moved to ``start_offset`` (retention): drop the epochs that ended before it and
        clamp the start of the epoch that covers it (Kafka's truncateFromStart)."""
        covering = -1
        for i, (_, start) in enumerate(self._entries):
            if start <= start_offset:
                covering = i
        if covering < 0:
            return
        epoch, start = self._entries[covering]
        if covering == 0 and start == start_offset:
            return
        self._entries = [(epoch, start_offset), *self._entries[covering + 1 :]]
        self._dirty = True

    def end_offset_for(self, epoch: int, log_end_offset: int) -> tuple[int, int]:
        """OffsetForLeaderEpoch, as Kafka's LeaderEpochFileCache.endOffsetFor: for the latest epoch,
        (it, the log end); for an older one, (the largest known epoch <= it, the start offset of the next
        known epoch); below the first known, (the asked epoch, the first epoch's start); (-1, -1) for -1,
        for an epoch above the latest, or with no history."""
        entries = self._entries
        if epoch == NO_EPOCH or not entries:
            return NO_EPOCH, -1
        if epoch == entries[-1][0]:
            return epoch, log_end_offset
        higher = next((i for i, (known, _) in enumerate(entries) if known > epoch), None)
        if higher is None:
            return NO_EPOCH, -1
        if higher == 0:
            return epoch, entries[0][1]
        return entries[higher - 1][0], entries[higher][1]

    def take_changes(self) -> list[tuple[int, int]] | None:
        """The whole history if it changed since the last call (it is persisted whole), else None."""
        if not self._dirty:
            return None
        self._dirty = False
        return list(self._entries)

    def restore_changes(self, changes: list[tuple[int, int]] | None) -> None:
        """A write of take_changes() failed: write the history again next time."""
        if changes is not None:
            self._dirty = True

    def mark_dirty(self) -> None:
        self._dirty = True
