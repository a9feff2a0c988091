"""The group state machine over every state x event (as h2 tests its connection state machine)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from logq.error_codes import ErrorCode
from logq.groups.state import (
    HEARTBEAT_ANSWER,
    SYNC_ANSWER,
    TRANSITIONS,
    GroupEvent,
    GroupState,
    InvalidTransition,
    commit_answer,
    transition,
)


@given(state=st.sampled_from(GroupState), event=st.sampled_from(GroupEvent))
def test_every_pair_is_either_a_valid_transition_or_refused(state: GroupState, event: GroupEvent) -> None:
    if (state, event) in TRANSITIONS:
        assert transition(state, event) in GroupState
    else:
        with pytest.raises(InvalidTransition, match=f"invalid event {event.value} in state {state.value}"):
            transition(state, event)


@given(st.lists(st.sampled_from(GroupEvent), max_size=50))
def test_random_event_sequences_never_leave_the_state_set(events: list[GroupEvent]) -> None:
    state = GroupState.EMPTY
    for event in events:
        try:
            state = transition(state, event)
        except InvalidTransition:
            continue
        if state is GroupState.DEAD:
            assert all(
                transition(state, e) is GroupState.DEAD for e in GroupEvent if (state, e) in TRANSITIONS
            )


def test_kafka_previous_state_rules_hold() -> None:
    """Kafka's ``validPreviousStates``: each state is entered only from these."""
    allowed = {
        GroupState.PREPARING_REBALANCE: {GroupState.STABLE, GroupState.COMPLETING_REBALANCE, GroupState.EMPTY,
                                          GroupState.PREPARING_REBALANCE},
        GroupState.COMPLETING_REBALANCE: {GroupState.PREPARING_REBALANCE},
        GroupState.STABLE: {GroupState.COMPLETING_REBALANCE},
        GroupState.EMPTY: {GroupState.PREPARING_REBALANCE},
        GroupState.DEAD: set(GroupState),
    }  # fmt: skip
    for (before, _event), after in TRANSITIONS.items():
        assert before in allowed[after], (before, after)


def test_every_state_can_reach_stable_and_dead() -> None:
    for start in GroupState:
        if start is GroupState.DEAD:
            continue
        seen, frontier = {start}, [start]
        while frontier:
            state = frontier.pop()
            for (before, _), after in TRANSITIONS.items():
                if before is state and after not in seen:
                    seen.add(after)
                    frontier.append(after)
        assert {GroupState.STABLE, GroupState.DEAD} <= seen


def test_answers_cover_every_state() -> None:
    assert set(HEARTBEAT_ANSWER) == set(GroupState) == set(SYNC_ANSWER)
    assert HEARTBEAT_ANSWER[GroupState.PREPARING_REBALANCE] is ErrorCode.REBALANCE_IN_PROGRESS


U, F, N = ErrorCode.UNKNOWN_MEMBER_ID, ErrorCode.FENCED_INSTANCE_ID, ErrorCode.NONE


@pytest.mark.parametrize(
    ("state", "commit", "expected"),
    [
        # generation -1, no member: the AdminClient, assign() users and kcat
        (GroupState.EMPTY, (-1, False, U, False), ErrorCode.NONE),
        (GroupState.STABLE, (-1, False, U, False), ErrorCode.UNKNOWN_MEMBER_ID),
        (GroupState.PREPARING_REBALANCE, (-1, False, U, False), ErrorCode.UNKNOWN_MEMBER_ID),
        (GroupState.COMPLETING_REBALANCE, (-1, False, U, False), ErrorCode.UNKNOWN_MEMBER_ID),
        # members
        (GroupState.EMPTY, (3, True, U, False), ErrorCode.UNKNOWN_MEMBER_ID),
        (GroupState.STABLE, (3, True, N, True), ErrorCode.NONE),
        (GroupState.PREPARING_REBALANCE, (3, True, N, True), ErrorCode.NONE),
        (GroupState.COMPLETING_REBALANCE, (3, True, N, True), ErrorCode.REBALANCE_IN_PROGRESS),
        (GroupState.STABLE, (3, True, U, True), ErrorCode.UNKNOWN_MEMBER_ID),
        (GroupState.STABLE, (3, True, F, True), ErrorCode.FENCED_INSTANCE_ID),
        (GroupState.STABLE, (3, True, N, False), ErrorCode.ILLEGAL_GENERATION),
        (GroupState.STABLE, (-1, True, N, False), ErrorCode.ILLEGAL_GENERATION),
        (GroupState.DEAD, (-1, False, U, False), ErrorCode.COORDINATOR_NOT_AVAILABLE),
    ],
)
def test_commit_answers(
    state: GroupState, commit: tuple[int, bool, ErrorCode, bool], expected: ErrorCode
) -> None:
    generation, identified, member_error, matches = commit
    answer = commit_answer(
        state, generation=generation, identified=identified, member_error=member_error,
        generation_matches=matches,
    )  # fmt: skip
    assert answer is expected
