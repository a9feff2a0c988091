"""The synchronous Consumer, used from plain threads: a group of two consumers in two threads with their
callbacks run in the polling thread, and the offset and position methods."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from logq.client.cluster import QueuePartition
from logq.client.sync_consumer import Consumer
from logq.errors import ClientError, LogqError
from tests.broker_process import BrokerProcess
from tests.client.test_consumer import FAST, cbroker, committed_by_confluent, create, produce

__all__ = ["cbroker"]  # the fixture


def qp(queue: str, partition: int) -> QueuePartition:
    return QueuePartition(queue, partition)


def test_two_consumers_in_two_threads_share_a_group(cbroker: BrokerProcess) -> None:
    bootstrap = cbroker.bootstrap
    create(bootstrap, "sync", 4)
    produce(bootstrap, "sync", [b"%d" % i for i in range(200)])
    seen: list[tuple[int, int]] = []
    owned: dict[str, list[QueuePartition]] = {}
    problems: list[str] = []
    lock = threading.Lock()
    done = threading.Event()

    def member(name: str) -> None:
        me = threading.get_ident()
        settings: dict[str, Any] = {"group_id": "sync-g", "auto_offset_reset": "earliest", **FAST}
        with Consumer(bootstrap, enable_auto_commit=False, max_poll_records=50, **settings) as consumer:

            def on_revoke(c: Consumer, partitions: list[QueuePartition]) -> None:
                if threading.get_ident() != me:
                    problems.append(f"{name}: on_revoke ran in another thread")
                c.commit()  # a callback may call the consumer: the partitions are still assigned

            def on_assign(c: Consumer, partitions: list[QueuePartition]) -> None:
                if threading.get_ident() != me:
                    problems.append(f"{name}: on_assign ran in another thread")
                for tp in partitions:
                    c.position(tp)

            consumer.subscribe(["sync"], on_assign=on_assign, on_revoke=on_revoke)
            while not done.is_set():
                records = consumer.poll(0.1)
                with lock:
                    seen.extend((r.partition, r.offset) for r in records)
                    if not done.is_set():  # once done, the other member's leaving rebalances the group
                        owned[name] = consumer.assignment()
                if records:
                    consumer.commit()  # after processing: at least once

    threads = [threading.Thread(target=member, args=(f"m{i}",)) for i in range(2)]
    threads[0].start()
    deadline = time.monotonic() + 30
    while len(seen) < 50:  # the first member is consuming before the second joins
        assert time.monotonic() < deadline
        time.sleep(0.02)
    threads[1].start()

    def balanced() -> bool:
        with lock:
            return len(owned.get("m0", [])) == len(owned.get("m1", [])) == 2

    while not balanced() and time.monotonic() < deadline:
        time.sleep(0.02)
    produce(bootstrap, "sync", [b"%d" % i for i in range(200, 400)])
    # Wait for every record and a settled assignment before stopping the members.
    while (len(set(seen)) < 400 or not balanced()) and time.monotonic() < deadline:
        time.sleep(0.05)
    done.set()
    for thread in threads:
        thread.join(30)
    assert problems == []
    assert sorted(owned["m0"] + owned["m1"]) == [qp("sync", p) for p in range(4)]
    assert len(set(seen)) == 400
    assert len(seen) == 400  # commits in on_revoke: nothing was read twice
    assert committed_by_confluent(bootstrap, "sync-g", "sync", 4) == [
        sum(1 for p, _ in set(seen) if p == partition) for partition in range(4)
    ]


def test_sync_offsets_positions_and_commit_callbacks(cbroker: BrokerProcess) -> None:
    bootstrap = cbroker.bootstrap
    create(bootstrap, "sy", 2)
    produce(bootstrap, "sy", [b"%d" % i for i in range(10)], partition=0)
    tp0, tp1 = qp("sy", 0), qp("sy", 1)
    results: list[tuple[Any, Any, int]] = []
    with Consumer(bootstrap, group_id="sy-g", enable_auto_commit=False, fetch_max_wait_ms=100) as consumer:
        consumer.assign([tp0, ("sy", 1)])
        assert consumer.assignment() == [tp0, tp1]
        assert consumer.partitions_for("sy") == 2
        assert consumer.end_offsets([tp0, tp1]) == {tp0: 10, tp1: 0}
        assert consumer.beginning_offsets([tp0]) == {tp0: 0}
        assert consumer.offsets_for_times({tp0: 0}) == {tp0: 0}
        consumer.seek_to_beginning([tp0])
        assert consumer.position(tp0) == 0
        got = []
        deadline = time.monotonic() + 10
        while len(got) < 10 and time.monotonic() < deadline:
            got += consumer.poll(0.2)
        assert [r.offset for r in got] == list(range(10))
        consumer.commit()
        assert consumer.committed([tp0, tp1]) == {tp0: 10, tp1: 0}  # every assigned partition's position
        consumer.commit_async(
            {tp0: 3}, lambda err, offsets: results.append((err, offsets, threading.get_ident()))
        )
        consumer.commit({tp0: 4}, asynchronous=True)
        deadline = time.monotonic() + 10
        while not results and time.monotonic() < deadline:
            consumer.poll(0.05)  # the callback runs in this thread, during a later call
        assert results == [(None, {tp0: 3}, threading.get_ident())]
        assert consumer.committed([tp0]) in ({tp0: 4}, {tp0: 3})
        consumer.pause([tp0])
        assert consumer.paused() == [tp0]
        consumer.resume([tp0])
        consumer.seek(tp0, 5)
        assert consumer.position(tp0) == 5
        consumer.seek_to_end()
        assert consumer.position(tp0) == 10
    with pytest.raises(ClientError, match="closed"):
        consumer.poll(0)
    consumer.close()  # idempotent


def test_sync_consumer_errors(cbroker: BrokerProcess) -> None:
    with pytest.raises(LogqError):  # nothing listens there
        Consumer("127.0.0.1:1", request_timeout_ms=2000)
    with pytest.raises(ValueError, match="auto_offset_reset"):
        Consumer(cbroker.bootstrap, auto_offset_reset="nowhere")
    with Consumer(cbroker.bootstrap) as consumer, pytest.raises(LogqError, match="group_id"):
        consumer.commit()


def test_sync_pattern_subscription(cbroker: BrokerProcess) -> None:
    create(cbroker.bootstrap, "spat-1", 1)
    produce(cbroker.bootstrap, "spat-1", [b"x", b"y"])
    with Consumer(
        cbroker.bootstrap, group_id="spat-g", auto_offset_reset="earliest", metadata_max_age_ms=500, **FAST
    ) as consumer:
        consumer.subscribe(pattern="spat-[0-9]+")
        got: list[bytes | None] = []
        deadline = time.monotonic() + 15
        while len(got) < 2 and time.monotonic() < deadline:
            got += [r.value for r in consumer.poll(0.2)]
        assert got == [b"x", b"y"]
        assert consumer.assignment() == [QueuePartition("spat-1", 0)]
