"""A compacted queue replicated on three broker processes (ZooKeeper): every replica cleans its own copy,
a replica that lost its disk copies the leader's cleaned log, gaps and all, and then leads it."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from functools import partial

import pytest
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]  # not in its __all__

from tests.broker_process import BrokerProcess
from tests.cluster.conftest import Cluster, wait_for
from tests.compaction.helpers import read_with_confluent
from tests.compaction.test_compacted_queue import BROKER_LOG, KEYS, QUEUE_SETTINGS, Writer

QUEUE = "compacted.replicated"


@pytest.fixture
def cluster(tmp_path_factory: pytest.TempPathFactory, zookeeper: str) -> Iterator[Cluster]:
    chroot = tmp_path_factory.mktemp("compaction").name
    c = Cluster(
        tmp_path_factory.mktemp("brokers"),
        f"{zookeeper}/logq-{chroot}",
        settings={"replica.lag.time.max.ms": 1500},
        log=BROKER_LOG,
    )
    try:
        yield c.start()
    finally:
        c.stop()


def cleaned_on(broker: BrokerProcess) -> bool:
    return f"cleaned {QUEUE}-0" in broker.log_text


def partition_state(cluster: Cluster) -> tuple[int, list[int]]:
    (partition,) = cluster.metadata(cluster.live()[0], [QUEUE]).topics[0].partitions
    return partition.leader_id, sorted(partition.isr_nodes)


def test_every_replica_cleans_and_a_replica_rebuilt_from_scratch_serves_the_cleaned_log(
    cluster: Cluster,
) -> None:
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    topic = NewTopic(QUEUE, num_partitions=1, replication_factor=3, config=QUEUE_SETTINGS)
    admin.create_topics([topic], operation_timeout=20)[QUEUE].result(timeout=30)
    wait_for(lambda: partition_state(cluster)[1] == [1, 2, 3], "an ISR of three")
    writer = Writer(cluster.bootstrap, QUEUE)
    writer.updates(20, "v")
    time.sleep(0.6)  # segment.ms: the last segment rolls, on every replica
    for broker in cluster.brokers.values():  # each replica cleans its own copy
        wait_for(partial(cleaned_on, broker), f"a pass on {broker.bootstrap}", 60)

    leader, _ = partition_state(cluster)
    rebuilt = next(i for i in cluster.brokers if i != leader)
    others = [i for i in cluster.brokers if i != rebuilt]
    cluster.brokers[rebuilt].kill()
    shutil.rmtree(cluster.brokers[rebuilt].data_dir)  # a lost disk: it copies the leader's cleaned log
    cluster.brokers[rebuilt].start()
    wait_for(lambda: partition_state(cluster)[1] == [1, 2, 3], "the rebuilt replica back in the ISR", 60)
    for other in others:  # only the rebuilt replica is left: it leads and serves what it copied
        cluster.brokers[other].kill()
    wait_for(lambda: partition_state(cluster)[0] == rebuilt, "the rebuilt replica leading", 60)

    records = read_with_confluent(cluster.brokers[rebuilt].bootstrap, QUEUE)
    offsets = [offset for offset, _, _ in records]
    assert offsets == sorted(set(offsets))
    last_seen = {key: (offset, value) for offset, key, value in records}
    assert last_seen == writer.latest
    assert len(records) < 20 * KEYS  # it got the cleaned log, not the history
