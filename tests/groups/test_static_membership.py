"""Static membership (KIP-345) in GroupMembership, on a fake clock: a member with a group.instance.id that
restarts takes its old place without a rebalance, and the id it replaced is fenced."""

from __future__ import annotations

import asyncio
from typing import Any

from logq.error_codes import ErrorCode
from logq.groups.membership import GroupMembership, JoinResult
from logq.groups.state import GroupState
from tests.groups.test_membership import join, membership, new_member, run


async def static_join(gm: GroupMembership, instance: str, member_id: str = "", **kwargs: Any) -> JoinResult:
    return await join(gm, member_id, instance_id=instance, **kwargs)


async def stable_pair(gm: GroupMembership, clock: Any) -> tuple[JoinResult, JoinResult]:
    """Two static members a (the leader) and b in a Stable group of generation 1."""
    a_task = asyncio.ensure_future(static_join(gm, "a"))
    await asyncio.sleep(0)
    b_task = asyncio.ensure_future(static_join(gm, "b"))
    await asyncio.sleep(0)
    clock.t += 1.1
    gm.tick()
    a, b = await a_task, await b_task
    if a.member_id != a.leader:
        a, b = b, a
    follower = asyncio.ensure_future(gm.sync("g", 1, b.member_id, {}, "b"))
    await asyncio.sleep(0)
    assert (await gm.sync("g", 1, a.member_id, {a.member_id: b"A", b.member_id: b"B"}, "a"))[1] == b"A"
    assert (await follower)[1] == b"B"
    assert gm.groups["g"].state is GroupState.STABLE
    return a, b


def test_a_static_member_joins_without_the_member_id_round_trip() -> None:
    async def scenario() -> None:
        gm, _ = membership()
        joined = await static_join(gm, "i1")  # no MEMBER_ID_REQUIRED for a static member
        assert joined.error is ErrorCode.NONE
        assert gm.groups["g"].static_members == {"i1": joined.member_id}
        assert joined.members[0][1] == "i1"  # the leader sees its members' instance ids

    run(scenario())


def test_a_restarted_static_follower_gets_its_assignment_back_without_a_rebalance() -> None:
    async def scenario() -> None:
        gm, clock = membership(delay_ms=1000)
        a, b = await stable_pair(gm, clock)
        again = await static_join(gm, "b")  # b restarts: empty member id, same instance id
        assert again.error is ErrorCode.NONE
        assert again.member_id != b.member_id
        assert (again.generation, again.leader, again.members) == (1, a.member_id, ())
        group = gm.groups["g"]
        assert group.state is GroupState.STABLE  # no rebalance: a keeps consuming
        assert gm.heartbeat("g", 1, a.member_id, "a") is ErrorCode.NONE
        assert await gm.sync("g", 1, again.member_id, {}, "b") == (ErrorCode.NONE, b"B")
        # the id it replaced is fenced, with or without its instance id
        assert gm.heartbeat("g", 1, b.member_id, "b") is ErrorCode.FENCED_INSTANCE_ID
        assert gm.heartbeat("g", 1, b.member_id) is ErrorCode.UNKNOWN_MEMBER_ID
        assert (await gm.sync("g", 1, b.member_id, {}, "b"))[0] is ErrorCode.FENCED_INSTANCE_ID
        assert (await static_join(gm, "b", b.member_id)).error is ErrorCode.FENCED_INSTANCE_ID
        assert group.check_member(b.member_id, "b") is ErrorCode.FENCED_INSTANCE_ID  # what commits check
        assert sorted(group.members) == sorted([a.member_id, again.member_id])

    run(scenario())


def test_a_restarted_static_leader_is_not_told_to_assign() -> None:
    async def scenario() -> None:
        gm, clock = membership(delay_ms=1000)
        a, _ = await stable_pair(gm, clock)
        again = await static_join(gm, "a")
        # The answer names the previous leader id: the new id does not match it, so the client does not
        # compute an assignment that a Stable group would never hand out.
        assert (again.error, again.leader, again.members) == (ErrorCode.NONE, a.member_id, ())
        assert gm.groups["g"].leader == again.member_id
        assert await gm.sync("g", 1, again.member_id, {}, "a") == (ErrorCode.NONE, b"A")

    run(scenario())


def test_a_static_rejoin_that_changes_the_chosen_protocol_rebalances() -> None:
    async def scenario() -> None:
        gm, _ = membership()
        both = [("range", b""), ("roundrobin", b"")]
        first = await static_join(gm, "s", protocols=both)
        assert first.protocol_name == "range"
        await gm.sync("g", 1, first.member_id, {}, "s")
        rejoin = asyncio.ensure_future(static_join(gm, "s", protocols=both[::-1]))
        await asyncio.sleep(0)
        # the group's protocol changes with it, so the assignment must be made again
        assert rejoin.done()
        assert ((await rejoin).generation, (await rejoin).protocol_name) == (2, "roundrobin")

    run(scenario())


def test_a_fenced_members_parked_join_is_answered_fenced() -> None:
    async def scenario() -> None:
        gm, clock = membership(delay_ms=1000)
        first = asyncio.ensure_future(static_join(gm, "s"))
        await asyncio.sleep(0)
        other = await new_member(gm)  # keeps the join phase open
        old_id = gm.groups["g"].static_members["s"]
        second = asyncio.ensure_future(static_join(gm, "s"))  # a second process with the same instance id
        await asyncio.sleep(0)
        assert (await first).error is ErrorCode.FENCED_INSTANCE_ID
        assert gm.groups["g"].static_members["s"] != old_id
        clock.t += 1.1
        gm.tick()
        assert (await second).error is ErrorCode.NONE
        assert (await other).error is ErrorCode.NONE

    run(scenario())


def test_static_members_leave_by_instance_id_and_by_session_expiry() -> None:
    async def scenario() -> None:
        gm, clock = membership(delay_ms=1000)
        _, b = await stable_pair(gm, clock)
        group = gm.groups["g"]
        assert gm.leave("g", "", "nobody") is ErrorCode.UNKNOWN_MEMBER_ID
        assert gm.leave("g", "someone-else", "b") is ErrorCode.FENCED_INSTANCE_ID
        assert gm.leave("g", "", "b") is ErrorCode.NONE  # LeaveGroup v3: by instance id alone
        assert b.member_id not in group.members
        assert "b" not in group.static_members
        assert group.state is GroupState.PREPARING_REBALANCE
        clock.t += 11  # a never rejoins nor heartbeats: its session (10 s) expires
        gm.tick()
        assert group.state is GroupState.EMPTY
        assert group.static_members == {}
        again_task = asyncio.ensure_future(static_join(gm, "a"))  # a fresh start, not a replacement
        await asyncio.sleep(0)
        clock.t += 1.1  # the initial rebalance delay of a group that was empty
        gm.tick()
        again = await again_task
        assert again.error is ErrorCode.NONE
        assert again.generation == group.generation

    run(scenario())
