"""Replication: RF 3 queues on three broker processes, acks=all, followers, the ISR, failover.

The tests share one cluster (module scope) and run in file order."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from logq import Consumer as LogqConsumer
from logq import Producer as LogqProducer
from logq import batch as rb
from logq.error_codes import ErrorCode
from logq.groups.offsets import OFFSETS_QUEUE, partition_for
from logq.protocol import messages as m
from logq.segments.files import LOG_SUFFIX, partition_dir_name
from tests.broker.test_bad_input import produce_at
from tests.cluster.conftest import Cluster, wait_for
from tests.cluster.test_cluster import coordinator_of
from tests.compat.test_max_timestamp import check_max_timestamp, create_and_fill
from tests.wire_client import WireClient

QUEUE = "replicated"
PARTITIONS = 3
LAG_MS = 1500


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, zookeeper: str) -> Iterator[Cluster]:
    chroot = tmp_path_factory.mktemp("replication").name
    c = Cluster(
        tmp_path_factory.mktemp("brokers"),
        f"{zookeeper}/logq-{chroot}",
        settings={"replica.lag.time.max.ms": LAG_MS},
    )
    try:
        yield c.start()
    finally:
        c.stop()


def create(
    cluster: Cluster, name: str, partitions: int, rf: int, configs: dict[str, str] | None = None
) -> Any:
    topic = m.CreatableTopic(
        name=name,
        num_partitions=partitions,
        replication_factor=rf,
        configs=[m.CreatableTopicConfig(name=k, value=v) for k, v in (configs or {}).items()],
    )
    with WireClient(cluster.brokers[cluster.live()[0]].bootstrap, timeout=40) as client:
        return client.call(m.CreateTopicsRequest(topics=[topic], timeout_ms=30_000), 4).topics[0]


def partition_meta(cluster: Cluster, queue: str, partition: int) -> Any:
    topic = cluster.metadata(cluster.live()[0], [queue]).topics[0]
    return next(p for p in topic.partitions if p.partition_index == partition)


def full_isr(cluster: Cluster, queue: str, partitions: int) -> bool:
    topic = cluster.metadata(cluster.live()[0], [queue]).topics[0]
    return len(topic.partitions) == partitions and all(
        p.leader_id >= 0 and sorted(p.isr_nodes) == sorted(p.replica_nodes) for p in topic.partitions
    )


def segment_bytes(data_dir: Path, queue: str, partition: int) -> bytes:
    directory = data_dir / partition_dir_name(queue, partition)
    return b"".join(f.read_bytes() for f in sorted(directory.glob(f"*{LOG_SUFFIX}")))


def replicas_identical(cluster: Cluster, queue: str, partition: int) -> bool:
    copies = {segment_bytes(b.data_dir, queue, partition) for b in cluster.brokers.values()}
    return len(copies) == 1


class AckedProducer:
    """confluent-kafka with acks=all and idempotence; remembers every acknowledged (partition, offset)."""

    def __init__(self, cluster: Cluster) -> None:
        self.acked: dict[tuple[int, int], bytes] = {}
        self.failed: list[KafkaError] = []
        self._producer = Producer(
            {
                "bootstrap.servers": cluster.bootstrap,
                "acks": "all",
                "enable.idempotence": True,
                "linger.ms": 2,
                "message.timeout.ms": 60_000,
                "retry.backoff.ms": 100,
                "topic.metadata.refresh.interval.ms": 1000,
            }
        )

    def _report(self, error: KafkaError | None, msg: Message) -> None:
        if error is not None:
            self.failed.append(error)
            return
        value = msg.value()
        assert value is not None
        self.acked[(msg.partition(), msg.offset())] = value

    def send(self, values: list[bytes], partition: int | None = None) -> None:
        for value in values:
            if partition is None:
                self._producer.produce(QUEUE, value, on_delivery=self._report)
            else:
                self._producer.produce(QUEUE, value, partition=partition, on_delivery=self._report)
            self._producer.poll(0)

    def flush(self, timeout: float = 60) -> None:
        assert self._producer.flush(timeout) == 0


def read_partition(cluster: Cluster, partition: int, count: int, timeout: float = 30) -> dict[int, bytes]:
    consumer = Consumer(
        {"bootstrap.servers": cluster.bootstrap, "group.id": "check", "enable.auto.commit": False}
    )
    consumer.assign([TopicPartition(QUEUE, partition, 0)])
    got: dict[int, bytes] = {}
    deadline = time.monotonic() + timeout
    try:
        while len(got) < count and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                value = msg.value()
                assert value is not None
                got[msg.offset()] = value
    finally:
        consumer.close()
    return got


def assert_nothing_acked_lost(cluster: Cluster, acked: dict[tuple[int, int], bytes]) -> None:
    for partition in range(PARTITIONS):
        mine = {offset: value for (p, offset), value in acked.items() if p == partition}
        got = read_partition(cluster, partition, max(mine, default=-1) + 1)
        assert {offset: got.get(offset) for offset in mine} == mine


def test_an_rf3_queue_is_copied_to_every_replica(cluster: Cluster) -> None:
    created = create(cluster, QUEUE, PARTITIONS, 3)
    assert created.error_code == ErrorCode.NONE, created.error_message
    wait_for(lambda: full_isr(cluster, QUEUE, PARTITIONS), "an ISR of 3 everywhere")
    for p in cluster.metadata(1, [QUEUE]).topics[0].partitions:
        assert sorted(p.replica_nodes) == [1, 2, 3]
    producer = AckedProducer(cluster)
    for partition in range(PARTITIONS):
        producer.send([b"first-%d-%d" % (partition, i) for i in range(100)], partition=partition)
    producer.flush()
    assert not producer.failed
    assert len(producer.acked) == 300
    for partition in range(PARTITIONS):
        wait_for(
            lambda p=partition: replicas_identical(cluster, QUEUE, p), f"identical replicas of {partition}"
        )
    assert_nothing_acked_lost(cluster, producer.acked)


def test_describe_reports_min_insync_replicas_2_for_rf3(cluster: Cluster) -> None:
    request = m.DescribeConfigsRequest(
        resources=[m.DescribeConfigsResource(resource_type=2, resource_name=QUEUE, configuration_keys=None)]
    )
    with WireClient(cluster.brokers[1].bootstrap) as client:
        configs = client.call(request, 1).results[0].configs
    assert {c.name: c.value for c in configs}["min.insync.replicas"] == "2"


def test_max_timestamp_through_confluent_kafka_on_an_rf3_queue(cluster: Cluster) -> None:
    """ListOffsets v7 MAX_TIMESTAMP (KIP-734) from the partition's leader, out-of-order timestamps."""
    check_max_timestamp(create_and_fill(cluster.bootstrap, "maxts", replication_factor=3))


def test_the_isr_shrinks_and_acks_all_is_refused_below_min_insync_then_it_grows_back(
    cluster: Cluster,
) -> None:
    meta = partition_meta(cluster, QUEUE, 0)
    leader = meta.leader_id
    followers = [b for b in meta.replica_nodes if b != leader]
    cluster.brokers[followers[0]].pause()
    try:
        wait_for(
            lambda: len(partition_meta(cluster, QUEUE, 0).isr_nodes) == 2, "the ISR without a paused follower"
        )
        with WireClient(cluster.brokers[leader].bootstrap) as client:
            answer = produce_at(client, QUEUE, rb.build_batch([rb.Record(b"two-of-three")]), acks=-1)
        assert answer.error_code == ErrorCode.NONE  # min.insync.replicas 2: still met
        cluster.brokers[followers[1]].pause()
        try:
            wait_for(
                lambda: partition_meta(cluster, QUEUE, 0).isr_nodes == [leader], "an ISR of the leader alone"
            )
            with WireClient(cluster.brokers[leader].bootstrap) as client:
                refused = produce_at(client, QUEUE, rb.build_batch([rb.Record(b"alone")]), acks=-1)
                assert refused.error_code == ErrorCode.NOT_ENOUGH_REPLICAS
                leader_only = produce_at(client, QUEUE, rb.build_batch([rb.Record(b"acks=1")]), acks=1)
                assert leader_only.error_code == ErrorCode.NONE
        finally:
            cluster.brokers[followers[1]].resume()
    finally:
        cluster.brokers[followers[0]].resume()
    wait_for(lambda: full_isr(cluster, QUEUE, PARTITIONS), "the followers back in the ISR", timeout=30)
    wait_for(lambda: replicas_identical(cluster, QUEUE, 0), "identical replicas after the catch-up")


def test_an_offset_commit_the_isr_never_got_is_not_fetched(cluster: Cluster) -> None:
    """OffsetFetch answers the last acknowledged commit: one that could not reach the ISR of its
    __consumer_offsets partition is refused and stays hidden (a failover could lose it)."""
    group = "unacknowledged"

    def commit(client: WireClient, offset: int) -> int:
        part = m.OffsetCommitRequestPartition(
            partition_index=0, committed_offset=offset, committed_metadata=""
        )
        topics = [m.OffsetCommitRequestTopic(name=QUEUE, partitions=[part])]
        answer = client.call(m.OffsetCommitRequest(group_id=group, topics=topics), 7)
        return int(answer.topics[0].partitions[0].error_code)

    def fetched(client: WireClient) -> int:
        topics = [m.OffsetFetchRequestTopic(name=QUEUE, partition_indexes=[0])]
        answer = client.call(m.OffsetFetchRequest(group_id=group, topics=topics), 5)
        return int(answer.topics[0].partitions[0].committed_offset)

    def first_commit() -> int | None:
        # Earlier tests moved leaders and a resumed broker may still name the old coordinator: the
        # coordinator is whoever takes the commit.
        node = coordinator_of(cluster, group)
        with WireClient(cluster.brokers[node].bootstrap) as client:
            return node if commit(client, 1) == ErrorCode.NONE else None

    coordinator = wait_for(first_commit, "a first commit", timeout=30)
    offsets_partitions = len(cluster.metadata(coordinator, [OFFSETS_QUEUE]).topics[0].partitions)
    partition = partition_for(group, offsets_partitions)

    def leaders_view() -> Any:
        topic = cluster.metadata(coordinator, [OFFSETS_QUEUE]).topics[0]
        return next(p for p in topic.partitions if p.partition_index == partition)

    wait_for(lambda: len(leaders_view().isr_nodes) == 3, "a full offsets ISR")
    followers = [b for b in leaders_view().replica_nodes if b != coordinator]
    with WireClient(cluster.brokers[coordinator].bootstrap, timeout=30) as client:
        assert fetched(client) == 1
        for follower in followers:
            cluster.brokers[follower].pause()
        try:
            assert commit(client, 2) != ErrorCode.NONE  # only the leader has it: not acknowledged
            assert fetched(client) == 1
        finally:
            for follower in followers:
                cluster.brokers[follower].resume()
    wait_for(lambda: len(leaders_view().isr_nodes) == 3, "the offsets ISR whole again", timeout=30)
    with WireClient(cluster.brokers[coordinator].bootstrap, timeout=30) as client:
        assert commit(client, 3) == ErrorCode.NONE
        assert fetched(client) == 3


def test_a_dead_follower_stays_out_of_the_isr(cluster: Cluster) -> None:
    """The controller drops a killed follower from the ISR; its leader must not put it back from the
    progress it made before it died (nothing fetches for it any more)."""
    meta = partition_meta(cluster, QUEUE, 0)
    victim = next(b for b in meta.replica_nodes if b != meta.leader_id)
    cluster.brokers[victim].kill()
    wait_for(lambda: victim not in partition_meta(cluster, QUEUE, 0).isr_nodes, "the ISR without the dead")
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        assert victim not in partition_meta(cluster, QUEUE, 0).isr_nodes
        time.sleep(0.1)
    cluster.brokers[victim].start()
    wait_for(
        lambda: full_isr(cluster, QUEUE, PARTITIONS), "the restarted follower back in the ISR", timeout=30
    )


def test_killing_a_leader_moves_leadership_and_loses_nothing_acknowledged(cluster: Cluster) -> None:
    producer = AckedProducer(cluster)
    producer.send([b"before-%d" % i for i in range(200)], partition=1)
    producer.flush()
    old = partition_meta(cluster, QUEUE, 1)
    cluster.brokers[old.leader_id].kill()
    producer.send([b"during-%d" % i for i in range(200)], partition=1)
    producer.flush()
    new = partition_meta(cluster, QUEUE, 1)
    assert new.leader_id not in (old.leader_id, -1)
    assert not producer.failed
    assert len(producer.acked) == 400
    cluster.brokers[old.leader_id].start()
    wait_for(lambda: full_isr(cluster, QUEUE, PARTITIONS), "the restarted broker back in the ISR", timeout=30)
    wait_for(lambda: replicas_identical(cluster, QUEUE, 1), "identical replicas after the failover")
    assert_nothing_acked_lost(cluster, producer.acked)


def test_a_controlled_shutdown_hands_leadership_over_before_the_broker_exits(cluster: Cluster) -> None:
    producer = AckedProducer(cluster)
    producer.send([b"steady-%d" % i for i in range(100)], partition=2)
    producer.flush()
    old = partition_meta(cluster, QUEUE, 2)
    victim = cluster.brokers[old.leader_id]
    assert victim.stop() == 0  # SIGTERM; returns once the process has exited
    assert "controlled shutdown: leaderships moved away" in victim.log_text
    new = partition_meta(cluster, QUEUE, 2)  # at once: no session timeout to wait for
    assert new.leader_id not in (old.leader_id, -1)
    assert old.leader_id not in new.isr_nodes
    producer.send([b"after-%d" % i for i in range(100)], partition=2)
    producer.flush()
    assert not producer.failed
    victim.start()
    wait_for(lambda: full_isr(cluster, QUEUE, PARTITIONS), "the stopped broker back in the ISR", timeout=30)
    wait_for(lambda: replicas_identical(cluster, QUEUE, 2), "identical replicas after the restart")
    assert_nothing_acked_lost(cluster, producer.acked)


def test_the_logq_client_follows_a_failover(cluster: Cluster) -> None:
    """logq's own producer and consumer ride out a leader's SIGKILL on their own: every acknowledged
    record is read back, in order, once."""
    producer = LogqProducer(cluster.bootstrap, acks="all")
    try:
        futures = [producer.send(QUEUE, b"logq-%d" % i, partition=1) for i in range(100)]
        producer.flush(30)
        old = partition_meta(cluster, QUEUE, 1)
        cluster.brokers[old.leader_id].kill()
        futures += [producer.send(QUEUE, b"logq-%d" % i, partition=1) for i in range(100, 200)]
        producer.flush(60)
        acked = {f.result().offset: b"logq-%d" % i for i, f in enumerate(futures)}
    finally:
        producer.close()
    assert partition_meta(cluster, QUEUE, 1).leader_id not in (old.leader_id, -1)
    cluster.brokers[old.leader_id].start()
    wait_for(lambda: full_isr(cluster, QUEUE, PARTITIONS), "the restarted broker back in the ISR", timeout=30)
    consumer = LogqConsumer(cluster.bootstrap)
    try:
        consumer.assign([(QUEUE, 1)])
        consumer.seek((QUEUE, 1), min(acked))
        got: dict[int, bytes] = {}
        deadline = time.monotonic() + 30
        while len(got) < len(acked) and time.monotonic() < deadline:
            for record in consumer.poll(timeout=0.5):
                if record.offset <= max(acked):
                    got[record.offset] = record.value
    finally:
        consumer.close()
    assert got == acked


def test_a_queue_deleted_while_a_replica_was_down_comes_back_without_the_old_data(cluster: Cluster) -> None:
    """The broker that was down during the deletion deletes the old queue's log when it starts again (it
    has a queue id the metadata no longer knows), and a queue of the same name created then starts empty
    on every replica."""
    name = "reborn"

    def produced(values: list[bytes]) -> bool:  # to the leader of the moment (a new queue's may move)
        leader = partition_meta(cluster, name, 0).leader_id
        if leader < 0:
            return False
        with WireClient(cluster.brokers[leader].bootstrap) as client:
            batch = rb.build_batch([rb.Record(v) for v in values])
            return bool(produce_at(client, name, batch, acks=-1).error_code == ErrorCode.NONE)

    assert create(cluster, name, 1, 3).error_code == ErrorCode.NONE
    for i in range(5):  # one batch each: a truncation by epoch would keep some of them
        wait_for(lambda i=i: produced([b"old-%d" % i]), "the old queue's records")
    leader = partition_meta(cluster, name, 0).leader_id
    victim = next(b for b in cluster.live() if b != leader)
    wait_for(lambda: b"old-4" in segment_bytes(cluster.brokers[victim].data_dir, name, 0), "the old copy")
    cluster.brokers[victim].kill()
    with WireClient(cluster.brokers[leader].bootstrap, timeout=40) as client:
        deleted = client.call(m.DeleteTopicsRequest(topic_names=[name], timeout_ms=30_000), 3)
        assert deleted.responses[0].error_code == ErrorCode.NONE
    cluster.brokers[victim].start()
    wait_for(lambda: len(cluster.metadata(victim).brokers) == 3, "the restarted broker registered")
    assert not (cluster.brokers[victim].data_dir / partition_dir_name(name, 0)).exists()
    assert create(cluster, name, 1, 3).error_code == ErrorCode.NONE
    wait_for(lambda: produced([b"new-0", b"new-1"]), "the new queue's records")
    wait_for(lambda: full_isr(cluster, name, 1), "the whole ISR on the new queue", timeout=30)
    wait_for(lambda: replicas_identical(cluster, name, 0), "identical replicas of the new queue")
    assert b"old-" not in segment_bytes(cluster.brokers[victim].data_dir, name, 0)
