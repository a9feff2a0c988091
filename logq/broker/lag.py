"""Consumer lag, computed by the broker: per group and partition, the committed offset, the log end, the
lag in messages and the age of the oldest unconsumed message, and whether the partition's owner stalled.

Which partitions: every partition of every queue the group consumes, that is the queues its live
members subscribe to or are assigned, and the queues it has committed offsets for. A partition the group
never committed to is not left out: its lag counts from the log start (``committed`` is -1), what a
consumer with ``auto.offset.reset=earliest`` would read; the broker cannot know a member's reset policy,
and counting too much lag is safer for an alert than counting none.

Committed offsets are clamped into [log start, high watermark]: a group whose offset points into data
that retention deleted is behind by everything that is left, not by more. The age is measured on the
producer timestamp of the first unconsumed batch (batch granularity). A partition's owner is stalled when
the partition is assigned, has lag, and has seen neither a fetch nor a commit for ``stalled_after_ms``.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from logq import batch as rb
from logq.errors import LogqError
from logq.groups.membership import GroupMembership
from logq.groups.offsets import OffsetStore
from logq.segments import PartitionLog


@dataclass(frozen=True, slots=True)
class PartitionLag:
    group: str
    queue: str
    partition: int
    committed: int  # -1: the group has not committed here (lag counts from the log start)
    log_end: int
    lag: int
    oldest_unconsumed_age_ms: int  # 0 when there is no lag
    owner: str | None  # the member the partition is assigned to, if the group is consuming it
    stalled: bool


class LagTracker:
    def __init__(
        self,
        *,
        offsets: OffsetStore,
        membership: GroupMembership,
        log_for: Callable[[str, int], PartitionLog | None],
        partitions_of: Callable[[str], int],
        last_fetch_ms: Callable[[str, int], int],
        now_ms: Callable[[], int],
        stalled_after_ms: int,
    ) -> None:
        self._offsets = offsets
        self._membership = membership
        self._log_for = log_for
        self._partitions_of = partitions_of  # a queue's partition count, 0 if it does not exist
        self._last_fetch_ms = last_fetch_ms
        self._now_ms = now_ms
        self._stalled_after_ms = stalled_after_ms

    # The offset store and the groups are the event loop's: these run on the loop. The metrics server's
    # thread asks through ``all_from_thread``.

    def all_from_thread(self, loop: asyncio.AbstractEventLoop, timeout_s: float = 10) -> list[PartitionLag]:
        """``all()``, computed on ``loop`` for a caller on another thread (the metrics server), or at once
        on the loop's own thread."""
        try:
            if asyncio.get_running_loop() is loop:
                return list(self.all())
        except RuntimeError:  # no loop in this thread
            pass

        async def collect() -> list[PartitionLag]:
            return list(self.all())

        return asyncio.run_coroutine_threadsafe(collect(), loop).result(timeout_s)

    def groups(self) -> list[str]:
        names: set[str] = set(self._membership.groups)
        for partition in range(self._offsets.partitions):
            if self._offsets.loaded(partition):
                names.update(self._offsets.groups(partition))
        return sorted(names)

    def lag(self, group: str) -> list[PartitionLag]:
        now = self._now_ms()
        owners, subscribed = self._owners_and_subscriptions(group)
        committed = self._offsets.fetch(group)
        queues = subscribed | {queue for queue, _ in committed} | {queue for queue, _ in owners}
        out = []
        for queue in sorted(queues):
            for partition in range(self._partitions_of(queue)):
                plog = self._log_for(queue, partition)
                if plog is None:
                    continue  # cluster mode: not hosted on this broker
                done = committed.get((queue, partition))
                end = plog.high_watermark
                start = plog.log_start_offset
                position = start if done is None else min(max(done.offset, start), end)
                lag = end - position
                age = self._age_ms(plog, position, now) if lag > 0 else 0
                owner = owners.get((queue, partition))
                quiet_since = max(
                    self._last_fetch_ms(queue, partition), done.commit_timestamp_ms if done else -1
                )
                stalled = owner is not None and lag > 0 and now - quiet_since > self._stalled_after_ms
                offset = -1 if done is None else done.offset
                out.append(PartitionLag(group, queue, partition, offset, end, lag, age, owner, stalled))
        return out

    def all(self) -> Iterator[PartitionLag]:
        for group in self.groups():
            yield from self.lag(group)

    @staticmethod
    def _age_ms(plog: PartitionLog, offset: int, now: int) -> int:
        try:
            data = plog.read(offset, rb.HEADER_SIZE)
        except LogqError:
            return 0
        if len(data) < rb.HEADER_SIZE:
            return 0
        return max(0, now - rb.parse_header(data).base_timestamp)

    def _owners_and_subscriptions(self, group_id: str) -> tuple[dict[tuple[str, int], str], set[str]]:
        """Who owns which partition, and which queues the live members subscribe to."""
        group = self._membership.groups.get(group_id)
        if group is None or group.protocol_type != "consumer":
            return {}, set()
        owners = {}
        subscribed: set[str] = set()
        for member in list(group.members.values()):
            for queue, partitions in decode_consumer_assignment(member.assignment):
                for partition in partitions:
                    owners[(queue, partition)] = member.member_id
            subscribed.update(decode_consumer_subscription(member.metadata_for(group.protocol_name or "")))
        return owners, subscribed


def decode_consumer_assignment(data: bytes) -> list[tuple[str, list[int]]]:
    """The (queue, partitions) of a ConsumerProtocolAssignment (any version: the topics come first after
    the int16 version); [] for bytes that are not one."""
    try:
        pos = 2
        (count,) = struct.unpack_from(">i", data, pos)
        pos += 4
        out = []
        for _ in range(max(count, 0)):
            (length,) = struct.unpack_from(">h", data, pos)
            name = data[pos + 2 : pos + 2 + length].decode()
            pos += 2 + length
            (n,) = struct.unpack_from(">i", data, pos)
            out.append((name, list(struct.unpack_from(f">{max(n, 0)}i", data, pos + 4))))
            pos += 4 + 4 * max(n, 0)
        return out
    except (struct.error, UnicodeDecodeError):
        return []


def decode_consumer_subscription(data: bytes) -> list[str]:
    """The queues of a ConsumerProtocolSubscription (any version: the topics come first after the int16
    version); [] for bytes that are not one."""
    try:
        (count,) = struct.unpack_from(">i", data, 2)
        pos = 6
        out = []
        for _ in range(max(count, 0)):
            (length,) = struct.unpack_from(">h", data, pos)
            if length < 0 or pos + 2 + length > len(data):
                return []
            out.append(data[pos + 2 : pos + 2 + length].decode())
            pos += 2 + length
        return out
    except (struct.error, UnicodeDecodeError):
        return []
