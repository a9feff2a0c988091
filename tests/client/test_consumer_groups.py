"""Groups of consumer processes on a real broker: a logq member killed with SIGKILL (the others take over,
nothing is lost), groups mixing logq and confluent-kafka members led by either (eager range, and
cooperative-sticky: no partition owned twice, nothing lost or read twice), and a member riding out a
restart of the broker that coordinates its group."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

import pytest

from logq.client.consumer import Consumer
from logq.errors import CommitFailedError
from tests.broker_process import BrokerProcess
from tests.client.test_consumer import (
    FAST,
    GROUP_SETTINGS,
    cbroker,
    committed_by_confluent,
    create,
    poll_until,
    produce,
    run,
)
from tests.groups.test_group_members import wait_for
from tests.member_process import MemberProcess

__all__ = ["cbroker"]  # the fixture


def logq_member(
    bootstrap: str, queue: str, group: str, seconds: float, session_ms: int = 6000
) -> MemberProcess:
    args = [bootstrap, queue, group, str(seconds), "range", str(session_ms)]
    return MemberProcess("tests.client.consumer_member", *args)


def confluent_member(bootstrap: str, queue: str, group: str, seconds: float) -> MemberProcess:
    return MemberProcess("tests.groups.group_member", bootstrap, queue, group, "confluent", str(seconds))


def values(start: int, count: int) -> list[bytes]:
    return [b"v%06d" % i for i in range(start, start + count)]


def test_a_killed_logq_member_s_partitions_move_to_the_others_and_nothing_is_lost(
    cbroker: BrokerProcess,
) -> None:
    bootstrap = cbroker.bootstrap
    create(bootstrap, "kill", 6)
    members = [logq_member(bootstrap, "kill", "kill-g", 40, session_ms=2000) for _ in range(3)]
    try:
        wait_for(lambda: [len(x.assignment) for x in members] == [2, 2, 2], 30, "two partitions each")
        produce(bootstrap, "kill", values(0, 300))
        victim, survivors = members[0], members[1:]
        wait_for(lambda: bool(victim.consumed), 20, "the victim to consume")
        victim.kill()
        produce(bootstrap, "kill", values(300, 300))
        took = wait_for(
            lambda: sorted(p for x in survivors for p in x.assignment) == list(range(6)), 20, "takeover"
        )
        assert took < 2 + 8  # the session timeout (2 s) plus the rebalance, with slack for this machine
        expected = {v.decode() for v in values(0, 600)}
        try:
            wait_for(lambda: set().union(*(x.values for x in members)) >= expected, 30, "every value")
        except AssertionError:
            missing = sorted(expected - set().union(*(x.values for x in members)))
            raise AssertionError(f"missing {len(missing)}: {missing[:10]}") from None
        assert not set(survivors[0].assignment) & set(survivors[1].assignment)
    finally:
        for member in members:
            member.kill()


@pytest.mark.parametrize("leader", ["logq", "confluent"])
def test_a_mixed_group_of_logq_and_confluent_members_shares_the_partitions(
    cbroker: BrokerProcess, leader: str
) -> None:
    """The first member to join leads the group and computes the assignment: once logq, once librdkafka."""
    bootstrap = cbroker.bootstrap
    queue, group = f"mixed-{leader}", f"mixed-{leader}-g"
    create(bootstrap, queue, 4)
    kinds = [logq_member, confluent_member] if leader == "logq" else [confluent_member, logq_member]
    members = [kinds[0](bootstrap, queue, group, 30)]
    try:
        wait_for(lambda: len(members[0].assignment) == 4, 30, f"the {leader} member to lead")
        members += [kinds[1](bootstrap, queue, group, 30), kinds[0](bootstrap, queue, group, 30)]
        members.append(kinds[1](bootstrap, queue, group, 30))
        wait_for(
            lambda: (
                sorted(p for x in members for p in x.assignment) == [0, 1, 2, 3]
                and all(len(x.assignment) == 1 for x in members)
            ),
            40,
            "one partition each",
        )
        produce(bootstrap, queue, values(0, 400))
        wait_for(lambda: len(set().union(*(x.consumed for x in members))) == 400, 30, "every message")
        assert sorted(p for x in members for p in x.assignment) == [0, 1, 2, 3]  # no partition twice
        # each member read only its own partition: no record was read twice
        for member in members:
            assert {p for p, _ in member.consumed} == set(member.assignment)
        assert sum(len(x.consumed) for x in members) == 400
    finally:
        for member in members:
            member.kill()


def test_a_group_member_rides_out_a_broker_restart(tmp_path: Path) -> None:
    """The coordinator goes away and comes back (on the same address, its group state lost): the member
    finds it again, rejoins and resumes from the committed offsets."""
    broker = BrokerProcess(tmp_path / "data", broker=GROUP_SETTINGS).start()
    bootstrap = broker.bootstrap
    try:
        create(bootstrap, "rs", 2)
        produce(bootstrap, "rs", values(0, 100))

        async def scenario() -> None:
            settings: dict[str, Any] = {"group_id": "rs-g", "auto_offset_reset": "earliest", **FAST}
            async with Consumer(bootstrap, enable_auto_commit=False, **settings) as consumer:
                consumer.subscribe(["rs"])
                first = await poll_until(consumer, 100)
                await consumer.commit()
                await asyncio.to_thread(broker.restart)
                await asyncio.to_thread(produce, bootstrap, "rs", values(100, 100))
                second = await poll_until(consumer, 100, seconds=40)
                assert {r.value for r in first + second} == set(values(0, 200))
                await commit_after_rebalances(consumer)
            assert committed_by_confluent(bootstrap, "rs-g", "rs", 2) == [100, 100]

        run(scenario)
    finally:
        broker.kill()


async def commit_after_rebalances(consumer: Consumer, attempts: int = 5) -> None:
    """Commit the positions; a rebalance in between (the member rejoining a restarted coordinator, on a
    slow machine maybe twice) refuses it: poll, as an application would, and commit again."""
    for _ in range(attempts - 1):
        try:
            await consumer.commit()
            return
        except CommitFailedError:
            while await consumer.poll(1.0):  # rejoin, and read again what followed the last commit
                pass
    await consumer.commit()


def grows_then_shrinks(history: list[set[int]]) -> bool:
    """True when each assignment contains the one before until the largest, then is within the one before.

    A joining member receives partitions over several cooperative rounds as their owners release them, so
    its assignment may grow step by step; after that it may only give partitions away."""
    steps = list(itertools.pairwise(history))
    peak = next((i for i, (a, b) in enumerate(steps) if not a <= b), len(steps))
    return all(b <= a for a, b in steps[peak:])


@pytest.mark.parametrize("leader", ["logq", "confluent"])
def test_a_cooperative_sticky_group_of_logq_and_confluent_members(
    cbroker: BrokerProcess, leader: str
) -> None:
    """Incremental rebalancing across clients: members keep their partitions, only what moves is revoked,
    nothing is read twice."""
    bootstrap = cbroker.bootstrap
    queue, group = f"coop-{leader}", f"coop-{leader}-g"
    create(bootstrap, queue, 6)
    other = "confluent" if leader == "logq" else "logq"

    def member(client: str) -> MemberProcess:
        args = [bootstrap, queue, group, "30", "cooperative-sticky", "6000", client]
        return MemberProcess("tests.client.consumer_member", *args)

    members = [member(leader)]
    try:
        wait_for(lambda: len(members[0].assignment) == 6, 30, f"the {leader} member to lead")
        produce(bootstrap, queue, values(0, 300))
        members.append(member(other))
        wait_for(lambda: [len(x.assignment) for x in members] == [3, 3], 30, "two members")
        members.append(member(other))
        wait_for(lambda: [len(x.assignment) for x in members] == [2, 2, 2], 30, "three members")
        produce(bootstrap, queue, values(300, 300))
        wait_for(lambda: len(set().union(*(x.consumed for x in members))) == 600, 30, "every message")
        assert sorted(p for x in members for p in x.assignment) == list(range(6))
        for x in members:  # sticky: a member's partitions only grow while it joins, then only shrink
            history = [set(e["assigned"]) for e in x.events if e.get("assigned")]
            assert grows_then_shrinks(history), history
        assert sum(len(x.consumed) for x in members) == 600  # nothing read twice
    finally:
        for x in members:
            x.kill()
