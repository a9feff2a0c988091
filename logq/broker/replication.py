"""What a partition leader knows about its followers: pure bookkeeping, no I/O.

The rules are Kafka's (``Partition``/``Replica`` in AK core):

- a follower's Fetch says where its log ends (``fetch_offset``: it has everything below);
- a follower has *caught up* at the time of a fetch whose offset reached the leader's log end, or that
  reached the log end the leader had at the follower's previous fetch (it is keeping up, just one
  round behind); an ISR follower not caught up for ``replica.lag.time.max.ms`` leaves the ISR;
- a follower outside the ISR joins it, on one of its own fetches, once its log reaches the high
  watermark and the start of the current leader epoch (so it holds this leader's history, not a
  diverged one); a follower that leaves the ISR forgets its position, so only a new fetch brings it back;
- the low watermark (DeleteRecords) is the smallest log start over the ISR, as each follower's Fetch
  reports it; a follower whose log start is not known yet holds it;
- the high watermark is the smallest log end over the ISR (the leader's own included), counting a
  follower whose addition is being written as a member already (Kafka's "maximal ISR": ZooKeeper may
  list it before the leader hears back), and never moves back; a follower whose position is not known
  yet (no fetch since this leader took over) holds it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple


class ReplicationStatus(NamedTuple):
    """A led partition as the metrics report it."""

    partition: str  # the log's name, "<queue>-<partition>"
    replicas: int
    isr: int
    min_isr: int
    follower_lag: Mapping[int, int]  # follower id -> offsets behind the leader's log end (-1: unknown)


@dataclass(slots=True)
class FollowerProgress:
    log_end: int = -1  # unknown until its first fetch from this leader
    caught_up_ms: int = 0
    last_fetch_leader_end: int = -1
    last_fetch_ms: int = 0
    log_start: int = -1  # as its latest fetch reported it (-1: unknown)


class LeaderState:
    """One led partition: leader epoch, ISR, the followers' progress, and min.insync.replicas."""

    def __init__(
        self,
        leader_id: int,
        leader_epoch: int,
        *,
        replicas: Iterable[int],
        isr: Iterable[int],
        min_isr: int,
        epoch_start: int,
        now_ms: int,
    ) -> None:
        self.leader_id = leader_id
        self.leader_epoch = leader_epoch
        self.min_isr = min_isr
        self.epoch_start = epoch_start  # the log end when this leader epoch began
        self._isr: tuple[int, ...] = tuple(isr)
        self.followers = {r: FollowerProgress(caught_up_ms=now_ms) for r in replicas if r != leader_id}
        self.pending_isr: tuple[int, ...] | None = None  # an ISR change being written

    @property
    def isr(self) -> tuple[int, ...]:
        return self._isr

    @isr.setter
    def isr(self, isr: tuple[int, ...]) -> None:
        for replica in self._isr:
            if replica not in isr and replica in self.followers:
                self.followers[replica].log_end = -1  # out: only a new fetch may bring it back
        self._isr = tuple(isr)

    def is_replica(self, broker_id: int) -> bool:
        return broker_id in self.followers

    def on_fetch(
        self, replica: int, fetch_offset: int, leader_end: int, now_ms: int, log_start: int = -1
    ) -> None:
        follower = self.followers[replica]
        follower.log_start = log_start
        if fetch_offset >= leader_end:
            follower.caught_up_ms = max(follower.caught_up_ms, now_ms)
        elif fetch_offset >= follower.last_fetch_leader_end:
            follower.caught_up_ms = max(follower.caught_up_ms, follower.last_fetch_ms)
        follower.log_end = fetch_offset
        follower.last_fetch_leader_end = leader_end
        follower.last_fetch_ms = now_ms

    def high_watermark(self, leader_end: int) -> int:
        """The smallest log end over the ISR; -1 while an ISR follower's position is unknown."""
        ends = [leader_end]
        members = set(self._isr) | set(self.pending_isr or ())
        for replica in members:
            if replica != self.leader_id:
                follower = self.followers.get(replica)
                ends.append(follower.log_end if follower is not None else -1)
        return min(ends)

    def low_watermark(self, leader_start: int) -> int:
        """The smallest log start over the ISR; -1 while an ISR follower's log start is unknown."""
        starts = [leader_start]
        for replica in self._isr:
            if replica != self.leader_id:
                follower = self.followers.get(replica)
                starts.append(follower.log_start if follower is not None else -1)
        return min(starts)

    def lagging(self, now_ms: int, max_lag_ms: int) -> tuple[int, ...]:
        """ISR followers not caught up within ``max_lag_ms``: the ISR should drop them."""
        return tuple(
            r
            for r in self._isr
            if r in self.followers and now_ms - self.followers[r].caught_up_ms > max_lag_ms
        )

    def may_join(self, replica: int, high_watermark: int) -> bool:
        """Whether ``replica``, outside the ISR, has just reached the high watermark and this epoch's
        start (asked on its own fetch, never from another follower's old progress)."""
        follower = self.followers.get(replica)
        return (
            follower is not None
            and replica not in self._isr
            and follower.log_end >= max(high_watermark, self.epoch_start)
        )

    def enough_in_sync(self) -> bool:
        return len(self._isr) >= self.min_isr
