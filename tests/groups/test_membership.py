"""Group membership (JoinGroup/SyncGroup/Heartbeat/LeaveGroup and their timeouts) on a fake clock."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

import pytest

from logq.error_codes import ErrorCode
from logq.groups.membership import (
    EMPTY_CONSUMER_ASSIGNMENT,
    GroupMembership,
    JoinResult,
    MembershipConfig,
)
from logq.groups.state import GroupState

T = TypeVar("T")


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def membership(delay_ms: int = 0) -> tuple[GroupMembership, Clock]:
    clock = Clock()
    return GroupMembership(MembershipConfig(initial_rebalance_delay_ms=delay_ms), clock), clock


async def join(gm: GroupMembership, member_id: str = "", **kwargs: Any) -> JoinResult:
    args: dict[str, Any] = {
        "instance_id": None, "client_id": "c", "client_host": "/127.0.0.1", "session_timeout_ms": 10_000,
        "rebalance_timeout_ms": 30_000, "protocol_type": "consumer", "protocols": [("range", b"meta")],
        "require_known_member_id": True,
    } | kwargs  # fmt: skip
    return await gm.join("g", member_id, **args)


async def new_member(gm: GroupMembership, **kwargs: Any) -> asyncio.Task[JoinResult]:
    first = await join(gm, **kwargs)
    assert first.error is ErrorCode.MEMBER_ID_REQUIRED
    task = asyncio.ensure_future(join(gm, first.member_id, **kwargs))
    await asyncio.sleep(0)
    return task


def run(coro: Awaitable[T]) -> T:
    async def main() -> T:
        return await coro

    return asyncio.run(main())


def test_one_member_joins_syncs_and_is_stable() -> None:
    async def scenario() -> None:
        gm, _ = membership()
        joined = await (await new_member(gm))
        assert joined.error is ErrorCode.NONE
        assert (joined.generation, joined.leader, joined.protocol_name) == (1, joined.member_id, "range")
        assert [m[0] for m in joined.members] == [joined.member_id]
        error, assignment = await gm.sync("g", 1, joined.member_id, {joined.member_id: b"mine"})
        assert (error, assignment) == (ErrorCode.NONE, b"mine")
        assert gm.groups["g"].state is GroupState.STABLE
        assert gm.heartbeat("g", 1, joined.member_id) is ErrorCode.NONE

    run(scenario())


def test_two_members_the_follower_waits_for_the_leaders_assignment() -> None:
    async def scenario() -> None:
        gm, clock = membership(delay_ms=1000)
        first = await new_member(gm)
        second = await new_member(gm)
        assert not first.done()  # held for the initial rebalance delay
        clock.t += 1.1
        gm.tick()
        a, b = await first, await second
        assert a.generation == b.generation == 1
        leader, follower = (a, b) if a.member_id == a.leader else (b, a)
        assert len(leader.members) == 2
        assert not follower.members
        parked = asyncio.ensure_future(gm.sync("g", 1, follower.member_id, {}))
        await asyncio.sleep(0)
        assert not parked.done()
        assert gm.heartbeat("g", 1, follower.member_id) is ErrorCode.NONE  # CompletingRebalance answers 0
        await gm.sync("g", 1, leader.member_id, {leader.member_id: b"all"})
        # a follower the leader gave nothing still gets a decodable, empty consumer assignment
        assert await parked == (ErrorCode.NONE, EMPTY_CONSUMER_ASSIGNMENT)

    run(scenario())


def test_a_dead_members_session_expires_and_the_group_rebalances() -> None:
    async def scenario() -> None:
        gm, clock = membership()
        a = await (await new_member(gm))
        await gm.sync("g", 1, a.member_id, {})
        b_task = await new_member(gm)  # a second member triggers a rebalance
        assert gm.heartbeat("g", 1, a.member_id) is ErrorCode.REBALANCE_IN_PROGRESS
        a2 = asyncio.ensure_future(join(gm, a.member_id))
        b = await b_task
        await a2
        await gm.sync("g", 2, b.leader, {})
        clock.t += 5
        assert gm.heartbeat("g", 2, b.member_id) is ErrorCode.NONE
        clock.t += 6  # a has been silent for 11 s > its 10 s session
        gm.tick()
        assert a.member_id not in gm.groups["g"].members
        assert gm.heartbeat("g", 2, b.member_id) is ErrorCode.REBALANCE_IN_PROGRESS
        rejoined = await join(gm, b.member_id)
        assert (rejoined.error, rejoined.generation, rejoined.leader) == (ErrorCode.NONE, 3, b.member_id)

    run(scenario())


def test_errors_of_protocol_md_section_7() -> None:
    async def scenario() -> None:
        gm, _ = membership()
        no_group = await gm.join(
            "", "", instance_id=None, client_id="c", client_host="h", session_timeout_ms=10_000,
            rebalance_timeout_ms=1000, protocol_type="consumer", protocols=[("range", b"")],
            require_known_member_id=True,
        )  # fmt: skip
        assert no_group.error is ErrorCode.INVALID_GROUP_ID
        assert (await join(gm, session_timeout_ms=10)).error is ErrorCode.INVALID_SESSION_TIMEOUT
        assert (await join(gm, "nobody")).error is ErrorCode.UNKNOWN_MEMBER_ID
        a = await (await new_member(gm))
        assert (await join(gm, protocols=[("other", b"")])).error is ErrorCode.INCONSISTENT_GROUP_PROTOCOL
        assert (await join(gm, protocol_type="connect")).error is ErrorCode.INCONSISTENT_GROUP_PROTOCOL
        assert (await gm.sync("g", 7, a.member_id, {}))[0] is ErrorCode.ILLEGAL_GENERATION
        assert gm.heartbeat("g", 7, a.member_id) is ErrorCode.ILLEGAL_GENERATION
        assert gm.heartbeat("g", 1, "stranger") is ErrorCode.UNKNOWN_MEMBER_ID
        assert gm.heartbeat("nogroup", 1, a.member_id) is ErrorCode.UNKNOWN_MEMBER_ID
        assert gm.leave("g", "stranger") is ErrorCode.UNKNOWN_MEMBER_ID
        # an old client (JoinGroup v0-3) gets a member id without the MEMBER_ID_REQUIRED round trip
        old = asyncio.ensure_future(join(gm, require_known_member_id=False))
        await asyncio.sleep(0)
        assert not old.done()

    run(scenario())


def test_leaving_empties_the_group() -> None:
    async def scenario() -> None:
        gm, _ = membership()
        a = await (await new_member(gm))
        await gm.sync("g", 1, a.member_id, {})
        assert gm.leave("g", a.member_id) is ErrorCode.NONE
        assert gm.groups["g"].state is GroupState.EMPTY
        assert gm.heartbeat("g", 1, a.member_id) is ErrorCode.UNKNOWN_MEMBER_ID

    run(scenario())


def test_a_member_that_does_not_rejoin_is_dropped_at_the_rebalance_timeout() -> None:
    async def scenario() -> None:
        gm, clock = membership()
        a = await (await new_member(gm, rebalance_timeout_ms=5000))
        await gm.sync("g", 1, a.member_id, {})
        b_task = await new_member(gm, rebalance_timeout_ms=5000)
        clock.t += 3  # a heartbeats (learns of the rebalance) but never rejoins
        assert gm.heartbeat("g", 1, a.member_id) is ErrorCode.REBALANCE_IN_PROGRESS
        clock.t += 3
        gm.tick()
        b = await b_task
        assert (b.generation, b.leader) == (2, b.member_id)
        assert list(gm.groups["g"].members) == [b.member_id]

    run(scenario())


@pytest.mark.parametrize("leader_syncs", [True, False])
def test_members_that_never_sync_are_removed(leader_syncs: bool) -> None:
    async def scenario() -> None:
        gm, clock = membership()
        a = await (await new_member(gm, rebalance_timeout_ms=2000))
        assert gm.groups["g"].state is GroupState.COMPLETING_REBALANCE
        clock.t += 2.5
        gm.tick()
        assert a.member_id not in gm.groups["g"].members
        assert gm.groups["g"].state is GroupState.EMPTY

    run(scenario())


def test_empty_groups_whose_offsets_are_gone_are_forgotten() -> None:
    async def scenario() -> None:
        gm, _ = membership()
        a = await (await new_member(gm))
        await gm.sync("g", 1, a.member_id, {})
        assert gm.forget_empty(lambda group_id: False) == []  # a group with members stays
        gm.leave("g", a.member_id)
        assert gm.forget_empty(lambda group_id: True) == []  # its offsets are still kept
        assert gm.forget_empty(lambda group_id: False) == ["g"]  # they expired: it leaves ListGroups
        assert "g" not in gm.groups

    run(scenario())
