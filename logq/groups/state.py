"""The classic consumer-group state machine, as a table (no I/O, no clock, no members).

Rule 1: every state change of a group happens through ``transition()``, which consults ``TRANSITIONS``;
a pair missing from the table is a bug and raises ``InvalidTransition``. Rule 2: the answers a request
gets in each state (the error codes of Kafka's classic group coordinator) are tables and functions here
too, so the coordinator's handlers only look them up.

States (Kafka's ``ClassicGroupState``):

    EMPTY ---join---> PREPARING_REBALANCE ---joins complete---> COMPLETING_REBALANCE ---leader sync---> STABLE
      ^                  |  ^   (no member left)                   |                                   |
      +------------------+  +------ member leaves, expires, or joins with new metadata ----------------+
    any state ---unload/delete---> DEAD
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType

from logq.error_codes import ErrorCode


class GroupState(enum.Enum):
    EMPTY = "Empty"
    PREPARING_REBALANCE = "PreparingRebalance"
    COMPLETING_REBALANCE = "CompletingRebalance"
    STABLE = "Stable"
    DEAD = "Dead"


class GroupEvent(enum.Enum):
    JOIN = "join"  # a member joins, rejoins with new metadata, or the leader rejoins
    JOINS_COMPLETE = "joins-complete"  # every known member rejoined, or the rebalance timeout fired
    ALL_MEMBERS_GONE = "all-members-gone"  # the join phase ended with no member left
    LEADER_SYNC = "leader-sync"  # the leader's SyncGroup brought the assignment
    MEMBER_GONE = "member-gone"  # a LeaveGroup or a session expiry, members remain
    SYNC_TIMEOUT = "sync-timeout"  # members did not sync within the rebalance timeout
    UNLOAD = "unload"  # the group is deleted or this broker stops coordinating it


class InvalidTransition(Exception):  # noqa: N818 - the name says what happened, as in h2
    pass


S, E = GroupState, GroupEvent

TRANSITIONS: Mapping[tuple[GroupState, GroupEvent], GroupState] = MappingProxyType(
    {
        (S.EMPTY, E.JOIN): S.PREPARING_REBALANCE,
        (S.EMPTY, E.UNLOAD): S.DEAD,
        (S.PREPARING_REBALANCE, E.JOIN): S.PREPARING_REBALANCE,
        (S.PREPARING_REBALANCE, E.MEMBER_GONE): S.PREPARING_REBALANCE,
        (S.PREPARING_REBALANCE, E.JOINS_COMPLETE): S.COMPLETING_REBALANCE,
        (S.PREPARING_REBALANCE, E.ALL_MEMBERS_GONE): S.EMPTY,
        (S.PREPARING_REBALANCE, E.UNLOAD): S.DEAD,
        (S.COMPLETING_REBALANCE, E.JOIN): S.PREPARING_REBALANCE,
        (S.COMPLETING_REBALANCE, E.MEMBER_GONE): S.PREPARING_REBALANCE,
        (S.COMPLETING_REBALANCE, E.SYNC_TIMEOUT): S.PREPARING_REBALANCE,
        (S.COMPLETING_REBALANCE, E.LEADER_SYNC): S.STABLE,
        (S.COMPLETING_REBALANCE, E.UNLOAD): S.DEAD,
        (S.STABLE, E.JOIN): S.PREPARING_REBALANCE,
        (S.STABLE, E.MEMBER_GONE): S.PREPARING_REBALANCE,
        (S.STABLE, E.UNLOAD): S.DEAD,
        (S.DEAD, E.UNLOAD): S.DEAD,
    }
)


def transition(state: GroupState, event: GroupEvent) -> GroupState:
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise InvalidTransition(f"invalid event {event.value} in state {state.value}") from None


# What a known member's request gets in each state, before generation checks (docs/protocol.md,
# "Consumer groups").
HEARTBEAT_ANSWER: Mapping[GroupState, ErrorCode] = MappingProxyType(
    {
        S.EMPTY: ErrorCode.UNKNOWN_MEMBER_ID,
        S.PREPARING_REBALANCE: ErrorCode.REBALANCE_IN_PROGRESS,  # how members learn to rejoin
        S.COMPLETING_REBALANCE: ErrorCode.NONE,
        S.STABLE: ErrorCode.NONE,
        S.DEAD: ErrorCode.COORDINATOR_NOT_AVAILABLE,
    }
)

SYNC_ANSWER: Mapping[GroupState, ErrorCode] = MappingProxyType(
    {
        S.EMPTY: ErrorCode.UNKNOWN_MEMBER_ID,
        S.PREPARING_REBALANCE: ErrorCode.REBALANCE_IN_PROGRESS,
        S.COMPLETING_REBALANCE: ErrorCode.NONE,  # parked until the leader's assignment arrives
        S.STABLE: ErrorCode.NONE,  # answered with the stored assignment
        S.DEAD: ErrorCode.COORDINATOR_NOT_AVAILABLE,
    }
)


def commit_answer(
    state: GroupState, *, generation: int, identified: bool, member_error: ErrorCode, generation_matches: bool
) -> ErrorCode:
    """OffsetCommit's answer, in the order of Kafka's ``ClassicGroup.validateOffsetCommit``.

    ``identified``: the commit names a generation >= 0, a member id or an instance id; ``member_error``
    is ``Group.check_member``'s verdict on them. A commit with generation -1 and no member (the
    AdminClient, assign() users, kcat) is accepted only while the group is Empty; a group with members
    answers it UNKNOWN_MEMBER_ID (only members may commit). A member's commit of the current generation
    is accepted in Stable and PreparingRebalance (the generation has not moved yet) and refused with
    REBALANCE_IN_PROGRESS in CompletingRebalance.
    """
    if state is S.DEAD:
        return ErrorCode.COORDINATOR_NOT_AVAILABLE
    if generation < 0 and state is S.EMPTY:
        return ErrorCode.NONE
    if identified:
        if member_error:
            return member_error
        if not generation_matches:
            return ErrorCode.ILLEGAL_GENERATION
    elif state is not S.EMPTY:
        return ErrorCode.UNKNOWN_MEMBER_ID
    if state is S.COMPLETING_REBALANCE:
        return ErrorCode.REBALANCE_IN_PROGRESS
    return ErrorCode.NONE
