"""The asyncio Consumer against a real broker process: manual assignment, seeks, pauses, offset look-ups,
resets, commits (seen by confluent-kafka), and groups of consumers in one event loop: rebalance callbacks,
cooperative-sticky stickiness, the max_poll_interval_ms rule."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer as ConfluentConsumer
from confluent_kafka import Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from logq.client.cluster import QueuePartition
from logq.client.consumer import Consumer, ConsumerRecord
from logq.errors import ClientError, InvalidQueueNameError, LogqError, OffsetOutOfRangeError
from tests.broker_process import BrokerProcess

GROUP_SETTINGS = {
    "group.initial.rebalance.delay.ms": 100,
    "group.min.session.timeout.ms": 1000,
    "offsets.topic.num.partitions": 5,
}
FAST = {"session_timeout_ms": 6000, "heartbeat_interval_ms": 200, "fetch_max_wait_ms": 100}


@pytest.fixture(scope="module")
def cbroker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    """One broker for the module (each test uses its own queues and groups), with quick groups."""
    proc = BrokerProcess(Path(tmp_path_factory.mktemp("consumer")) / "data", broker=GROUP_SETTINGS).start()
    yield proc
    proc.kill()


def create(bootstrap: str, queue: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(queue, num_partitions=partitions, replication_factor=1)])[queue].result(30)


def produce(
    bootstrap: str,
    queue: str,
    values: Sequence[bytes],
    *,
    partition: int = -1,
    timestamps: Sequence[int] = (),
) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
    for i, value in enumerate(values):
        extra = {"timestamp": timestamps[i]} if timestamps else {}
        producer.produce(queue, value=value, key=value, partition=partition, **extra)
    assert producer.flush(30) == 0


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), 60))


async def poll_until(consumer: Consumer, count: int, seconds: float = 15) -> list[ConsumerRecord]:
    """Poll until ``count`` records came (and check that no more came with them)."""
    got: list[ConsumerRecord] = []
    deadline = time.monotonic() + seconds
    while len(got) < count:
        assert time.monotonic() < deadline, f"got {len(got)} of {count} records"
        got += await consumer.poll(0.2)
    assert len(got) == count
    return got


def committed_by_confluent(bootstrap: str, group: str, queue: str, partitions: int) -> list[int]:
    probe = ConfluentConsumer(
        {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False}
    )
    try:
        found = probe.committed([TopicPartition(queue, p) for p in range(partitions)], timeout=10)
        return [tp.offset for tp in sorted(found, key=lambda tp: tp.partition)]
    finally:
        probe.close()


def qp(queue: str, partition: int) -> QueuePartition:
    return QueuePartition(queue, partition)


# --- one consumer, partitions assigned by hand -------------------------------------------------------


def test_manual_assign_seek_position_pause_resume(cbroker: BrokerProcess) -> None:
    bootstrap = cbroker.bootstrap
    create(bootstrap, "ma", 2)
    for p in (0, 1):
        produce(bootstrap, "ma", [b"p%d-%d" % (p, i) for i in range(100)], partition=p)

    async def scenario() -> None:
        async with Consumer(bootstrap, auto_offset_reset="earliest", fetch_max_wait_ms=100) as consumer:
            consumer.assign([("ma", 0), qp("ma", 1)])
            assert consumer.assignment() == [qp("ma", 0), qp("ma", 1)]
            records = await poll_until(consumer, 200)
            for p in (0, 1):
                mine = [r for r in records if r.partition == p]
                assert [r.offset for r in mine] == list(range(100))
                assert [r.value for r in mine] == [b"p%d-%d" % (p, i) for i in range(100)]
                assert mine[5].key == mine[5].value
                assert mine[5].queue == "ma"
                assert mine[5].headers == ()
                assert mine[5].timestamp > 0
                assert await consumer.position(("ma", p)) == 100
            consumer.seek(qp("ma", 0), 10)
            assert await consumer.position(qp("ma", 0)) == 10
            again = await poll_until(consumer, 90)
            assert [(r.partition, r.offset) for r in again] == [(0, o) for o in range(10, 100)]
            # a paused partition is neither returned nor fetched until resumed
            consumer.pause([qp("ma", 1)])
            assert consumer.paused() == [qp("ma", 1)]
            for p in (0, 1):
                produce(bootstrap, "ma", [b"more"] * 5, partition=p)
            more = await poll_until(consumer, 5)
            assert {r.partition for r in more} == {0}
            assert await consumer.poll(0.5) == []
            consumer.resume([qp("ma", 1)])
            assert consumer.paused() == []
            rest = await poll_until(consumer, 5)
            assert [(r.partition, r.offset) for r in rest] == [(1, o) for o in range(100, 105)]
            # seek_to_beginning / seek_to_end
            await consumer.seek_to_end([qp("ma", 0)])
            assert await consumer.position(qp("ma", 0)) == 105
            await consumer.seek_to_beginning()
            assert [await consumer.position(qp("ma", p)) for p in (0, 1)] == [0, 0]
            with pytest.raises(ClientError, match="not assigned"):
                consumer.seek(qp("ma", 7), 0)
            # async iteration
            seen = []
            async for record in consumer:
                seen.append(record)
                if len(seen) == 3:
                    break
            assert len(seen) == 3

    run(scenario)


def test_offsets_for_times_and_beginning_and_end_offsets(cbroker: BrokerProcess) -> None:
    bootstrap = cbroker.bootstrap
    create(bootstrap, "times", 2)
    base = int(time.time() * 1000) - 60_000
    produce(bootstrap, "times", [b"a", b"b", b"c"], partition=0, timestamps=[base, base + 1000, base + 2000])

    async def scenario() -> None:
        async with Consumer(bootstrap) as consumer:
            p0, p1 = qp("times", 0), qp("times", 1)
            assert await consumer.beginning_offsets([p0, p1]) == {p0: 0, p1: 0}
            assert await consumer.end_offsets([p0, ("times", 1)]) == {p0: 3, p1: 0}
            found = await consumer.offsets_for_times({p0: base + 500, p1: base})
            assert found == {p0: 1, p1: None}
            assert await consumer.offsets_for_times({p0: base}) == {p0: 0}
            assert await consumer.offsets_for_times({p0: base + 2000}) == {p0: 2}
            assert await consumer.offsets_for_times({p0: base + 10_000}) == {p0: None}
            assert await consumer.partitions_for("times") == 2
            # a reset to "latest" starts at the end offset
            consumer.assign([p0])
            assert await consumer.position(p0) == 3

    run(scenario)


def test_offset_out_of_range_resets_as_configured(
    cbroker: BrokerProcess, caplog: pytest.LogCaptureFixture
) -> None:
    bootstrap = cbroker.bootstrap
    create(bootstrap, "oor", 1)
    produce(bootstrap, "oor", [b"x0", b"x1", b"x2"], partition=0)
    tp = qp("oor", 0)

    async def scenario() -> None:
        async with Consumer(bootstrap, auto_offset_reset="earliest", fetch_max_wait_ms=100) as consumer:
            consumer.assign([tp])
            consumer.seek(tp, 500)
            with caplog.at_level(logging.WARNING, logger="logq.client"):
                records = await poll_until(consumer, 3)
            assert [r.offset for r in records] == [0, 1, 2]
            said = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
            assert said == ["oor/0: offset 500 is out of range: reading from the earliest offset instead "
                            "(auto_offset_reset)"]  # fmt: skip
        async with Consumer(bootstrap, auto_offset_reset="latest", fetch_max_wait_ms=100) as consumer:
            consumer.assign([tp])
            consumer.seek(tp, 500)
            assert await consumer.poll(0.5) == []
            assert await consumer.position(tp) == 3
            produce(bootstrap, "oor", [b"x3"], partition=0)
            assert [r.value for r in await poll_until(consumer, 1)] == [b"x3"]
        async with Consumer(bootstrap, auto_offset_reset="error", fetch_max_wait_ms=100) as consumer:
            consumer.assign([tp])
            consumer.seek(tp, 500)
            with pytest.raises(OffsetOutOfRangeError, match="oor/0"):
                await poll_until(consumer, 1)
            with pytest.raises(OffsetOutOfRangeError):  # raised until the application seeks
                await consumer.poll(0.1)
            consumer.seek(tp, 2)
            assert [r.offset for r in await poll_until(consumer, 2)] == [2, 3]
        # no committed offset and auto_offset_reset="error"
        async with Consumer(bootstrap, group_id="oor-g", auto_offset_reset="error") as consumer:
            consumer.assign([tp])
            with pytest.raises(OffsetOutOfRangeError, match="no committed offset"):
                await consumer.poll(0.5)

    run(scenario)


def test_commits_need_a_group(cbroker: BrokerProcess) -> None:
    create(cbroker.bootstrap, "nogroup", 1)

    async def scenario() -> None:
        async with Consumer(cbroker.bootstrap, auto_offset_reset="earliest") as consumer:
            consumer.assign([qp("nogroup", 0)])
            with pytest.raises(LogqError, match="group_id"):
                await consumer.commit()
            with pytest.raises(LogqError, match="group_id"):
                await consumer.commit({qp("nogroup", 0): 1})
            with pytest.raises(LogqError, match="group_id"):
                consumer.commit_async()
            with pytest.raises(LogqError, match="group_id"):
                await consumer.committed([qp("nogroup", 0)])
            with pytest.raises(LogqError, match="group_id"):
                consumer.subscribe(["nogroup"])
        with pytest.raises(ClientError, match="closed"):
            await consumer.poll(0)

    run(scenario)


def test_a_queue_created_after_assign_is_read_when_it_appears(cbroker: BrokerProcess) -> None:
    bootstrap = cbroker.bootstrap

    async def scenario() -> None:
        async with Consumer(bootstrap, auto_offset_reset="earliest", fetch_max_wait_ms=100) as consumer:
            consumer.assign([qp("later", 0)])
            assert await consumer.poll(0.3) == []  # UNKNOWN_TOPIC_OR_PARTITION: wait and look again
            await asyncio.to_thread(create, bootstrap, "later", 1)
            await asyncio.to_thread(produce, bootstrap, "later", [b"here"], partition=0)
            assert [r.value for r in await poll_until(consumer, 1)] == [b"here"]

    run(scenario)


# --- committed offsets -------------------------------------------------------------------------------


def test_auto_commit_is_visible_to_confluent_and_resumed(cbroker: BrokerProcess) -> None:
    bootstrap = cbroker.bootstrap
    create(bootstrap, "ac", 2)
    for p in (0, 1):
        produce(bootstrap, "ac", [b"%d" % i for i in range(20)], partition=p)

    async def scenario() -> None:
        settings: dict[str, Any] = {"group_id": "ac-g", "auto_offset_reset": "earliest", **FAST}
        async with Consumer(bootstrap, auto_commit_interval_ms=100, **settings) as consumer:
            consumer.subscribe(["ac"])
            assert len(await poll_until(consumer, 40)) == 40
            await asyncio.sleep(0.15)
            assert await consumer.poll(0.3) == []  # this poll auto-commits what the previous ones returned
            await asyncio.sleep(0.2)
            assert committed_by_confluent(bootstrap, "ac-g", "ac", 2) == [20, 20]
            assert await consumer.committed([qp("ac", 0), qp("ac", 1)]) == {qp("ac", 0): 20, qp("ac", 1): 20}
        produce(bootstrap, "ac", [b"late"], partition=1)
        async with Consumer(bootstrap, **settings) as consumer:  # resumes from the committed offsets
            consumer.subscribe(["ac"])
            assert [(r.partition, r.offset) for r in await poll_until(consumer, 1)] == [(1, 20)]
        # close() committed the position past "late"
        assert committed_by_confluent(bootstrap, "ac-g", "ac", 2) == [20, 21]

    run(scenario)


def test_manual_commits_sync_and_async(cbroker: BrokerProcess) -> None:
    bootstrap = cbroker.bootstrap
    create(bootstrap, "mc", 1)
    produce(bootstrap, "mc", [b"%d" % i for i in range(30)], partition=0)
    tp = qp("mc", 0)

    async def scenario() -> None:
        settings: dict[str, Any] = {"group_id": "mc-g", "auto_offset_reset": "earliest", **FAST}
        async with Consumer(bootstrap, enable_auto_commit=False, max_poll_records=10, **settings) as consumer:
            consumer.subscribe(["mc"])
            first = await poll_until(consumer, 10)
            assert [r.offset for r in first] == list(range(10))
            assert await consumer.committed([tp]) == {tp: None}
            await consumer.commit()  # the position: past the 10 records returned
            assert await consumer.committed([tp]) == {tp: 10}
            await consumer.commit({tp: 4})
            assert committed_by_confluent(bootstrap, "mc-g", "mc", 1) == [4]
            done: asyncio.Future[tuple[Any, Any]] = asyncio.get_running_loop().create_future()
            consumer.commit_async({tp: 7}, lambda err, offsets: done.set_result((err, offsets)))
            assert await done == (None, {tp: 7})
            assert committed_by_confluent(bootstrap, "mc-g", "mc", 1) == [7]
            with pytest.raises(ValueError, match="offset"):
                await consumer.commit({tp: -3})
        # no auto-commit: closing leaves the committed offset where it was
        assert committed_by_confluent(bootstrap, "mc-g", "mc", 1) == [7]
        async with Consumer(bootstrap, **settings) as consumer:
            consumer.subscribe(["mc"])
            assert [r.offset for r in await poll_until(consumer, 23)] == list(range(7, 30))

    run(scenario)


def test_commit_covers_every_assigned_partition_even_before_any_poll(cbroker: BrokerProcess) -> None:
    """As Kafka's Java consumer: commit() commits the position of every assigned partition, including one
    nothing was read from, where reading would start (committed offset, or auto_offset_reset's)."""
    bootstrap = cbroker.bootstrap
    create(bootstrap, "every", 3)
    produce(bootstrap, "every", [b"a", b"b", b"c"], partition=0)
    produce(bootstrap, "every", [b"d"], partition=1)

    async def scenario() -> None:
        settings: dict[str, Any] = {"enable_auto_commit": False, **FAST}
        async with Consumer(
            bootstrap, group_id="every-g", auto_offset_reset="latest", **settings
        ) as consumer:
            consumer.assign(parts("every", 0, 1, 2))
            await consumer.commit()  # no poll yet: the positions are looked up first
        assert committed_by_confluent(bootstrap, "every-g", "every", 3) == [3, 1, 0]
        async with Consumer(
            bootstrap, group_id="every-g2", auto_offset_reset="earliest", **settings
        ) as consumer:
            consumer.subscribe(["every"])
            got = await poll_until(consumer, 4)
            assert sorted(r.value for r in got) == [b"a", b"b", b"c", b"d"]
            await consumer.commit()
        assert committed_by_confluent(bootstrap, "every-g2", "every", 3) == [3, 1, 0]

    run(scenario)


# --- groups of consumers in one event loop ----------------------------------------------------------


class Pump:
    """Consumers polling in tasks of their own; records the assignment seen after every poll."""

    def __init__(self) -> None:
        self.tasks: dict[Consumer, asyncio.Task[None]] = {}
        self.overlaps: list[Any] = []
        self.records: dict[Consumer, list[ConsumerRecord]] = {}

    def start(self, consumer: Consumer) -> None:
        self.records[consumer] = []
        self.tasks[consumer] = asyncio.create_task(self._run(consumer))

    async def _run(self, consumer: Consumer) -> None:
        while True:
            self.records[consumer] += await consumer.poll(0.1)
            owned = [set(c.assignment()) for c in self.tasks]
            for i, a in enumerate(owned):
                for b in owned[i + 1 :]:
                    if a & b:
                        self.overlaps.append(a & b)

    async def stop(self, consumer: Consumer) -> None:
        task = self.tasks.pop(consumer)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def stop_all(self) -> None:
        for consumer in list(self.tasks):
            await self.stop(consumer)


async def wait_until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def parts(queue: str, *numbers: int) -> list[QueuePartition]:
    return [qp(queue, n) for n in numbers]


def test_a_pattern_subscription_takes_matching_queues_including_new_ones(cbroker: BrokerProcess) -> None:
    bootstrap = cbroker.bootstrap
    for queue, partitions in (("pat-a", 2), ("pat-b", 1), ("unpatterned", 1)):
        create(bootstrap, queue, partitions)
        produce(bootstrap, queue, [b"%s-%d" % (queue.encode(), i) for i in range(3)])

    async def scenario() -> None:
        settings: dict[str, Any] = {"auto_offset_reset": "earliest", "metadata_max_age_ms": 300, **FAST}
        async with Consumer(bootstrap, group_id="pat-g", **settings) as consumer:
            with pytest.raises(ValueError, match="not both"):
                consumer.subscribe(["pat-a"], pattern="pat-.*")
            consumer.subscribe(pattern=r"pat-.*")
            got = await poll_until(consumer, 6)
            assert {r.queue for r in got} == {"pat-a", "pat-b"}
            assert sorted(consumer.assignment()) == [qp("pat-a", 0), qp("pat-a", 1), qp("pat-b", 0)]
            create(bootstrap, "pat-c", 1)  # a new queue joins the subscription at the next look
            produce(bootstrap, "pat-c", [b"new-0", b"new-1"])
            later = await poll_until(consumer, 2)
            assert [r.value for r in later] == [b"new-0", b"new-1"]
            assert qp("pat-c", 0) in consumer.assignment()
            assert all(tp.queue != "unpatterned" for tp in consumer.assignment())

    run(scenario)


def test_a_missing_subscribed_queue_is_warned_about_until_it_appears(
    cbroker: BrokerProcess, caplog: pytest.LogCaptureFixture
) -> None:
    bootstrap = cbroker.bootstrap
    create(bootstrap, "present", 1)

    def warnings_about(name: str) -> list[str]:
        return [
            r.getMessage()
            for r in caplog.records
            if r.levelno == logging.WARNING and r.name == "logq.client.consumer" and name in r.getMessage()
        ]

    async def scenario() -> None:
        settings: dict[str, Any] = {"auto_offset_reset": "earliest", "metadata_max_age_ms": 400, **FAST}
        async with Consumer(bootstrap, group_id="typo-g", **settings) as consumer:
            with pytest.raises(InvalidQueueNameError, match="may only contain"):
                consumer.subscribe(["no good"])
            consumer.subscribe(["present", "typo-q"])
            with caplog.at_level(logging.WARNING, logger="logq.client.consumer"):
                deadline = time.monotonic() + 1.5
                while time.monotonic() < deadline:
                    assert await consumer.poll(0.2) == []
            said = warnings_about("typo-q")
            assert len(said) >= 2, said  # it repeats while the queue is missing
            assert "do not exist" in said[0]
            assert warnings_about("present") == []
            create(bootstrap, "typo-q", 2)  # created after all: the group rejoins and takes it
            produce(bootstrap, "typo-q", [b"late-0", b"late-1"])
            caplog.clear()
            with caplog.at_level(logging.WARNING, logger="logq.client.consumer"):
                got = await poll_until(consumer, 2)
            assert sorted(r.value for r in got) == [b"late-0", b"late-1"]
            assert sorted(consumer.assignment()) == [qp("present", 0), qp("typo-q", 0), qp("typo-q", 1)]
            assert warnings_about("typo-q") == []

    run(scenario)


def test_eager_rebalance_callbacks(cbroker: BrokerProcess) -> None:
    bootstrap = cbroker.bootstrap
    create(bootstrap, "rb", 4)
    events: list[tuple[str, str, list[QueuePartition]]] = []

    def recorder(who: str, what: str) -> Callable[[Consumer, list[QueuePartition]], None]:
        return lambda consumer, partitions: events.append((who, what, sorted(partitions)))

    async def async_assign(consumer: Consumer, partitions: list[QueuePartition]) -> None:
        await asyncio.sleep(0)
        events.append(("c2", "assign", sorted(partitions)))

    async def scenario() -> None:
        pump = Pump()
        settings: dict[str, Any] = {"group_id": "rb-g", **FAST}
        c1, c2 = Consumer(bootstrap, **settings), Consumer(bootstrap, **settings)
        try:
            c1.subscribe(["rb"], on_assign=recorder("c1", "assign"), on_revoke=recorder("c1", "revoke"))
            pump.start(c1)
            await wait_until(lambda: len(c1.assignment()) == 4, 15, "c1 to get every partition")
            assert events == [("c1", "assign", parts("rb", 0, 1, 2, 3))]
            c2.subscribe(["rb"], on_assign=async_assign, on_revoke=recorder("c2", "revoke"))
            pump.start(c2)
            await wait_until(lambda: len(c1.assignment()) == len(c2.assignment()) == 2, 15, "a shared group")
            assert ("c1", "revoke", parts("rb", 0, 1, 2, 3)) in events
            assert sorted(c1.assignment() + c2.assignment()) == parts("rb", 0, 1, 2, 3)
            assert ("c1", "assign", sorted(c1.assignment())) in events
            assert ("c2", "assign", sorted(c2.assignment())) in events
            # range over sorted member ids: the smaller id gets partitions 0 and 1
            assert pump.overlaps == []
            owned_by_c2 = sorted(c2.assignment())
            events.clear()
            await pump.stop(c2)
            await c2.close()  # on_revoke, then LeaveGroup: c1 gets everything back
            assert events[0] == ("c2", "revoke", owned_by_c2)
            await wait_until(lambda: len(c1.assignment()) == 4, 15, "c1 to take everything back")
            assert ("c1", "assign", parts("rb", 0, 1, 2, 3)) in events
        finally:
            await pump.stop_all()
            await c1.close()
            await c2.close()

    run(scenario)


def test_cooperative_sticky_moves_only_what_it_must(cbroker: BrokerProcess) -> None:
    bootstrap = cbroker.bootstrap
    create(bootstrap, "cs", 6)
    produce(bootstrap, "cs", [b"%d" % i for i in range(120)])
    events: dict[str, list[tuple[str, list[QueuePartition]]]] = {"c1": [], "c2": [], "c3": []}

    def recorder(who: str, what: str) -> Callable[[Consumer, list[QueuePartition]], None]:
        return lambda consumer, partitions: events[who].append((what, sorted(partitions)))

    async def scenario() -> None:
        pump = Pump()
        settings: dict[str, Any] = {
            "group_id": "cs-g", "assignors": ("cooperative-sticky",), "auto_offset_reset": "earliest", **FAST,
        }  # fmt: skip
        consumers = {name: Consumer(bootstrap, **settings) for name in ("c1", "c2", "c3")}
        c1, c2, c3 = consumers.values()
        try:
            for name, consumer in consumers.items():
                consumer.subscribe(
                    ["cs"], on_assign=recorder(name, "assign"), on_revoke=recorder(name, "revoke")
                )
            pump.start(c1)
            await wait_until(lambda: len(c1.assignment()) == 6, 15, "c1 to get every partition")
            before = set(c1.assignment())
            pump.start(c2)
            await wait_until(lambda: len(c1.assignment()) == len(c2.assignment()) == 3, 15, "two owners")
            kept = set(c1.assignment())
            assert kept < before
            # c1 revoked exactly what c2 got, nothing else; c2 got it in a second round
            assert [e for e in events["c1"] if e[0] == "revoke"] == [("revoke", sorted(c2.assignment()))]
            assert events["c2"][-1] == ("assign", sorted(c2.assignment()))
            pump.start(c3)
            await wait_until(
                lambda: sorted(len(c.assignment()) for c in consumers.values()) == [2, 2, 2], 15, "3"
            )
            assert set(c1.assignment()) <= kept
            assert pump.overlaps == []
            assert all(("revoke", sorted(before)) not in events[n] for n in events)  # never all at once
            await wait_until(lambda: sum(len(r) for r in pump.records.values()) >= 120, 15, "every record")
            seen = [(r.partition, r.offset) for rs in pump.records.values() for r in rs]
            assert len(set(seen)) == 120
        finally:
            await pump.stop_all()
            for consumer in consumers.values():
                await consumer.close()

    run(scenario)


def test_a_consumer_that_stops_polling_leaves_and_loses_its_partitions(cbroker: BrokerProcess) -> None:
    bootstrap = cbroker.bootstrap
    create(bootstrap, "mp", 2)
    lost: list[list[QueuePartition]] = []

    async def scenario() -> None:
        pump = Pump()
        settings: dict[str, Any] = {"group_id": "mp-g", **FAST}
        slow = Consumer(bootstrap, max_poll_interval_ms=1500, **settings)
        busy = Consumer(bootstrap, **settings)
        try:
            slow.subscribe(["mp"], on_lost=lambda c, partitions: lost.append(sorted(partitions)))
            busy.subscribe(["mp"])
            pump.start(slow)
            pump.start(busy)
            await wait_until(lambda: len(slow.assignment()) == len(busy.assignment()) == 1, 15, "sharing")
            owned = sorted(slow.assignment())
            await pump.stop(slow)  # the application stops polling: after 1.5 s the member leaves
            await wait_until(lambda: len(busy.assignment()) == 2, 15, "busy to take over")
            assert lost == []
            await slow.poll(0.1)  # back: its partitions were lost (no commit), then it rejoins
            assert lost == [owned]
            pump.start(slow)
            await wait_until(
                lambda: len(slow.assignment()) == len(busy.assignment()) == 1, 15, "sharing again"
            )
        finally:
            await pump.stop_all()
            await slow.close()
            await busy.close()

    run(scenario)
