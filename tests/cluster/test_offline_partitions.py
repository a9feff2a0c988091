"""logq_offline_partitions: the controller counts the partitions left without a leader (every in-sync
replica down), the other brokers report 0; the count falls back once a replica returns."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import logq
from tests.cluster.conftest import Cluster, wait_for

QUEUE = "single-copy"


@pytest.fixture(scope="module")
def metered_cluster(tmp_path_factory: pytest.TempPathFactory, zookeeper: str) -> Iterator[Cluster]:
    chroot = tmp_path_factory.mktemp("cluster").name
    c = Cluster(tmp_path_factory.mktemp("brokers"), f"{zookeeper}/logq-{chroot}", metrics=True)
    try:
        yield c.start()
    finally:
        c.stop()


def offline(cluster: Cluster) -> dict[int, float]:
    return {i: cluster.metric(i, "logq_offline_partitions") for i in cluster.live()}


def test_the_controller_counts_partitions_without_a_leader(metered_cluster: Cluster) -> None:
    cluster = metered_cluster
    with logq.Admin(bootstrap=cluster.bootstrap) as admin:
        admin.create_queue(QUEUE, partitions=3, replication_factor=1)
    leaders = wait_for(lambda: (ids := cluster.leaders(1, QUEUE)) and -1 not in ids and ids, "leaders")
    controller = cluster.metadata(1).controller_id
    assert offline(cluster) == {1: 0, 2: 0, 3: 0}

    # A broker other than the controller that leads a partition: its single copy goes with it.
    victim = next(i for i in cluster.brokers if i != controller and i in leaders)
    cluster.brokers[victim].kill()
    lost = leaders.count(victim)
    wait_for(lambda: offline(cluster)[controller] == lost, f"{lost} offline partition(s) on the controller")
    assert all(value == 0 for i, value in offline(cluster).items() if i != controller)

    cluster.brokers[victim].start()
    wait_for(lambda: offline(cluster) == {1: 0, 2: 0, 3: 0}, "no offline partition once the broker is back")
