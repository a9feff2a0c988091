"""Partition assignors: what the group leader runs to split the subscribed queues' partitions between the
members. Names and results follow Kafka's client, so logq and librdkafka members can lead each other:

- ``range``: per queue, the partitions in numeric order are cut into contiguous ranges, one per member
  subscribed to that queue, in member order; the first ``partitions % members`` members get one more
  (Kafka's RangeAssignor).
- ``roundrobin``: every partition of every subscribed queue, sorted by (queue, partition), dealt in turn to
  the members in member order, skipping members not subscribed to the partition's queue (Kafka's
  RoundRobinAssignor).
- ``cooperative-sticky``: a balanced assignment that keeps every partition where it is unless moving it is
  needed for balance; a partition that changes owner is left out of this round's assignment, so its
  owner revokes it and rejoins, and the next round gives it to its new owner (KIP-429, the incremental
  protocol; Kafka's CooperativeStickyAssignor).

Member order is Kafka's (``AbstractPartitionAssignor.MemberInfo``): members with a group.instance.id
first, by instance id, then the others by member id.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from logq.client.cluster import QueuePartition
from logq.client.consumer_protocol import Subscription

RANGE = "range"
ROUND_ROBIN = "roundrobin"
COOPERATIVE_STICKY = "cooperative-sticky"
COOPERATIVE_ASSIGNORS = frozenset({COOPERATIVE_STICKY})


@dataclass(frozen=True, slots=True)
class GroupMember:
    """One member as the leader sees it in JoinGroup's answer."""

    member_id: str
    subscription: Subscription
    instance_id: str | None = None


Assignments = dict[str, list[QueuePartition]]
AssignFn = Callable[[Mapping[str, int], Sequence[GroupMember]], Assignments]


def member_order(members: Iterable[GroupMember]) -> list[GroupMember]:
    """Kafka's MemberInfo order: static members (by instance id) before dynamic ones (by member id)."""
    return sorted(
        members,
        key=lambda m: (0, m.instance_id, m.member_id) if m.instance_id is not None else (1, m.member_id, ""),
    )


def range_assign(partitions_per_queue: Mapping[str, int], members: Sequence[GroupMember]) -> Assignments:
    assignment: Assignments = {m.member_id: [] for m in members}
    ordered = member_order(members)
    for queue in sorted({q for m in members for q in m.subscription.queues}):
        count = partitions_per_queue.get(queue)
        if not count:
            continue
        consumers = [m.member_id for m in ordered if queue in m.subscription.queues]
        per_member, extra = divmod(count, len(consumers))
        for i, member_id in enumerate(consumers):
            start = per_member * i + min(i, extra)
            length = per_member + (1 if i < extra else 0)
            assignment[member_id].extend(QueuePartition(queue, p) for p in range(start, start + length))
    return assignment


def roundrobin_assign(partitions_per_queue: Mapping[str, int], members: Sequence[GroupMember]) -> Assignments:
    assignment: Assignments = {m.member_id: [] for m in members}
    ordered = member_order(members)
    if not ordered:
        return assignment
    queues = sorted({q for m in members for q in m.subscription.queues})
    turn = 0
    for queue in queues:
        for partition in range(partitions_per_queue.get(queue, 0)):
            while queue not in ordered[turn % len(ordered)].subscription.queues:
                turn += 1
            assignment[ordered[turn % len(ordered)].member_id].append(QueuePartition(queue, partition))
            turn += 1
    return assignment


def member_generation(subscription: Subscription) -> int:
    """The generation a member's owned partitions date from: the subscription's (v2+), or the user data
    of Kafka's CooperativeStickyAssignor (one int32) or of librdkafka's sticky assignors (the previous
    assignment, then an int32); -1 when unknown."""
    if subscription.generation_id >= 0:
        return subscription.generation_id
    data = subscription.user_data
    if not data or len(data) < 4:
        return -1
    if len(data) == 4:
        generation: int = struct.unpack(">i", data)[0]
        return generation
    try:  # StickyAssignorUserData v1: [topic, [partition]], generation
        pos = 4
        for _ in range(struct.unpack_from(">i", data, 0)[0]):
            (length,) = struct.unpack_from(">h", data, pos)
            pos += 2 + length
            (n,) = struct.unpack_from(">i", data, pos)
            pos += 4 + 4 * n
        if len(data) - pos != 4:
            return -1
        generation = struct.unpack_from(">i", data, pos)[0]
    except struct.error:
        return -1
    return generation


def cooperative_sticky_assign(
    partitions_per_queue: Mapping[str, int], members: Sequence[GroupMember]
) -> Assignments:
    ordered = member_order(members)
    subscribed = {m.member_id: set(m.subscription.queues) for m in ordered}
    existing = {
        QueuePartition(q, p)
        for q in set[str]().union(*subscribed.values())
        for p in range(partitions_per_queue.get(q, 0))
    }
    # 1. Valid claims: a partition that exists, of a queue the member still subscribes to, claimed by
    #    nobody with a newer generation (a member that missed a rebalance may still list old partitions).
    owner: dict[QueuePartition, str] = {}
    by_generation = sorted(ordered, key=lambda m: -member_generation(m.subscription))
    for member in by_generation:
        for tp in member.subscription.owned_partitions:
            if tp in existing and tp.queue in subscribed[member.member_id] and tp not in owner:
                owner[tp] = member.member_id
    assignment: dict[str, set[QueuePartition]] = {m.member_id: set() for m in ordered}
    for tp, member_id in owner.items():
        assignment[member_id].add(tp)
    rank = {m.member_id: i for i, m in enumerate(ordered)}

    def least_loaded(queue: str) -> str | None:
        eligible = [mid for mid in assignment if queue in subscribed[mid]]
        return min(eligible, key=lambda mid: (len(assignment[mid]), rank[mid]), default=None)

    # 2. Every unowned partition to the eligible member with the fewest partitions.
    for tp in sorted(existing - owner.keys()):
        target = least_loaded(tp.queue)
        if target is not None:
            assignment[target].add(tp)
    # 3. Balance: move partitions from the most to the least loaded eligible member while they differ
    #    by more than one; partitions the source did not own before move first.
    while True:
        move = _best_move(assignment, subscribed, owner, rank)
        if move is None:
            break
        tp, source, target = move
        assignment[source].discard(tp)
        assignment[target].add(tp)
    # 4. Incremental: a partition still owned by another member waits for the owner to revoke it.
    return {mid: sorted(tp for tp in parts if owner.get(tp, mid) == mid) for mid, parts in assignment.items()}


def _best_move(
    assignment: Mapping[str, set[QueuePartition]],
    subscribed: Mapping[str, set[str]],
    owner: Mapping[QueuePartition, str],
    rank: Mapping[str, int],
) -> tuple[QueuePartition, str, str] | None:
    by_load = sorted(assignment, key=lambda mid: (-len(assignment[mid]), rank[mid]))
    for source in by_load:
        candidates = sorted(assignment[source], key=lambda tp: (owner.get(tp) == source, tp))
        for target in reversed(by_load):
            if len(assignment[source]) - len(assignment[target]) <= 1:
                break
            for tp in candidates:
                if tp.queue in subscribed[target]:
                    return tp, source, target
    return None


ASSIGNORS: Mapping[str, AssignFn] = {
    RANGE: range_assign,
    ROUND_ROBIN: roundrobin_assign,
    COOPERATIVE_STICKY: cooperative_sticky_assign,
}


def user_data_for(assignor: str, generation: int) -> bytes | None:
    """What a member puts in its subscription's user data for ``assignor``: Kafka's cooperative-sticky
    members send their generation (an int32) once they have one; the others send nothing."""
    if assignor == COOPERATIVE_STICKY and generation >= 0:
        return struct.pack(">i", generation)
    return None
