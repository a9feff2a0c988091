"""The broker's middle in one process: three brokers' ReplicaManagers and Partitions on real logs, a
FakeCoordinator as the controller, followers copying their leaders by direct calls (logq.testing.cluster).
Leader changes, ISR shrink and expand, the high watermark, fencing and acks=all, in milliseconds."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest

from logq import batch as rb
from logq.broker.partition import Origin
from logq.error_codes import ErrorCode
from logq.errors import LogqError, ReplicationError
from logq.testing import FakeClock, make_batch
from logq.testing.cluster import FakeCoordinator, InProcessBroker

T = TypeVar("T")
LAG_MS = 10_000


def run(scenario: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        return await scenario()

    return asyncio.run(main())


async def cluster(
    tmp: Path, *, min_isr: int = 2
) -> tuple[FakeCoordinator, dict[int, InProcessBroker], FakeClock]:
    clock = FakeClock()
    coordinator = FakeCoordinator([1, 2, 3], min_insync_replicas=min_isr)
    coordinator.create_queue("q", 1)
    brokers = {
        i: InProcessBroker(tmp / f"b{i}", i, coordinator, clock=clock, replica_lag_time_max_ms=LAG_MS)
        for i in (1, 2, 3)
    }
    for broker in brokers.values():
        await broker.start()
    return coordinator, brokers, clock


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def values(broker: InProcessBroker, upto: int | None = None) -> list[bytes]:
    """The record values of the broker's log of q-0 (up to an offset), in order."""
    plog = broker.partition("q", 0).log
    assert plog is not None
    end = plog.log_end_offset if upto is None else upto
    out: list[bytes] = []
    offset = plog.log_start_offset
    while offset < end:
        view = plog.read(offset, 1 << 20)
        position = 0
        while position < len(view):
            header = rb.parse_header(view, position)
            records = rb.decode_records(view[position + rb.HEADER_SIZE : position + header.size], header)
            out += [r.value or b"" for r in records if r.offset < end]
            position += header.size
            offset = header.last_offset + 1
    return out


def test_acks_all_is_answered_once_every_isr_member_has_the_batch(tmp_path: Path) -> None:
    async def scenario() -> None:
        _, brokers, _ = await cluster(tmp_path)
        leader = brokers[1].partition("q", 0)
        info = leader.append_as_leader(make_batch(2, tag=1), acks=-1, origin=Origin.CLIENT)
        waiting = asyncio.ensure_future(leader.wait_acknowledged(info, acks=-1, timeout_ms=60_000))
        await settle()
        assert not waiting.done()
        assert leader.high_watermark == 0  # the followers' positions are not known yet
        for follower in (2, 3):
            assert await brokers[follower].replicate_from(brokers[1], "q", 0) == 0
        await settle()
        assert not waiting.done()  # they have it, but their next fetch is what says so
        assert await brokers[2].replicate_from(brokers[1], "q", 0) == 0
        await settle()
        assert not waiting.done()  # 3 holds the high watermark back
        assert await brokers[3].replicate_from(brokers[1], "q", 0) == 0
        await asyncio.wait_for(waiting, 1)
        assert leader.high_watermark == 2
        assert values(brokers[2]) == values(brokers[3]) == values(brokers[1])

    run(scenario)


def test_the_isr_shrinks_when_a_follower_lags_and_grows_when_it_catches_up(tmp_path: Path) -> None:
    async def scenario() -> None:
        coordinator, brokers, clock = await cluster(tmp_path)
        leader = brokers[1].partition("q", 0)
        for follower in (2, 3):
            await brokers[follower].replicate_from(brokers[1], "q", 0)
        info = leader.append_as_leader(make_batch(1, tag=2), acks=-1, origin=Origin.CLIENT)
        clock.advance(LAG_MS + 1)
        await brokers[2].replicate_from(brokers[1], "q", 0)
        await brokers[2].replicate_from(brokers[1], "q", 0)  # 2 keeps up; 3 is silent
        await brokers[1].replicas.shrink_lagging_isrs()  # type: ignore[union-attr]
        await settle()
        assert coordinator.state("q", 0).isr == (1, 2)
        await asyncio.wait_for(leader.wait_acknowledged(info, acks=-1, timeout_ms=1000), 1)
        assert leader.high_watermark == 1  # the ISR without 3 has it
        # 3 comes back: it joins once its own fetch shows it has reached the high watermark
        await brokers[3].replicate_from(brokers[1], "q", 0)
        await brokers[3].replicate_from(brokers[1], "q", 0)
        await settle()
        assert coordinator.state("q", 0).isr == (1, 2, 3)
        assert coordinator.isr_writes == [("q", 0, (1, 2)), ("q", 0, (1, 2, 3))]

    run(scenario)


def test_acks_all_is_refused_up_front_below_min_insync_replicas(tmp_path: Path) -> None:
    async def scenario() -> None:
        coordinator, brokers, _ = await cluster(tmp_path)
        coordinator.set_isr("q", 0, [1])  # the controller dropped both followers
        leader = brokers[1].partition("q", 0)
        before = leader.log.log_end_offset if leader.log is not None else -1
        with pytest.raises(ReplicationError) as refused:
            leader.append_as_leader(make_batch(1), acks=-1, origin=Origin.CLIENT)
        assert refused.value.code == ErrorCode.NOT_ENOUGH_REPLICAS
        assert leader.log is not None
        assert leader.log.log_end_offset == before  # nothing appended
        info = leader.append_as_leader(make_batch(1), acks=1, origin=Origin.CLIENT)
        await leader.wait_acknowledged(info, acks=1, timeout_ms=0)  # acks=1: answered at once

    run(scenario)


def test_a_leader_change_fails_the_old_leaders_waiting_acks_and_truncates_its_tail(tmp_path: Path) -> None:
    async def scenario() -> None:
        coordinator, brokers, _ = await cluster(tmp_path)
        old = brokers[1].partition("q", 0)
        first = old.append_as_leader(make_batch(1, tag=1), acks=-1, origin=Origin.CLIENT)
        for _ in range(2):
            for follower in (2, 3):
                await brokers[follower].replicate_from(brokers[1], "q", 0)
        await old.wait_acknowledged(first, acks=-1, timeout_ms=1000)
        tail = old.append_as_leader(make_batch(1, tag=9), acks=-1, origin=Origin.CLIENT)
        waiting = asyncio.ensure_future(old.wait_acknowledged(tail, acks=-1, timeout_ms=60_000))
        await settle()
        coordinator.elect("q", 0, leader=2, isr=[2, 3])  # 1 is cut off; 2 has only the first batch
        with pytest.raises(ReplicationError) as failed:
            await asyncio.wait_for(waiting, 1)
        assert failed.value.code == ErrorCode.NOT_LEADER_OR_FOLLOWER
        new = brokers[2].partition("q", 0)
        assert new.is_leader
        assert new.leader_epoch == 1
        new.append_as_leader(make_batch(1, tag=2), acks=1, origin=Origin.CLIENT)
        # The old leader, a follower now, cuts the tail nobody acknowledged and copies the new leader.
        assert await brokers[1].replicate_from(brokers[2], "q", 0) == 0
        assert values(brokers[1]) == values(brokers[2])
        assert [v[:6] for v in values(brokers[1])] == [b"000001", b"000002"]

    run(scenario)


def test_a_fenced_leader_stops_at_once_and_leads_again_only_in_a_newer_epoch(tmp_path: Path) -> None:
    async def scenario() -> None:
        coordinator, brokers, _ = await cluster(tmp_path)
        replicas = brokers[1].replicas
        assert replicas is not None
        assert replicas.fence() == {("q", 0)}  # the coordinator session was lost
        with pytest.raises(LogqError) as refused:
            brokers[1].partition("q", 0).append_as_leader(make_batch(1), acks=1, origin=Origin.CLIENT)
        assert refused.value.code == ErrorCode.NOT_LEADER_OR_FOLLOWER
        replicas.update_leadership(coordinator.queues())  # the same epoch, read again: not led
        assert not replicas.is_leader("q", 0)
        coordinator.elect("q", 0, leader=1)  # the controller gives it a new epoch
        assert replicas.is_leader("q", 0)

    run(scenario)


def test_requests_naming_another_leader_epoch_are_fenced(tmp_path: Path) -> None:
    async def scenario() -> None:
        coordinator, brokers, _ = await cluster(tmp_path)
        coordinator.elect("q", 0, leader=1)  # epoch 1
        leader = brokers[1].partition("q", 0)
        assert leader.check_epoch(1) == ErrorCode.NONE
        assert leader.check_epoch(-1) == ErrorCode.NONE
        assert leader.check_epoch(0) == ErrorCode.FENCED_LEADER_EPOCH
        assert leader.check_epoch(2) == ErrorCode.UNKNOWN_LEADER_EPOCH

    run(scenario)
