"""Connection limits in cluster mode: the inter-broker listener is never limited. Two real brokers
(and a real ZooKeeper) whose client listener is full, from the very address the brokers connect from:
a queue created then still replicates (acks=all succeeds), while one more client is refused."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from logq.protocol import messages as m
from logq.testing import make_batch
from tests.broker_process import BrokerProcess
from tests.cluster.conftest import SESSION_TIMEOUT_MS, wait_for
from tests.wire_client import WireClient

LIMIT = 3  # max.connections and max.connections.per.ip of each broker


@pytest.fixture
def brokers(tmp_path: Path, zookeeper: str) -> Iterator[dict[int, BrokerProcess]]:
    connect = f"{zookeeper}/logq-limits-{uuid.uuid4().hex[:8]}"
    procs = {
        i: BrokerProcess(
            tmp_path / f"broker-{i}",
            broker={
                "broker.id": i,
                "zookeeper.connect": connect,
                "zookeeper.session.timeout.ms": SESSION_TIMEOUT_MS,
                "inter.broker.listener.name": "INTERNAL",
                "default.replication.factor": 2,
                "max.connections": LIMIT,
                "max.connections.per.ip": LIMIT,
            },
            listeners={"CLIENTS": "PLAINTEXT", "INTERNAL": "PLAINTEXT"},
        )
        for i in (1, 2)
    }
    try:
        with ThreadPoolExecutor(2) as pool:
            for started in [pool.submit(p.start) for p in procs.values()]:
                started.result()
        yield procs
    finally:
        for proc in procs.values():
            proc.kill()


def test_replication_goes_on_while_the_client_listeners_are_full(brokers: dict[int, BrokerProcess]) -> None:
    def both_seen() -> bool:
        with WireClient(brokers[1].address("CLIENTS")) as client:
            return len(client.call(m.MetadataRequest(topics=None), 8).brokers) == 2

    wait_for(both_seen, "both brokers registered")
    with contextlib.ExitStack() as held:
        # Every client slot of both brokers taken, from 127.0.0.1, where the brokers connect from too.
        clients = {
            i: [held.enter_context(WireClient(p.address("CLIENTS"))) for _ in range(LIMIT)]
            for i, p in brokers.items()
        }
        with WireClient(brokers[1].address("CLIENTS")) as extra:
            assert extra.is_closed_by_peer(5), "a client over the limit was let in"
        topic = m.CreatableTopic(name="replicated", num_partitions=1, replication_factor=2)
        created = clients[1][0].call(m.CreateTopicsRequest(topics=[topic], timeout_ms=10_000), 4)
        assert created.topics[0].error_code == 0

        def leader() -> int | None:
            reply = clients[1][0].call(
                m.MetadataRequest(topics=[m.MetadataRequestTopic(name="replicated")]), 8
            )
            (partition,) = reply.topics[0].partitions
            return partition.leader_id if partition.leader_id > 0 and len(partition.isr_nodes) == 2 else None

        leader_id = wait_for(leader, "a leader with both replicas in sync")
        # acks=all needs the follower to fetch from the leader: over a new inter-broker connection,
        # opened while the leader's limits are reached.
        data = m.PartitionProduceData(index=0, records=make_batch(3))
        produce = m.ProduceRequest(
            acks=-1,
            timeout_ms=15_000,
            topic_data=[m.TopicProduceData(name="replicated", partition_data=[data])],
        )
        answer = clients[leader_id][0].call(produce, 8).responses[0].partition_responses[0]
        assert answer.error_code == 0
    for proc in brokers.values():
        assert "Traceback" not in proc.log_text


def test_limits_on_a_cluster_broker_with_one_listener_are_said_not_to_apply(
    tmp_path: Path, zookeeper: str
) -> None:
    proc = BrokerProcess(
        tmp_path / "data",
        broker={
            "zookeeper.connect": f"{zookeeper}/logq-limits-{uuid.uuid4().hex[:8]}",
            "zookeeper.session.timeout.ms": SESSION_TIMEOUT_MS,
            "max.connections.per.ip": 5,
        },
    )
    try:
        proc.start()
        assert "the connection limits do not apply to listener PLAINTEXT" in proc.log_text
    finally:
        proc.kill()
