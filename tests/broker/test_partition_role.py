"""The role table of a hosted partition (logq/broker/partition_role.py): every (role, event) pair is
either a rule of the table or an InvalidRoleTransition, and the rules say what the module promises."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from logq.broker.partition_role import TRANSITIONS, InvalidRoleTransition, Role, RoleEvent, transition


@given(role=st.sampled_from(Role), event=st.sampled_from(RoleEvent))
def test_every_pair_is_a_rule_or_an_error(role: Role, event: RoleEvent) -> None:
    if (role, event) in TRANSITIONS:
        assert transition(role, event) is TRANSITIONS[(role, event)]
    else:
        with pytest.raises(InvalidRoleTransition):
            transition(role, event)


def test_deleted_is_terminal_and_reached_from_every_role() -> None:
    for role in Role:
        assert transition(role, RoleEvent.DELETE) is Role.DELETED
    assert {event for (role, event) in TRANSITIONS if role is Role.DELETED} == {RoleEvent.DELETE}


def test_nothing_is_served_before_the_log_is_open() -> None:
    for event in RoleEvent:
        if event not in (RoleEvent.HOST, RoleEvent.DELETE):
            assert transition(Role.UNHOSTED, event) is Role.UNHOSTED
    assert transition(Role.UNHOSTED, RoleEvent.HOST) is Role.NO_LEADER


def test_a_fence_stops_only_a_leader_and_only_a_new_lead_lifts_it() -> None:
    assert transition(Role.LEADER, RoleEvent.FENCE) is Role.FENCED
    assert transition(Role.FOLLOWER, RoleEvent.FENCE) is Role.FOLLOWER
    assert transition(Role.FENCED, RoleEvent.NO_LEADER) is Role.FENCED
    assert transition(Role.FENCED, RoleEvent.LEAD) is Role.LEADER
    only_from_hosted = {role for (role, event), after in TRANSITIONS.items() if after is Role.LEADER}
    assert Role.UNHOSTED not in only_from_hosted  # a partition leads only with its log open
