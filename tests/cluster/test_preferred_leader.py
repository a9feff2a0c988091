"""Preferred-leader election: after a broker's controlled shutdown and restart, the controller hands
each partition back to its preferred replica (the first of its assignment) once that one is in sync
again, and nothing acknowledged is lost on the way."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from logq.error_codes import ErrorCode
from tests.cluster.conftest import Cluster, wait_for
from tests.cluster.test_replication import QUEUE, AckedProducer, assert_nothing_acked_lost, create, full_isr

PARTITIONS = 3


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, zookeeper: str) -> Iterator[Cluster]:
    chroot = tmp_path_factory.mktemp("preferred").name
    c = Cluster(
        tmp_path_factory.mktemp("brokers"),
        f"{zookeeper}/logq-{chroot}",
        settings={"leader.imbalance.check.interval.ms": 1000, "replica.lag.time.max.ms": 1500},
    )
    try:
        yield c.start()
    finally:
        c.stop()


def leaders_and_preferred(cluster: Cluster) -> tuple[list[int], list[int]]:
    topic = cluster.metadata(cluster.live()[0], [QUEUE]).topics[0]
    partitions = sorted(topic.partitions, key=lambda p: p.partition_index)
    return [p.leader_id for p in partitions], [p.replica_nodes[0] for p in partitions]


def at_preferred(cluster: Cluster) -> bool:
    leaders, preferred = leaders_and_preferred(cluster)
    return leaders == preferred


def test_leadership_returns_to_the_preferred_replicas(cluster: Cluster) -> None:
    assert create(cluster, QUEUE, PARTITIONS, 3).error_code == ErrorCode.NONE
    wait_for(lambda: full_isr(cluster, QUEUE, PARTITIONS), "an ISR of 3 everywhere")
    leaders, preferred = leaders_and_preferred(cluster)
    assert leaders == preferred
    producer = AckedProducer(cluster)
    for partition in range(PARTITIONS):
        producer.send([b"before-%d-%d" % (partition, i) for i in range(50)], partition=partition)
    producer.flush()
    victim = preferred[0]
    assert cluster.brokers[victim].stop() == 0  # controlled shutdown: its leaderships move away
    leaders, _ = leaders_and_preferred(cluster)
    assert victim not in leaders
    for partition in range(PARTITIONS):
        producer.send([b"during-%d-%d" % (partition, i) for i in range(50)], partition=partition)
    producer.flush()
    cluster.brokers[victim].start()
    wait_for(lambda: full_isr(cluster, QUEUE, PARTITIONS), "the restarted broker back in the ISR", timeout=30)
    wait_for(lambda: at_preferred(cluster), "the preferred leaders again")
    for partition in range(PARTITIONS):
        producer.send([b"after-%d-%d" % (partition, i) for i in range(50)], partition=partition)
    producer.flush()
    assert not producer.failed
    assert len(producer.acked) == 3 * 50 * PARTITIONS
    assert_nothing_acked_lost(cluster, producer.acked)
