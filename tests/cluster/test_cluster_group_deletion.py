"""Cluster mode: deleting groups and their offsets on three brokers. Only the group's coordinator
deletes (the others answer NOT_COORDINATOR, and the clients find the coordinator), and a deletion is
replicated with ``__consumer_offsets``: after the coordinator is killed, the new one has not got the group
back."""

from __future__ import annotations

from typing import Any

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient  # type: ignore[attr-defined]  # not in its __all__

from logq.client.cluster import QueuePartition
from logq.client.sync_admin import Admin
from logq.error_codes import ErrorCode
from logq.groups.offsets import partition_for
from logq.protocol import messages as m
from tests.cluster.conftest import OFFSETS_PARTITIONS, Cluster, wait_for
from tests.cluster.test_cluster import coordinator_of, create
from tests.wire_client import WireClient

QUEUE = "tracked"


def commit(cluster: Cluster, group: str, offsets: dict[int, int]) -> None:
    """A simple commit (assign() and commit, no subscription) through any broker."""
    consumer = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": group})
    try:
        consumer.commit(offsets=[TopicPartition(QUEUE, p, o) for p, o in offsets.items()], asynchronous=False)
    finally:
        consumer.close()


def committed_at(cluster: Cluster, broker: int, group: str) -> Any:
    with WireClient(cluster.brokers[broker].bootstrap) as client:
        return client.call(m.OffsetFetchRequest(group_id=group, topics=None), 5)


def offsets_at(cluster: Cluster, broker: int, group: str) -> dict[int, int] | None:
    """The group's committed offsets as ``broker`` answers them (None: it is not the coordinator)."""
    answer = committed_at(cluster, broker, group)
    if answer.error_code != ErrorCode.NONE:
        return None
    return {p.partition_index: p.committed_offset for t in answer.topics for p in t.partitions}


def test_only_the_coordinator_deletes_and_the_clients_find_it(cluster: Cluster) -> None:
    assert create(cluster, 1, QUEUE, 2, rf=3).error_code == ErrorCode.NONE
    commit(cluster, "doomed", {0: 4, 1: 6})
    commit(cluster, "trimmed", {0: 1, 1: 2})
    coordinator = coordinator_of(cluster, "doomed")
    other = next(i for i in cluster.brokers if i != coordinator)
    with WireClient(cluster.brokers[other].bootstrap) as client:
        answer = client.call(m.DeleteGroupsRequest(groups_names=["doomed"]), 1)
        assert [(r.group_id, r.error_code) for r in answer.results] == [("doomed", ErrorCode.NOT_COORDINATOR)]
        request = m.OffsetDeleteRequest(
            group_id="doomed",
            topics=[
                m.OffsetDeleteRequestTopic(
                    name=QUEUE, partitions=[m.OffsetDeleteRequestPartition(partition_index=0)]
                )
            ],
        )
        assert client.call(request, 0).error_code == ErrorCode.NOT_COORDINATOR
    assert offsets_at(cluster, coordinator, "doomed") == {0: 4, 1: 6}  # the refusals removed nothing

    admin = AdminClient({"bootstrap.servers": cluster.brokers[other].bootstrap})
    admin.delete_consumer_groups(["doomed"], request_timeout=30)["doomed"].result(30)
    assert offsets_at(cluster, coordinator, "doomed") == {}
    with Admin(cluster.brokers[other].bootstrap) as logq_admin:  # logq's client finds the coordinator too
        logq_admin.delete_offsets("trimmed", [QueuePartition(QUEUE, 0)])
    assert offsets_at(cluster, coordinator_of(cluster, "trimmed"), "trimmed") == {1: 2}


def neighbour_of(group: str) -> str:
    """Another group in the same ``__consumer_offsets`` partition (so with the same coordinator)."""
    home = partition_for(group, OFFSETS_PARTITIONS)
    return next(n for i in range(1000) if partition_for(n := f"neighbour-{i}", OFFSETS_PARTITIONS) == home)


def test_a_deleted_group_stays_deleted_after_its_coordinator_fails(cluster: Cluster) -> None:
    witness = neighbour_of("victim")
    commit(cluster, "victim", {0: 8})
    commit(cluster, witness, {0: 9})
    coordinator = coordinator_of(cluster, "victim")
    with Admin(cluster.bootstrap) as admin:
        admin.delete_group("victim")
    cluster.brokers[coordinator].kill()
    try:
        successor = wait_for(
            lambda: (c := coordinator_of(cluster, "victim")) != coordinator and c,
            "a new coordinator",
            timeout=30,
        )
        # the new coordinator replayed the partition: the tombstones, and the offsets next to them
        assert wait_for(lambda: offsets_at(cluster, successor, "victim") is not None, "the partition loaded")
        assert offsets_at(cluster, successor, "victim") == {}
        assert offsets_at(cluster, successor, witness) == {0: 9}
        with WireClient(cluster.brokers[successor].bootstrap) as client:
            listed = [g.group_id for g in client.call(m.ListGroupsRequest(), 2).groups]
            described = client.call(m.DescribeGroupsRequest(groups=["victim"]), 4).groups[0]
        assert "victim" not in listed
        assert described.group_state == "Dead"
    finally:
        cluster.brokers[coordinator].start()
