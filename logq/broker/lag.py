"""Consumer lag, computed by the broker: per group and partition, the committed offset, the log end, the
lag in messages and the age of the oldest unconsumed message, and whether the partition's owner stalled.

Committed offsets are clamped into [log start, high watermark]: a group whose offset points into data
that retention deleted is behind by everything that is left, not by more. The age is measured on the
producer timestamp of the first unconsumed batch (batch granularity). A partition's owner is stalled when
the partition is assigned, has lag, and has seen neither a fetch nor a commit for ``stalled_after_ms``.
"""

from __future__ import annotations

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
    committed: int
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
        last_fetch_ms: Callable[[str, int], int],
        now_ms: Callable[[], int],
        stalled_after_ms: int,
    ) -> None:
        self._offsets = offsets
        self._membership = membership
        self._log_for = log_for
        self._last_fetch_ms = last_fetch_ms
        self._now_ms = now_ms
        self._stalled_after_ms = stalled_after_ms

    # Called from the metrics server's thread while the event loop changes groups: iterate over copies.

    def groups(self) -> list[str]:
        names: set[str] = set(self._membership.groups)  # one C-level copy, atomic under the GIL
        for partition in range(self._offsets.partitions):
            if self._offsets.loaded(partition):
                names.update(self._offsets.groups(partition))
        return sorted(names)

    def lag(self, group: str) -> list[PartitionLag]:
        now = self._now_ms()
        owners = self._owners(group)
        out = []
        for (queue, partition), committed in sorted(self._offsets.fetch(group).items()):
            plog = self._log_for(queue, partition)
            if plog is None:
                continue
            end = plog.high_watermark
            position = min(max(committed.offset, plog.log_start_offset), end)
            lag = end - position
            age = self._age_ms(plog, position, now) if lag > 0 else 0
            owner = owners.get((queue, partition))
            quiet_since = max(self._last_fetch_ms(queue, partition), committed.commit_timestamp_ms)
            stalled = owner is not None and lag > 0 and now - quiet_since > self._stalled_after_ms
            out.append(PartitionLag(group, queue, partition, committed.offset, end, lag, age, owner, stalled))
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

    def _owners(self, group_id: str) -> dict[tuple[str, int], str]:
        group = self._membership.groups.get(group_id)
        if group is None or group.protocol_type != "consumer":
            return {}
        owners = {}
        for member in list(group.members.values()):
            for queue, partitions in decode_consumer_assignment(member.assignment):
                for partition in partitions:
                    owners[(queue, partition)] = member.member_id
        return owners


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
