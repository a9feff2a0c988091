"""Growing a queue: where its new partitions go. Pure: both coordinators (and a broker answering a
validate-only request) decide with the same rules, Kafka's (``AdminZkClient.addPartitions``):

- the new total must be larger than the current count (a queue never shrinks: its keys would move and
  its data would be lost) and at most ``max_partitions``;
- without explicit assignments the new partitions are placed as a new queue's are
  (``assignment.assign_replicas``), continuing the queue's pattern: the placement of the grown queue is
  computed from the broker that holds partition 0's preferred replica, and the tail is taken;
- explicit assignments give one replica list per new partition, each with the queue's replication
  factor, no broker twice, only live brokers.
"""

from __future__ import annotations

from collections.abc import Sequence

from logq.coordinator.assignment import assign_replicas
from logq.errors import InvalidPartitionsError, InvalidReplicaAssignmentError


def new_partition_replicas(
    current: Sequence[Sequence[int]],
    new_total: int,
    assignments: Sequence[Sequence[int]] | None,
    live: Sequence[int],
    *,
    max_partitions: int,
) -> list[tuple[int, ...]]:
    """The replicas of each partition to add to a queue whose partitions have ``current`` replicas;
    raises InvalidPartitionsError or InvalidReplicaAssignmentError with a message saying why."""
    count = len(current)
    if new_total < count:
        raise InvalidPartitionsError(
            f"the queue has {count} partitions, more than the {new_total} asked for: "
            "a queue's partitions can be added, never removed"
        )
    if new_total == count:
        raise InvalidPartitionsError(f"the queue already has {count} partitions")
    if new_total > max_partitions:
        raise InvalidPartitionsError(f"a queue may have at most {max_partitions} partitions, not {new_total}")
    replication = len(current[0]) if current else 1
    added = new_total - count
    ids = sorted(set(live))
    if assignments is None:
        if replication > len(ids):
            raise InvalidReplicaAssignmentError(
                f"the queue's replication factor {replication} needs {replication} live brokers; "
                f"{len(ids)} are live ({', '.join(map(str, ids)) or 'none'})"
            )
        first = current[0][0] if current and current[0] else None
        start = ids.index(first) if first in ids else None
        return assign_replicas(new_total, replication, ids, start_index=start)[count:]
    if len(assignments) != added:
        raise InvalidReplicaAssignmentError(
            f"adding {added} partition(s) but {len(assignments)} assignment(s) given: one per new partition"
        )
    out = []
    for offset, brokers in enumerate(assignments):
        index = count + offset
        if len(brokers) != replication:
            raise InvalidReplicaAssignmentError(
                f"partition {index} is given {len(brokers)} replica(s); the queue's replication factor "
                f"is {replication}"
            )
        if len(set(brokers)) != len(brokers):
            raise InvalidReplicaAssignmentError(f"partition {index} names a broker twice: {list(brokers)}")
        unknown = sorted(set(brokers) - set(ids))
        if unknown:
            raise InvalidReplicaAssignmentError(
                f"partition {index} names broker(s) {', '.join(map(str, unknown))} that are not live"
            )
        out.append(tuple(brokers))
    return out
