"""Consumer groups on a real broker process: exact requests for the error paths, real clients for the rest."""

from __future__ import annotations

import asyncio
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from logq.error_codes import ErrorCode
from logq.protocol import messages as m
from tests.broker_process import BrokerProcess
from tests.wire_client import WireClient

FAST_GROUPS = {"group.initial.rebalance.delay.ms": 100, "offsets.topic.num.partitions": 5}


@pytest.fixture
def gbroker(tmp_path: Path) -> Any:
    proc = BrokerProcess(tmp_path / "g", broker=FAST_GROUPS).start()
    yield proc
    proc.kill()


def make_queue(bootstrap: str, name: str, partitions: int, messages: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])[name].result(30)
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for i in range(messages):
        producer.produce(name, key=b"%d" % i, value=b"v%06d" % i)
    assert producer.flush(30) == 0


def join(client: WireClient, member_id: str = "", version: int = 5) -> Any:
    request = m.JoinGroupRequest(
        group_id="g", session_timeout_ms=6000, rebalance_timeout_ms=10_000, member_id=member_id,
        protocol_type="consumer", protocols=[m.JoinGroupRequestProtocol(name="range", metadata=b"\x00\x00")],
    )  # fmt: skip
    return client.call(request, version)


def commit(client: WireClient, queue: str, offset: int, generation: int = -1, member: str = "") -> int:
    partition = m.OffsetCommitRequestPartition(
        partition_index=0, committed_offset=offset, committed_metadata=""
    )
    request = m.OffsetCommitRequest(
        group_id="g", generation_id=generation, member_id=member,
        topics=[m.OffsetCommitRequestTopic(name=queue, partitions=[partition])],
    )  # fmt: skip
    return int(client.call(request, 7).topics[0].partitions[0].error_code)


def committed(client: WireClient, queue: str) -> int:
    request = m.OffsetFetchRequest(
        group_id="g", topics=[m.OffsetFetchRequestTopic(name=queue, partition_indexes=[0])]
    )
    return int(client.call(request, 5).topics[0].partitions[0].committed_offset)


def test_group_error_paths_and_durable_commits(gbroker: BrokerProcess) -> None:
    make_queue(gbroker.bootstrap, "q", 1, 10)
    with WireClient(gbroker.bootstrap) as client:
        assert committed(client, "q") == -1  # never committed
        assert commit(client, "q", 4) == ErrorCode.NONE  # a simple commit on an empty group
        assert committed(client, "q") == 4
        # a group that exists only by its committed offsets is Empty, and listed (as Kafka does)
        assert [(g.group_id, g.protocol_type) for g in client.call(m.ListGroupsRequest(), 2).groups] == [
            ("g", "")
        ]
        assert client.call(m.DescribeGroupsRequest(groups=["g"]), 4).groups[0].group_state == "Empty"
        first = join(client)
        assert first.error_code == ErrorCode.MEMBER_ID_REQUIRED
        joined = join(client, first.member_id)
        assert (joined.error_code, joined.generation_id, joined.leader) == (0, 1, first.member_id)
        assert join(client, "stranger").error_code == ErrorCode.UNKNOWN_MEMBER_ID
        sync = m.SyncGroupRequest(group_id="g", generation_id=1, member_id=first.member_id, assignments=[])
        assert client.call(sync, 3).error_code == ErrorCode.NONE
        stale = m.HeartbeatRequest(group_id="g", generation_id=0, member_id=first.member_id)
        assert client.call(stale, 3).error_code == ErrorCode.ILLEGAL_GENERATION
        unknown = m.HeartbeatRequest(group_id="g", generation_id=1, member_id="nobody")
        assert client.call(unknown, 3).error_code == ErrorCode.UNKNOWN_MEMBER_ID
        # only members may commit to a group that has some (Kafka's validateOffsetCommit)
        assert commit(client, "q", 5) == ErrorCode.UNKNOWN_MEMBER_ID
        assert commit(client, "q", 6, generation=0, member=first.member_id) == ErrorCode.ILLEGAL_GENERATION
        assert commit(client, "q", 7, generation=1, member=first.member_id) == ErrorCode.NONE
        described = client.call(m.DescribeGroupsRequest(groups=["g", "none"]), 4).groups
        assert [(d.group_state, len(d.members)) for d in described] == [("Stable", 1), ("Dead", 0)]
        assert [g.group_id for g in client.call(m.ListGroupsRequest(), 2).groups] == ["g"]
    gbroker.kill()  # committed offsets are fsynced before the answer: they survive SIGKILL
    gbroker.start()
    with WireClient(gbroker.bootstrap) as client:
        assert committed(client, "q") == 7
    assert gbroker.stop() == 0  # and a clean restart
    gbroker.start()
    with WireClient(gbroker.bootstrap) as client:
        assert committed(client, "q") == 7
        # the group's member is gone with the old process, its offsets stay: it is listed as Empty
        assert [(g.group_id, g.protocol_type) for g in client.call(m.ListGroupsRequest(), 2).groups] == [
            ("g", "consumer")
        ]
        described = client.call(m.DescribeGroupsRequest(groups=["g"]), 4).groups[0]
        assert (described.group_state, described.protocol_type, described.members) == (
            "Empty",
            "consumer",
            [],
        )
        txn = client.call(m.FindCoordinatorRequest(key="t", key_type=1), 2)
        # not retriable: a transactional producer fails at once instead of waiting for its timeout
        assert txn.error_code == ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
        assert "not supported" in (txn.error_message or "")
        assert (
            client.call(m.FindCoordinatorRequest(key="t", key_type=9), 2).error_code
            == ErrorCode.INVALID_REQUEST
        )
        group = client.call(m.FindCoordinatorRequest(key="g", key_type=0), 2)
        assert (group.error_code, group.port) == (0, gbroker.port)


def consume_in_group(bootstrap: str, queue: str, seconds: float, out: dict[str, Any], name: str) -> None:
    consumer = Consumer({
        "bootstrap.servers": bootstrap, "group.id": "shared", "auto.offset.reset": "earliest",
        "enable.auto.commit": False, "session.timeout.ms": 6000,
    })  # fmt: skip
    consumer.subscribe(
        [queue],
        on_assign=lambda c, parts: out.setdefault("assigned", {}).__setitem__(
            name, [p.partition for p in parts]
        ),
    )
    seen = out.setdefault(name, [])
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        msg = consumer.poll(0.2)
        if msg is not None and not msg.error():
            seen.append((msg.partition(), msg.offset()))
            consumer.commit(msg, asynchronous=False)  # at least once: commit after processing
    consumer.close()


def test_confluent_kafka_members_share_the_partitions(gbroker: BrokerProcess) -> None:
    make_queue(gbroker.bootstrap, "shared.q", 6, 600)
    out: dict[str, Any] = {}
    threads = [
        threading.Thread(target=consume_in_group, args=(gbroker.bootstrap, "shared.q", 8, out, f"c{i}"))
        for i in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    owned = sorted(p for parts in out["assigned"].values() for p in parts)
    assert owned == [0, 1, 2, 3, 4, 5]  # each partition owned by exactly one member
    consumed = [x for name in ("c0", "c1", "c2") for x in out[name]]
    assert sorted(set(consumed)) == sorted(consumed)
    assert len(consumed) == 600
    with WireClient(gbroker.bootstrap) as client:
        request = m.OffsetFetchRequest(group_id="shared", topics=None)
        offsets = client.call(request, 5).topics[0].partitions
        assert sum(p.committed_offset for p in offsets) == 600


def test_kafka_python_aiokafka_and_kcat_groups(gbroker: BrokerProcess) -> None:
    from aiokafka import AIOKafkaConsumer  # type: ignore[import-untyped]
    from kafka import KafkaConsumer  # type: ignore[import-untyped]

    make_queue(gbroker.bootstrap, "multi", 2, 200)
    manual = KafkaConsumer(
        "multi", bootstrap_servers=gbroker.bootstrap, group_id="kp", auto_offset_reset="earliest",
        enable_auto_commit=False, consumer_timeout_ms=4000,
    )  # fmt: skip
    assert sum(1 for _ in manual) == 200
    manual.commit()
    manual.close()
    auto = KafkaConsumer(
        "multi", bootstrap_servers=gbroker.bootstrap, group_id="kp-auto", auto_offset_reset="earliest",
        enable_auto_commit=True, auto_commit_interval_ms=200, consumer_timeout_ms=4000,
    )  # fmt: skip
    assert sum(1 for _ in auto) == 200
    auto.close()  # commits on close

    async def aio(group: str, *, auto_commit: bool) -> int:
        consumer = AIOKafkaConsumer(
            "multi", bootstrap_servers=gbroker.bootstrap, group_id=group, auto_offset_reset="earliest",
            enable_auto_commit=auto_commit, auto_commit_interval_ms=200,
        )  # fmt: skip
        await consumer.start()
        seen = 0
        try:
            deadline = time.monotonic() + 20
            while seen < 200 and time.monotonic() < deadline:
                batches = await consumer.getmany(timeout_ms=500)
                seen += sum(len(v) for v in batches.values())
                if not auto_commit:
                    await consumer.commit()
        finally:
            await consumer.stop()  # an auto-committing consumer commits on close
        return seen

    assert asyncio.run(aio("aio-manual", auto_commit=False)) == 200
    assert asyncio.run(aio("aio", auto_commit=True)) == 200
    kcat = subprocess.run(
        ["kcat", "-b", gbroker.bootstrap, "-G", "kc", "multi", "-o", "beginning", "-e", "-q",
         "-X", "session.timeout.ms=6000"],
        capture_output=True, timeout=60, check=True,
    )  # fmt: skip
    assert kcat.stdout.count(b"\n") == 200
    with WireClient(gbroker.bootstrap) as client:
        for group in ("kp", "kp-auto", "aio", "aio-manual", "kc"):
            request = m.OffsetFetchRequest(group_id=group, topics=None)
            parts = [p for t in client.call(request, 5).topics for p in t.partitions]
            assert sum(p.committed_offset for p in parts) == 200, group
