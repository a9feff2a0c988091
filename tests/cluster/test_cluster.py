"""Cluster mode: three broker processes on one ZooKeeper, RF 1 queues spread over them.

The tests share one cluster (module scope) and run in file order; the last ones stop and kill brokers
and bring them back."""

from __future__ import annotations

import time
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition

from logq import batch as rb
from logq.error_codes import ErrorCode
from logq.protocol import messages as m
from logq.segments.files import partition_dir_name
from tests.broker.test_bad_input import fetch_request, list_latest_request, produce_at
from tests.cluster.conftest import OFFSETS_PARTITIONS, Cluster, wait_for
from tests.wire_client import WireClient

QUEUE = "spread"
PARTITIONS = 6
PER_PARTITION = 10


def create(cluster: Cluster, via: int, name: str, partitions: int, rf: int = 1) -> Any:
    topic = m.CreatableTopic(name=name, num_partitions=partitions, replication_factor=rf)
    with WireClient(cluster.brokers[via].bootstrap, timeout=40) as client:
        return client.call(m.CreateTopicsRequest(topics=[topic], timeout_ms=30_000), 4).topics[0]


def agreed_leaders(cluster: Cluster, queue: str) -> list[int] | None:
    """The leaders of ``queue``, if every live broker reports the same ones, all known."""
    seen = [cluster.leaders(i, queue) for i in cluster.live()]
    if all(s == seen[0] for s in seen) and seen[0] and -1 not in seen[0]:
        return seen[0]
    return None


def test_three_brokers_form_a_cluster_and_spread_an_rf1_queue(cluster: Cluster) -> None:
    for i in cluster.brokers:
        brokers = wait_for(
            lambda i=i: len(cluster.metadata(i).brokers) == 3 and cluster.metadata(i).brokers, "3 brokers"
        )
        assert {(b.node_id, b.host, b.port) for b in brokers} == {
            (j, "127.0.0.1", b.port) for j, b in cluster.brokers.items()
        }
    created = create(cluster, 1, QUEUE, PARTITIONS)
    assert created.error_code == ErrorCode.NONE, created.error_message
    leaders = wait_for(lambda: agreed_leaders(cluster, QUEUE), "the same leaders from every broker")
    assert sorted(leaders) == [1, 1, 2, 2, 3, 3]  # Kafka's placement: round-robin over the brokers
    topic = cluster.metadata(2, [QUEUE]).topics[0]
    for p in topic.partitions:
        assert p.error_code == ErrorCode.NONE
        assert p.replica_nodes == [p.leader_id]
        assert p.isr_nodes == [p.leader_id]
    controller = {cluster.metadata(i).controller_id for i in cluster.brokers}
    assert len(controller) == 1
    assert controller <= {1, 2, 3}


def test_a_replication_factor_above_the_live_brokers_is_refused(cluster: Cluster) -> None:
    refused = create(cluster, 2, "rf4", 3, rf=4)
    assert refused.error_code == ErrorCode.INVALID_REPLICATION_FACTOR
    assert "3 live broker" in refused.error_message
    assert cluster.metadata(1, ["rf4"]).topics[0].error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION


def test_a_broker_that_does_not_lead_answers_not_leader_or_follower(cluster: Cluster) -> None:
    leaders = wait_for(lambda: agreed_leaders(cluster, QUEUE), "leaders")
    partition, leader = 0, leaders[0]
    other = next(i for i in cluster.brokers if i != leader)
    batch = rb.build_batch([rb.Record(b"x")])
    with WireClient(cluster.brokers[other].bootstrap) as client:
        got = produce_at(client, QUEUE, batch, partition=partition)
        assert got.error_code == ErrorCode.NOT_LEADER_OR_FOLLOWER
        fetched = client.call(fetch_request(QUEUE, 0, partition=partition), 11).responses[0].partitions[0]
        assert fetched.error_code == ErrorCode.NOT_LEADER_OR_FOLLOWER
        listed = client.call(list_latest_request(QUEUE, partition), 5).topics[0].partitions[0]
        assert listed.error_code == ErrorCode.NOT_LEADER_OR_FOLLOWER
        unknown = produce_at(client, QUEUE, batch, partition=PARTITIONS)
        assert unknown.error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    with WireClient(cluster.brokers[leader].bootstrap) as client:
        listed = client.call(list_latest_request(QUEUE, partition), 5).topics[0].partitions[0]
        assert listed.error_code == ErrorCode.NONE
        assert listed.offset == 0


def test_confluent_kafka_produces_to_and_consumes_from_every_partition(cluster: Cluster) -> None:
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all"})
    for p in range(PARTITIONS):
        for i in range(PER_PARTITION):
            producer.produce(QUEUE, value=b"p%d-%d" % (p, i), partition=p)
    assert producer.flush(30) == 0
    assert read_all(cluster, QUEUE) == expected()


def expected() -> dict[int, list[bytes]]:
    return {p: [b"p%d-%d" % (p, i) for i in range(PER_PARTITION)] for p in range(PARTITIONS)}


def read_all(cluster: Cluster, queue: str, timeout: float = 30) -> dict[int, list[bytes]]:
    consumer = Consumer(
        {"bootstrap.servers": cluster.bootstrap, "group.id": "reader", "enable.auto.commit": False}
    )
    consumer.assign([TopicPartition(queue, p, 0) for p in range(PARTITIONS)])
    got: dict[int, list[bytes]] = {p: [] for p in range(PARTITIONS)}
    deadline = time.monotonic() + timeout
    try:
        while sum(map(len, got.values())) < PARTITIONS * PER_PARTITION and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                got[msg.partition()].append(msg.value())
    finally:
        consumer.close()
    return got


def coordinator_of(cluster: Cluster, group: str) -> int:
    def find() -> int | None:
        with WireClient(cluster.brokers[cluster.live()[0]].bootstrap) as client:
            answer = client.call(m.FindCoordinatorRequest(key=group, key_type=0), 2)
        return answer.node_id if answer.error_code == ErrorCode.NONE else None

    return wait_for(find, f"a coordinator for {group}", timeout=30)


def test_a_group_works_and_its_offsets_survive_the_loss_of_its_coordinator(cluster: Cluster) -> None:
    group = "billing"
    consumer = Consumer(
        {
            "bootstrap.servers": cluster.bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([QUEUE])
    seen = 0
    deadline = time.monotonic() + 40
    while seen < PARTITIONS * PER_PARTITION and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is not None and msg.error() is None:
            seen += 1
    assert seen == PARTITIONS * PER_PARTITION
    consumer.commit(asynchronous=False)
    consumer.close()

    coordinator = coordinator_of(cluster, group)
    others = [i for i in cluster.brokers if i != coordinator]
    # Any other broker refuses the group's requests.
    with WireClient(cluster.brokers[others[0]].bootstrap) as client:
        request = m.OffsetFetchRequest(group_id=group, topics=None)
        assert client.call(request, 5).error_code == ErrorCode.NOT_COORDINATOR

    # __consumer_offsets has 3 replicas: a follower takes over the group with its committed offsets.
    cluster.brokers[coordinator].kill()
    wait_for(lambda: coordinator_of(cluster, group) != coordinator, "another coordinator", timeout=30)
    fresh = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": group})
    try:
        committed = wait_for(
            lambda: [tp.offset for tp in fresh.committed([TopicPartition(QUEUE, p) for p in range(6)], 10)],
            "committed offsets",
        )
    finally:
        fresh.close()
    assert committed == [PER_PARTITION] * PARTITIONS
    cluster.brokers[coordinator].start()


def test_a_killed_broker_leaves_its_partitions_leaderless_until_it_returns(cluster: Cluster) -> None:
    before = wait_for(lambda: agreed_leaders(cluster, QUEUE), "leaders")
    victim = before[0]
    cluster.brokers[victim].kill()
    survivor = next(i for i in cluster.brokers if i != victim)

    def leaderless() -> list[int] | None:
        now = cluster.leaders(survivor, QUEUE)
        return now if all((b == -1) == (a == victim) for a, b in zip(before, now, strict=True)) else None

    wait_for(leaderless, f"broker {victim}'s partitions without a leader", timeout=20)
    with WireClient(cluster.brokers[survivor].bootstrap) as client:
        topic = client.call(m.MetadataRequest(topics=[m.MetadataRequestTopic(name=QUEUE)]), 8).topics[0]
    for p in topic.partitions:
        if before[p.partition_index] == victim:
            assert p.error_code == ErrorCode.LEADER_NOT_AVAILABLE

    cluster.brokers[victim].start()
    assert wait_for(lambda: agreed_leaders(cluster, QUEUE), "leaders again") == before
    assert read_all(cluster, QUEUE) == expected()  # RF 1: the data was only ever on the killed broker


def test_offsets_partitions_are_spread_and_led(cluster: Cluster) -> None:
    leaders = wait_for(lambda: agreed_leaders(cluster, "__consumer_offsets"), "offsets leaders")
    assert len(leaders) == OFFSETS_PARTITIONS


def test_a_queue_deleted_through_any_broker_is_removed_from_every_broker(cluster: Cluster) -> None:
    assert create(cluster, 2, "doomed", 3).error_code == ErrorCode.NONE
    wait_for(lambda: agreed_leaders(cluster, "doomed"), "leaders of doomed")
    dirs = [b.data_dir / partition_dir_name("doomed", p) for b in cluster.brokers.values() for p in range(3)]
    assert sum(d.exists() for d in dirs) == 3  # each partition on exactly one broker
    with WireClient(cluster.brokers[3].bootstrap, timeout=40) as client:
        deleted = client.call(m.DeleteTopicsRequest(topic_names=["doomed"], timeout_ms=30_000), 3)
    assert deleted.responses[0].error_code == ErrorCode.NONE
    wait_for(lambda: not any(d.exists() for d in dirs), "the partitions of doomed removed everywhere")
    for i in cluster.brokers:
        assert cluster.metadata(i, ["doomed"]).topics[0].error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION


def test_a_broker_whose_session_was_lost_leads_again_only_in_a_new_leader_epoch(cluster: Cluster) -> None:
    before = wait_for(lambda: agreed_leaders(cluster, QUEUE), "leaders")
    paused = before[1]
    survivor = next(i for i in cluster.brokers if i != paused)
    broker = cluster.brokers[paused]
    broker.pause()  # a zombie: past its session timeout, ZooKeeper ends its session
    try:
        wait_for(lambda: cluster.leaders(survivor, QUEUE)[1] == -1, "partition 1 leaderless", timeout=20)
    finally:
        broker.resume()
    wait_for(lambda: "ZooKeeper session lost" in broker.log_text, "the broker noticing its lost session")
    assert wait_for(lambda: agreed_leaders(cluster, QUEUE), "leaders again") == before
    with WireClient(broker.bootstrap) as client:
        ok = wait_for(
            lambda: (
                produce_at(client, QUEUE, rb.build_batch([rb.Record(b"after")]), partition=1).error_code
                == ErrorCode.NONE
            ),
            "produce accepted again",
        )
    assert ok
