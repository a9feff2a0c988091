"""Replica placement and the controller's leader/ISR rules (pure functions, no ZooKeeper)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from logq.coordinator.assignment import (
    NO_LEADER,
    LeaderAndIsr,
    assign_replicas,
    choose_leader,
    initial_state,
    leader_counts,
    next_state,
    preferred_leader,
    preferred_state,
)


def test_kafka_reference_assignment() -> None:
    """Kafka's AdminUtils test: 5 brokers, 10 partitions, RF 3, fixed start index 0."""
    expected = [
        (0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 0), (4, 0, 1),
        (0, 2, 3), (1, 3, 4), (2, 4, 0), (3, 0, 1), (4, 1, 2),
    ]  # fmt: skip
    assert assign_replicas(10, 3, [4, 3, 2, 1, 0], start_index=0, replica_shift=0) == expected


@given(
    brokers=st.sets(st.integers(0, 1000), min_size=1, max_size=12),
    rounds=st.integers(1, 4),
    data=st.data(),
)
def test_assignment_spreads_replicas_and_leaders(brokers: set[int], rounds: int, data: st.DataObject) -> None:
    n = len(brokers)
    rf = data.draw(st.integers(1, n))
    partitions = n * rounds
    assignment = assign_replicas(partitions, rf, sorted(brokers), rng=random.Random(data.draw(st.integers())))
    assert len(assignment) == partitions
    assert all(len(set(r)) == rf and set(r) <= brokers for r in assignment)
    # Every broker is the preferred leader of exactly `rounds` partitions, and holds rf * rounds replicas.
    assert dict(leader_counts(assignment)) == dict.fromkeys(brokers, rounds)
    counts = {b: sum(b in r for r in assignment) for b in brokers}
    assert set(counts.values()) == {rf * rounds}


def test_assignment_refuses_impossible_requests() -> None:
    with pytest.raises(ValueError, match="larger than 2 brokers"):
        assign_replicas(1, 3, [1, 2])
    with pytest.raises(ValueError, match="at least 1"):
        assign_replicas(1, 0, [1, 2])


def test_leader_choice() -> None:
    assert preferred_leader((3, 1, 2)) == 3
    assert choose_leader((3, 1, 2), isr=(1, 2, 3), live={1, 2}) == 1  # assignment order, not ISR order
    assert choose_leader((3, 1, 2), isr=(3,), live={1, 2}) == NO_LEADER


def test_initial_state() -> None:
    assert initial_state((2, 1, 3), live={1, 2, 3}) == LeaderAndIsr(2, 0, (2, 1, 3))
    assert initial_state((2, 1, 3), live={1, 3}) == LeaderAndIsr(1, 0, (1, 3))
    assert initial_state((2, 1), live={5}) == LeaderAndIsr(NO_LEADER, 0, (2, 1))


REPLICAS = (1, 2, 3)
FULL = LeaderAndIsr(1, 4, (1, 2, 3))


def test_lost_leader_is_replaced_by_a_live_isr_member_with_an_epoch_bump() -> None:
    assert next_state(FULL, REPLICAS, live={2, 3}) == LeaderAndIsr(2, 5, (2, 3))
    assert next_state(LeaderAndIsr(1, 4, (1, 3)), REPLICAS, live={2, 3}) == LeaderAndIsr(3, 5, (3,))


def test_lost_follower_leaves_the_isr_without_an_epoch_bump() -> None:
    assert next_state(FULL, REPLICAS, live={1, 3}) == LeaderAndIsr(1, 4, (1, 3))
    assert next_state(FULL, REPLICAS, live={1, 2, 3}) is None


def test_no_live_isr_member_means_no_leader_and_the_last_isr_is_kept() -> None:
    alone = LeaderAndIsr(3, 4, (3,))
    offline = next_state(alone, REPLICAS, live={1, 2})
    assert offline == LeaderAndIsr(NO_LEADER, 5, (3,))
    assert next_state(offline, REPLICAS, live={1, 2}) is None  # a replica outside the ISR never leads
    assert next_state(offline, REPLICAS, live={1, 2, 3}) == LeaderAndIsr(3, 6, (3,))
    # Unclean election (off by default) takes any live replica and starts a new ISR.
    assert next_state(offline, REPLICAS, live={1, 2}, unclean=True) == LeaderAndIsr(1, 6, (1,))


def test_a_returning_broker_is_not_put_back_in_the_isr() -> None:
    shrunk = LeaderAndIsr(1, 4, (1,))
    assert next_state(shrunk, REPLICAS, live={1, 2, 3}) is None


def test_a_restarted_broker_counts_as_lost_and_back() -> None:
    # The leader restarted: another ISR member takes over and the restarted one leaves the ISR.
    assert next_state(FULL, REPLICAS, live={1, 2, 3}, bounced={1}) == LeaderAndIsr(2, 5, (2, 3))
    # The only ISR member restarted: it leads again, but in a new leader epoch.
    alone = LeaderAndIsr(1, 4, (1,))
    assert next_state(alone, REPLICAS, live={1, 2, 3}, bounced={1}) == LeaderAndIsr(1, 6, (1,))
    # A follower restarted: it leaves the ISR.
    assert next_state(FULL, REPLICAS, live={1, 2, 3}, bounced={3}) == LeaderAndIsr(1, 4, (1, 2))


def test_a_controlled_shutdown_hands_leadership_to_the_next_isr_member_and_leaves_the_isrs() -> None:
    # The leader shuts down: the next ISR member in assignment order leads in a new epoch.
    assert next_state(FULL, REPLICAS, live={1, 2, 3}, shutting={1}) == LeaderAndIsr(2, 5, (2, 3))
    # A follower shuts down: it leaves the ISR; the leader and its epoch stay.
    assert next_state(FULL, REPLICAS, live={1, 2, 3}, shutting={3}) == LeaderAndIsr(1, 4, (1, 2))
    # The last in-sync copy cannot be handed over: nothing changes.
    alone = LeaderAndIsr(1, 4, (1,))
    assert next_state(alone, REPLICAS, live={1, 2, 3}, shutting={1}) is None
    # Once it has moved, the same shutdown changes nothing more.
    moved = LeaderAndIsr(2, 5, (2, 3))
    assert next_state(moved, REPLICAS, live={1, 2, 3}, shutting={1}) is None


def test_a_partition_goes_back_to_its_preferred_leader_when_that_one_is_in_sync() -> None:
    moved = LeaderAndIsr(2, 5, (2, 3, 1))
    assert preferred_state(moved, REPLICAS, live={1, 2, 3}) == LeaderAndIsr(1, 6, (2, 3, 1))
    assert preferred_state(LeaderAndIsr(2, 5, (2, 3)), REPLICAS, live={1, 2, 3}) is None  # 1 not in sync
    assert preferred_state(moved, REPLICAS, live={2, 3}) is None  # 1 is down
    assert preferred_state(moved, REPLICAS, live={1, 2, 3}, shutting={1}) is None
    assert preferred_state(FULL, REPLICAS, live={1, 2, 3}) is None  # already there
    assert preferred_state(LeaderAndIsr(-1, 5, (1,)), REPLICAS, live={2, 3}) is None  # the election's job
