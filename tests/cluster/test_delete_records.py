"""DeleteRecords in a three-broker cluster: the answer comes once every in-sync replica holds the new log
start durably, and a failover keeps it (the new leader answers EARLIEST with it)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from logq.error_codes import ErrorCode
from logq.segments.files import LOG_START_FILE, partition_dir_name
from tests.cluster.conftest import Cluster, wait_for
from tests.cluster.test_replication import create, full_isr, partition_meta
from tests.compat.test_delete_records import delete_records_raw

QUEUE = "trimmed"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, zookeeper: str) -> Iterator[Cluster]:
    chroot = tmp_path_factory.mktemp("records").name
    c = Cluster(tmp_path_factory.mktemp("brokers"), f"{zookeeper}/logq-{chroot}")
    try:
        yield c.start()
    finally:
        c.stop()


def earliest(bootstrap: str) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused"})
    try:
        return int(consumer.get_watermark_offsets(TopicPartition(QUEUE, 0), timeout=10)[0])
    finally:
        consumer.close()


def test_followers_hold_the_start_at_the_answer_and_a_failover_keeps_it(cluster: Cluster) -> None:
    assert create(cluster, QUEUE, 1, 3).error_code == 0
    wait_for(lambda: full_isr(cluster, QUEUE, 1), "a full ISR")
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all", "linger.ms": 0})
    for i in range(100):
        producer.produce(QUEUE, b"%d" % i, partition=0)
    assert producer.flush(20) == 0

    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    futures = admin.delete_records([TopicPartition(QUEUE, 0, 40)], operation_timeout=15)
    assert next(iter(futures.values())).result(timeout=30).low_watermark == 40
    # answered: every replica in the ISR has the start on disk already (no waiting here)
    for broker in cluster.brokers.values():
        assert (broker.data_dir / partition_dir_name(QUEUE, 0) / LOG_START_FILE).read_text() == "40"

    old = partition_meta(cluster, QUEUE, 0).leader_id
    follower = next(i for i in cluster.brokers if i != old)
    assert delete_records_raw(cluster.brokers[follower].bootstrap, QUEUE, 50) == (
        ErrorCode.NOT_LEADER_OR_FOLLOWER,
        -1,
    )
    cluster.brokers[old].kill()
    wait_for(lambda: partition_meta(cluster, QUEUE, 0).leader_id not in (old, -1), "a new leader")
    live = ",".join(cluster.brokers[i].bootstrap for i in cluster.live())
    assert earliest(live) == 40
    cluster.brokers[old].start()
    wait_for(lambda: full_isr(cluster, QUEUE, 1), "the old leader back in the ISR", timeout=30)
    assert earliest(cluster.bootstrap) == 40
