"""ZooKeeperCoordinator against a real ZooKeeper server (no mocks): registration, controller election
and fencing, queues, leader election on broker loss and return, producer ids, listeners.

Sessions are ended for real: a second kazoo client takes over the session with its id and password
and closes it (docs/reliability.md, "ZooKeeper pitfalls", 7), so the server deletes the ephemerals at once.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import pytest
from kazoo.client import KazooClient
from kazoo.protocol.connection import _SESSION_EXPIRED

from logq.coordinator import BrokerInfo, PartitionState, QueueMetadata
from logq.coordinator.assignment import LeaderAndIsr, leader_counts
from logq.coordinator.zk_layout import (
    BrokerIdInUseError,
    ControllerFencedError,
    Op,
    encode_state,
    split_connect,
    state_path,
)
from logq.coordinator.zookeeper import PRODUCER_ID_BLOCK, ZooKeeperCoordinator
from logq.errors import (
    InvalidPartitionsError,
    InvalidReplicationFactorError,
    QueueExistsError,
    UnknownQueueError,
)

T = TypeVar("T")


def run(coro: Awaitable[T], timeout: float = 30) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


async def eventually(predicate: Callable[[], bool], what: str, within: float = 10) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(0.02)


class Cluster:
    """Coordinators sharing one chroot; each broker advertises 127.0.0.1:9000+id."""

    def __init__(self, connect: str) -> None:
        self.connect = connect
        self.members: list[ZooKeeperCoordinator] = []

    async def start(self, broker_id: int, **options: Any) -> ZooKeeperCoordinator:
        member = ZooKeeperCoordinator(
            self.connect, BrokerInfo(broker_id, "127.0.0.1", 9000 + broker_id), **options
        )
        self.members.append(member)
        await member.start()
        return member

    async def stop(self, member: ZooKeeperCoordinator) -> None:
        await member.stop()
        self.members.remove(member)

    def controllers(self) -> list[int]:
        return [m.broker_id for m in self.members if m.is_controller]

    async def agreed(self, what: str, check: Callable[[ZooKeeperCoordinator], bool]) -> None:
        await eventually(lambda: all(check(m) for m in self.members), what)


@asynccontextmanager
async def cluster(connect: str) -> AsyncIterator[Cluster]:
    c = Cluster(connect)
    try:
        yield c
    finally:
        for member in list(c.members):
            await member.stop()


def raw_client(connect: str) -> KazooClient:
    client = KazooClient(hosts=connect, timeout=6.0)
    client.start(timeout=10)
    return client


def end_session(connect: str, member: ZooKeeperCoordinator) -> None:
    """End ``member``'s session server-side: take it over with a second client, then close it."""
    credentials = member.session_credentials()
    assert credentials is not None
    twin = KazooClient(hosts=split_connect(connect)[0], client_id=credentials, timeout=6.0)
    twin.start(timeout=10)
    twin.stop()
    twin.close()


def read_json(client: KazooClient, path: str) -> dict[str, Any]:
    data, _ = client.get(path)
    value: dict[str, Any] = json.loads(data)
    return value


def every_partition(
    member: ZooKeeperCoordinator, queue: str, check: Callable[[PartitionState], bool]
) -> bool:
    """``check`` holds for every partition of ``queue`` as ``member`` sees it (False if it has no queue)."""
    q = member.queues().get(queue)
    return q is not None and all(check(p) for p in q.partitions)


def leaders(queue: QueueMetadata) -> list[tuple[int, int, tuple[int, ...]]]:
    """(leader, leader epoch, isr) of each partition."""
    return [(p.leader, p.leader_epoch, p.isr) for p in queue.partitions]


# --- registration --------------------------------------------------------------------------------


def test_registration_and_broker_list(zk_connect: str) -> None:
    async def body() -> None:
        async with cluster(zk_connect) as c:
            one, two, three = [await c.start(i) for i in (1, 2, 3)]
            await c.agreed("every broker sees 3 brokers", lambda m: len(m.brokers()) == 3)
            assert one.brokers() == [BrokerInfo(i, "127.0.0.1", 9000 + i) for i in (1, 2, 3)]
            assert len({m.cluster_id() for m in c.members}) == 1
            raw = await asyncio.to_thread(raw_client, zk_connect)
            try:
                assert read_json(raw, "/cluster/id")["id"] == one.cluster_id()
                data, stat = raw.get("/brokers/ids/2")
                assert json.loads(data)["port"] == 9002
                assert stat.ephemeralOwner == two.session_id
                assert two.broker_epoch == stat.czxid  # KIP-380
                assert dict(one.broker_epochs()) == {m.broker_id: m.broker_epoch for m in c.members}
            finally:
                raw.stop()
                raw.close()
            await c.stop(three)
            await c.agreed("broker 3 is gone", lambda m: [b.broker_id for b in m.brokers()] == [1, 2])

    run(body())


def test_duplicate_broker_id_is_refused(zk_connect: str) -> None:
    async def body() -> None:
        async with cluster(zk_connect) as c:
            first = await c.start(1)
            second = ZooKeeperCoordinator(zk_connect, BrokerInfo(1, "127.0.0.2", 9999), register_wait_ms=300)
            with pytest.raises(BrokerIdInUseError, match=r"broker id 1 is already registered.*9001"):
                await second.start()
            await second.stop()
            assert [b.broker_id for b in first.brokers()] == [1]
            assert first.brokers()[0].port == 9001  # the live broker keeps its registration

    run(body())


HOLDER = """
import sys, time
from kazoo.client import KazooClient
hosts, chroot = sys.argv[1], sys.argv[2]
c = KazooClient(hosts=hosts, timeout=1.0)
c.start(timeout=10)
c.ensure_path(chroot + "/brokers/ids")
c.create(chroot + "/brokers/ids/1", b'{"host":"127.0.0.9","port":1,"rack":null}', ephemeral=True)
print("ready", flush=True)
time.sleep(60)
"""


def test_restarted_broker_waits_for_the_crashed_registration_to_expire(zk_connect: str) -> None:
    """A process that crashed (SIGKILL) leaves /brokers/ids/1 until its session times out: a new
    broker 1 waits for it instead of failing, then registers."""
    hosts, chroot = split_connect(zk_connect)
    with subprocess.Popen(
        [sys.executable, "-c", HOLDER, hosts, chroot],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as holder:
        try:
            assert holder.stdout is not None
            assert holder.stdout.readline().strip() == "ready"
            os.kill(holder.pid, signal.SIGKILL)
            holder.wait(10)

            async def body() -> float:
                async with cluster(zk_connect) as c:
                    raw = await asyncio.to_thread(raw_client, zk_connect)
                    try:
                        assert raw.exists("/brokers/ids/1").ephemeralOwner != 0  # still there
                    finally:
                        raw.stop()
                        raw.close()
                    t0 = time.monotonic()
                    member = await c.start(1, register_wait_ms=8000)
                    assert member.brokers() == [BrokerInfo(1, "127.0.0.1", 9001)]
                    return time.monotonic() - t0

            waited = run(body())
            assert waited < 6  # the crashed holder's 1 s session, not the whole 8 s wait
        finally:
            if holder.poll() is None:
                os.kill(holder.pid, signal.SIGKILL)
                holder.wait(10)


def test_stale_registration_of_our_own_old_session_is_replaced(zk_connect: str) -> None:
    """After a fast reconnect with a new session (kazoo's client-side expiry), the old session is still
    alive server-side and so is its ephemeral /brokers/ids/1: the broker recognises it as its own
    (ephemeralOwner is one of its earlier sessions), deletes it and registers again at once, well
    before the server would expire the old session (10 s)."""

    async def body() -> None:
        async with cluster(zk_connect) as c:
            member = await c.start(1, session_timeout_ms=10_000)
            old_session, old_epoch = member.session_id, member.broker_epoch
            assert member.is_controller
            old_controller_epoch = member.controller_epoch
            t0 = time.monotonic()
            member._store._client._call(_SESSION_EXPIRED, None)  # client-side only: server keeps it
            await eventually(
                lambda: (
                    member.session_id not in (None, old_session)
                    and member.broker_epoch != old_epoch
                    and member.is_controller
                ),
                "re-registration and re-election under the new session",
            )
            assert time.monotonic() - t0 < 5
            raw = await asyncio.to_thread(raw_client, zk_connect)
            try:
                _, stat = raw.get("/brokers/ids/1")
                assert stat.ephemeralOwner == member.session_id != old_session
                assert stat.czxid == member.broker_epoch > old_epoch
                _, stat = raw.get("/controller")
                assert stat.ephemeralOwner == member.session_id
            finally:
                raw.stop()
                raw.close()
            assert member.controller_epoch == old_controller_epoch + 1

    run(body())


# --- controller ------------------------------------------------------------------------------------


def test_controller_election_and_failover(zk_connect: str) -> None:
    async def body() -> None:
        async with cluster(zk_connect) as c:
            one = await c.start(1)
            await c.start(2)
            await c.start(3)
            await c.agreed("controller 1", lambda m: m.controller_id() == 1)
            assert c.controllers() == [1]
            epoch = one.controller_epoch
            assert all(m.controller_epoch == epoch for m in c.members)

            await c.stop(one)  # the session closes: /controller goes at once
            await c.agreed("a new controller", lambda m: m.controller_id() in (2, 3))
            assert len(c.controllers()) == 1
            second = next(m for m in c.members if m.is_controller)
            assert second.controller_epoch == epoch + 1

            # The controller's session ends (expired server-side): /controller_epoch goes up again.
            await asyncio.to_thread(end_session, zk_connect, second)
            await c.agreed("one controller, epoch + 2", lambda m: m.controller_epoch == epoch + 2)
            assert all(m.controller_id() == c.controllers()[0] for m in c.members)

    run(body())


def test_deposed_controller_write_fails(zk_connect: str) -> None:
    """A zombie controller (its session expired while it was paused) replays a write with the term it
    held: the /controller_epoch check makes ZooKeeper refuse it, and the partition state is unchanged."""

    async def body() -> None:
        async with cluster(zk_connect) as c:
            one = await c.start(1)
            two = await c.start(2)
            await one.create_queue("q", 1, 2, {})
            term = one._ctl
            assert term is not None
            await asyncio.to_thread(end_session, zk_connect, one)
            await eventually(lambda: c.controllers() != [] and one._ctl is not term, "a new term")
            await c.agreed("the new controller epoch", lambda m: m.controller_epoch == term.epoch + 1)
            await c.agreed("1 out of the ISR", lambda m: every_partition(m, "q", lambda p: p.isr == (2,)))
            assert one._ctl is None or one._ctl.epoch == term.epoch + 1
            raw = await asyncio.to_thread(raw_client, zk_connect)
            try:
                before, stat = raw.get(state_path("q", 0))
                # The write is conditional on the partition state's current version, so only the
                # controller-epoch check can refuse it.
                stale = encode_state(LeaderAndIsr(-1, 99, ()), term.epoch)
                with pytest.raises(ControllerFencedError, match=f"controller epoch {term.epoch} is over"):
                    await one._controller_write(term, [Op("set", state_path("q", 0), stale, stat.version)])
                after, stat_after = raw.get(state_path("q", 0))
                assert (after, stat_after.version) == (before, stat.version)  # nothing accepted
                assert read_json(raw, state_path("q", 0))["leader"] == 2
            finally:
                raw.stop()
                raw.close()
            assert len(c.controllers()) == 1
            assert two.controller_epoch == term.epoch + 1

    run(body())


def test_controller_whose_epoch_moved_steps_down(zk_connect: str) -> None:
    """/controller_epoch bumped behind the controller's back (another controller's election it did not
    see): its next write fails the check, it steps down and resigns, a new election follows, and the
    queue creation that triggered the write completes under the new epoch."""

    async def body() -> None:
        async with cluster(zk_connect) as c:
            one = await c.start(1)
            await c.start(2)
            term = one._ctl
            assert term is not None
            raw = await asyncio.to_thread(raw_client, zk_connect)
            try:
                data, stat = raw.get("/controller_epoch")
                raw.set("/controller_epoch", str(int(data) + 5).encode(), version=stat.version)
                # The watch on /controller does not fire (only the epoch moved): the next write notices.
                queue = await one.create_queue("q", 2, 2, {})
                assert one._ctl is not term
                assert c.controllers() != []
                new_epoch = int(raw.get("/controller_epoch")[0])
                assert new_epoch == term.epoch + 6
                assert [read_json(raw, state_path("q", p))["controller_epoch"] for p in (0, 1)] == [
                    new_epoch
                ] * 2
            finally:
                raw.stop()
                raw.close()
            assert [p.leader for p in queue.partitions] == [p.replicas[0] for p in queue.partitions]

    run(body())


# --- queues ----------------------------------------------------------------------------------------


def test_create_and_delete_queues_with_balanced_assignment(zk_connect: str) -> None:
    async def body() -> None:
        async with cluster(zk_connect) as c:
            one, two, three = [await c.start(i) for i in (1, 2, 3)]
            queue = await two.create_queue("orders", 6, 3, {"retention.ms": "60000"})
            assert queue.replication_factor == 3
            assert dict(queue.settings) == {"retention.ms": "60000"}
            assert not queue.internal
            replicas = [p.replicas for p in queue.partitions]
            assert all(sorted(r) == [1, 2, 3] for r in replicas)
            assert dict(leader_counts(replicas)) == {1: 2, 2: 2, 3: 2}  # leaders balanced
            assert leaders(queue) == [(r[0], 0, r) for r in replicas]  # preferred leader, full ISR
            await c.agreed("every broker sees orders", lambda m: m.queues().get("orders") == queue)

            small = await three.create_queue("small", 3, 2, {})
            counts: dict[int, int] = {}
            for p in small.partitions:
                for b in p.replicas:
                    counts[b] = counts.get(b, 0) + 1
            assert counts == {1: 2, 2: 2, 3: 2}
            assert dict(leader_counts([p.replicas for p in small.partitions])) == {1: 1, 2: 1, 3: 1}

            with pytest.raises(QueueExistsError):
                await one.create_queue("orders", 1, 1, {})
            await one.create_queue("in.box", 1, 1, {})
            with pytest.raises(QueueExistsError, match="collides"):
                await two.create_queue("in_box", 1, 1, {})
            with pytest.raises(InvalidPartitionsError):
                await one.create_queue("none", 0, 1, {})

            raw = await asyncio.to_thread(raw_client, zk_connect)
            try:
                assignment = read_json(raw, "/brokers/topics/orders")
                assert assignment["partitions"] == {str(i): list(r) for i, r in enumerate(replicas)}
                assert assignment["topic_id"] == queue.queue_id != small.queue_id
                assert len(queue.queue_id) == 32
                state = read_json(raw, state_path("orders", 0))
                assert state["controller_epoch"] == one.controller_epoch
                assert state["leader"] == replicas[0][0]

                await three.delete_queue("orders")
                assert "orders" not in three.queues()
                await c.agreed("orders is gone everywhere", lambda m: "orders" not in m.queues())
                assert raw.exists("/brokers/topics/orders") is None
                assert raw.get_children("/admin/delete_topics") == []
                assert set(one.queues()) == {"small", "in.box"}
            finally:
                raw.stop()
                raw.close()
            with pytest.raises(UnknownQueueError):
                await two.delete_queue("orders")
            again = await one.create_queue("orders", 1, 1, {})  # the name can be used again
            assert len(again.partitions) == 1
            assert again.queue_id not in ("", queue.queue_id)  # a new queue, not the old one back

    run(body())


def test_replication_factor_larger_than_live_brokers_is_refused(zk_connect: str) -> None:
    async def body() -> None:
        async with cluster(zk_connect) as c:
            one = await c.start(1)
            await c.start(2)
            await eventually(lambda: len(one.brokers()) == 2, "two brokers")
            with pytest.raises(InvalidReplicationFactorError, match=r"replication factor 3 .* 2 live"):
                await one.create_queue("q", 1, 3, {})
            raw = await asyncio.to_thread(raw_client, zk_connect)
            try:
                assert raw.exists("/brokers/topics/q") is None
            finally:
                raw.stop()
                raw.close()
            assert (await one.create_queue("q", 1, 2, {})).replication_factor == 2

    run(body())


# --- leader election --------------------------------------------------------------------------------


def test_leader_moves_with_epoch_bump_when_a_broker_session_ends(zk_connect: str) -> None:
    async def body() -> None:
        async with cluster(zk_connect) as c:
            one, two, _three = [await c.start(i) for i in (1, 2, 3)]
            queue = await one.create_queue("q", 3, 3, {})
            led_by_two = next(i for i, p in enumerate(queue.partitions) if p.leader == 2)
            old_epoch = two.broker_epoch

            await asyncio.to_thread(end_session, zk_connect, two)

            await c.agreed(
                "broker 2 out of every ISR", lambda m: every_partition(m, "q", lambda p: 2 not in p.isr)
            )
            for i, p in enumerate(one.queues()["q"].partitions):
                before = queue.partitions[i]
                if i == led_by_two:
                    live_isr = [b for b in before.replicas if b != 2]
                    assert (p.leader, p.leader_epoch, p.isr) == (live_isr[0], 1, tuple(live_isr))
                else:  # a follower left the ISR: same leader, same epoch
                    assert (p.leader, p.leader_epoch) == (before.leader, 0)
                    assert p.isr == tuple(b for b in before.isr if b != 2)
            # Broker 2 registered again (new broker epoch) but the controller does not put it back in
            # any ISR: its leader will, once it has caught up.
            await eventually(lambda: two.broker_epoch != old_epoch, "broker 2 registered again")
            await eventually(lambda: 2 in [b.broker_id for b in one.brokers()], "broker 2 live again")
            await asyncio.sleep(0.3)
            assert all(2 not in p.isr for p in one.queues()["q"].partitions)

    run(body())


def test_no_live_isr_member_means_no_leader_until_one_returns(zk_connect: str) -> None:
    async def body() -> None:
        async with cluster(zk_connect) as c:
            one, two, three = [await c.start(i) for i in (1, 2, 3)]
            queue = await one.create_queue("q", 6, 2, {})
            orphans = [i for i, p in enumerate(queue.partitions) if 1 not in p.replicas]
            assert orphans  # 3 brokers, RF 2, 6 partitions: some partitions live on 2 and 3 only

            await c.stop(two)
            await c.agreed("2 out of every ISR", lambda m: every_partition(m, "q", lambda p: 2 not in p.isr))
            await c.stop(three)

            def offline(m: ZooKeeperCoordinator) -> bool:
                q = m.queues().get("q")
                return q is not None and all(q.partitions[i].leader == -1 for i in orphans)

            await c.agreed("partitions of 2 and 3 only are offline", offline)
            after_loss = one.queues()["q"]
            for i, p in enumerate(after_loss.partitions):
                if i in orphans:
                    assert p.isr == (3,)  # the last ISR is kept, so 3 (and only 3) may lead again
                    assert p.leader_epoch == queue.partitions[i].leader_epoch + (
                        2 if queue.partitions[i].leader == 2 else 1
                    )
                else:
                    assert (p.leader, p.isr) == (1, (1,))

            # Broker 2 comes back: it was not in the last ISR, so it does not lead (no unclean election).
            await c.start(2)
            await eventually(lambda: len(one.brokers()) == 2, "broker 2 back")
            await asyncio.sleep(0.3)
            assert one.queues()["q"] == after_loss

            # Broker 3 comes back: it was, so those partitions get it as leader, epoch + 1.
            await c.start(3)

            def recovered(m: ZooKeeperCoordinator) -> bool:
                q = m.queues().get("q")
                return q is not None and all(q.partitions[i].leader == 3 for i in orphans)

            await c.agreed("3 leads the orphans again", recovered)
            for i in orphans:
                p = one.queues()["q"].partitions[i]
                assert (p.leader_epoch, p.isr) == (after_loss.partitions[i].leader_epoch + 1, (3,))

    run(body())


def test_unclean_leader_election_when_enabled(zk_connect: str) -> None:
    async def body() -> None:
        async with cluster(zk_connect) as c:
            one = await c.start(1, unclean_leader_election=True)
            two = await c.start(2)
            queue = await one.create_queue("q", 2, 2, {})
            await c.stop(two)
            await c.agreed("1 alone", lambda m: every_partition(m, "q", lambda p: p.isr == (1,)))
            await c.stop(one)
            two = await c.start(2, unclean_leader_election=True)  # back, never in the last ISR
            await eventually(lambda: every_partition(two, "q", lambda p: p.leader == 2), "unclean election")
            assert all(p.isr == (2,) for p in two.queues()["q"].partitions)
            assert len(queue.partitions) == 2

    run(body())


# --- producer ids, listeners ---------------------------------------------------------------------------


def test_producer_id_blocks_are_never_reused(zk_connect: str) -> None:
    async def body() -> None:
        async with cluster(zk_connect) as c:
            one = await c.start(1)
            two = await c.start(2)
            ids: list[int] = []
            for _ in range(3):  # interleave so that both claim several blocks
                ids += [await one.allocate_producer_id() for _ in range(700)]
                ids += [await two.allocate_producer_id() for _ in range(700)]
            assert len(set(ids)) == len(ids)
            await c.stop(one)
            restarted = await c.start(1)
            fresh = [await restarted.allocate_producer_id() for _ in range(10)]
            assert not set(fresh) & set(ids)
            assert min(fresh) > max(ids)
            assert min(fresh) % PRODUCER_ID_BLOCK == 0

    run(body())


def test_listeners_get_snapshots_on_the_loop(zk_connect: str) -> None:
    async def body() -> None:
        async with cluster(zk_connect) as c:
            one = await c.start(1)
            two = await c.start(2)
            loop = asyncio.get_running_loop()
            calls: list[tuple[int, asyncio.AbstractEventLoop, Mapping[str, QueueMetadata]]] = []
            two.add_listener(
                lambda snap: calls.append((threading.get_ident(), asyncio.get_running_loop(), snap))
            )
            await one.create_queue("q", 2, 2, {})
            await eventually(lambda: any("q" in snap for _, _, snap in calls), "a snapshot with q")
            await one.delete_queue("q")
            await eventually(lambda: "q" not in calls[-1][2], "a snapshot without q")
            assert {(t, lp) for t, lp, _ in calls} == {(threading.get_ident(), loop)}
            snapshot = calls[-1][2]
            with pytest.raises(TypeError):
                snapshot["x"] = snapshot  # type: ignore[index]

    run(body())


# --- settings changed after creation --------------------------------------------------------------------


def test_settings_changed_through_one_member_reach_every_member_and_zookeeper(zk_connect: str) -> None:
    async def body() -> None:
        async with cluster(zk_connect) as c:
            one, two = [await c.start(i) for i in (1, 2)]
            created = await one.create_queue("orders", 2, 2, {"retention.ms": "1000"})
            altered = await two.alter_queue_settings("orders", {"segment.ms": "60000"})
            assert dict(altered.settings) == {"segment.ms": "60000"}  # in force where it was made
            assert altered.queue_id == created.queue_id
            await c.agreed(
                "the new settings", lambda m: dict(m.queues()["orders"].settings) == {"segment.ms": "60000"}
            )
            with pytest.raises(UnknownQueueError):
                await one.alter_queue_settings("nope", {})
            await one.alter_broker_settings(None, {"retention.ms": "5000"})
            await two.alter_broker_settings(2, {"segment.bytes": "1000000"})
            await c.agreed(
                "the dynamic broker settings",
                lambda m: (
                    m.broker_settings().for_broker(2) == {"retention.ms": "5000", "segment.bytes": "1000000"}
                ),
            )
            raw = await asyncio.to_thread(raw_client, zk_connect)
            try:
                assert read_json(raw, "/config/brokers/<default>") == {
                    "version": 1,
                    "config": {"retention.ms": "5000"},
                }
                assert read_json(raw, "/config/brokers/2")["config"] == {"segment.bytes": "1000000"}
                assignment = read_json(raw, "/brokers/topics/orders")
                assert assignment["settings"] == {"segment.ms": "60000"}
                assert assignment["topic_id"] == created.queue_id  # every other field kept
                await one.alter_broker_settings(None, {})
                await c.agreed(
                    "the cluster-wide level removed", lambda m: not m.broker_settings().cluster_default
                )
                assert raw.exists("/config/brokers/<default>") is None
            finally:
                raw.stop()
                raw.close()
            await c.stop(two)
            back = await c.start(2)  # a restarted member reads them back
            assert back.broker_settings().for_broker(2) == {"segment.bytes": "1000000"}
            assert dict(back.queues()["orders"].settings) == {"segment.ms": "60000"}

    run(body())
