"""The placement of a grown queue's new partitions (pure): they continue the queue's round of
preferred leaders, keep its replication factor, and explicit assignments are checked."""

from __future__ import annotations

import pytest

from logq.coordinator.assignment import assign_replicas
from logq.coordinator.growth import new_partition_replicas
from logq.errors import InvalidPartitionsError, InvalidReplicaAssignmentError

LIVE = [1, 2, 3]


def test_new_partitions_continue_the_round_of_preferred_leaders() -> None:
    current = assign_replicas(3, 2, LIVE, start_index=1)  # leaders 2, 3, 1
    added = new_partition_replicas(current, 7, None, LIVE, max_partitions=100)
    assert [r[0] for r in added] == [2, 3, 1, 2]
    assert all(len(r) == 2 and len(set(r)) == 2 for r in added)


def test_checks_say_what_is_wrong() -> None:
    current = [(1, 2), (2, 3)]
    with pytest.raises(InvalidPartitionsError, match="never removed"):
        new_partition_replicas(current, 1, None, LIVE, max_partitions=100)
    with pytest.raises(InvalidPartitionsError, match="already has 2"):
        new_partition_replicas(current, 2, None, LIVE, max_partitions=100)
    with pytest.raises(InvalidPartitionsError, match="at most 100"):
        new_partition_replicas(current, 101, None, LIVE, max_partitions=100)
    with pytest.raises(InvalidReplicaAssignmentError, match="needs 2 live brokers"):
        new_partition_replicas(current, 3, None, [1], max_partitions=100)
    with pytest.raises(InvalidReplicaAssignmentError, match="2 assignment"):
        new_partition_replicas(current, 3, [[1, 2], [2, 3]], LIVE, max_partitions=100)
    with pytest.raises(InvalidReplicaAssignmentError, match="replication factor is 2"):
        new_partition_replicas(current, 3, [[1]], LIVE, max_partitions=100)
    with pytest.raises(InvalidReplicaAssignmentError, match="twice"):
        new_partition_replicas(current, 3, [[1, 1]], LIVE, max_partitions=100)
    with pytest.raises(InvalidReplicaAssignmentError, match="4 that are not live"):
        new_partition_replicas(current, 3, [[4, 1]], LIVE, max_partitions=100)
    assert new_partition_replicas(current, 3, [[3, 1]], LIVE, max_partitions=100) == [(3, 1)]
