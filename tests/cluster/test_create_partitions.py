"""CreatePartitions in a cluster of three brokers: the new partitions are placed like a new queue's,
with the queue's replication factor, get leaders on every broker's metadata and are replicated (an
acks=all produce to a new partition succeeds and its followers hold the same bytes); explicit
assignments are honoured or refused with INVALID_REPLICA_ASSIGNMENT."""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewPartitions  # type: ignore[attr-defined]

from logq.error_codes import ErrorCode
from tests.cluster.conftest import Cluster, wait_for
from tests.cluster.test_replication import create, segment_bytes


def grow(cluster: Cluster, queue: str, total: int, **options: Any) -> None:
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    admin.create_partitions([NewPartitions(queue, total, **options)], operation_timeout=30)[queue].result(40)


def partitions_everywhere(cluster: Cluster, queue: str, count: int) -> list[Any] | None:
    """The queue's partitions as broker 1 lists them, once every broker lists ``count`` with a leader
    and a full ISR."""
    views = [cluster.metadata(b, [queue]).topics[0].partitions for b in cluster.live()]
    for partitions in views:
        if len(partitions) != count:
            return None
        if any(p.leader_id < 0 or sorted(p.isr_nodes) != sorted(p.replica_nodes) for p in partitions):
            return None
    return sorted(views[0], key=lambda p: p.partition_index)


def test_new_partitions_are_placed_led_and_replicated(cluster: Cluster) -> None:
    created = create(cluster, "grown", 2, 2)
    assert created.error_code == ErrorCode.NONE, created.error_message
    wait_for(lambda: partitions_everywhere(cluster, "grown", 2), "the queue with full ISRs")
    grow(cluster, "grown", 6)
    partitions = wait_for(
        lambda: partitions_everywhere(cluster, "grown", 6), "six led, replicated partitions"
    )
    assert all(len(p.replica_nodes) == 2 for p in partitions)
    # placed as a new queue's: the preferred leaders go round the brokers
    assert {p.replica_nodes[0] for p in partitions[2:]} == {1, 2, 3}
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all"})
    for partition in (4, 5):
        producer.produce("grown", b"in new partition %d" % partition, partition=partition)
    assert producer.flush(30) == 0
    for partition in (4, 5):
        replicas = partitions[partition].replica_nodes
        wait_for(
            lambda p=partition, r=replicas: _followers_hold_it(cluster, "grown", p, r),
            f"partition {partition}'s follower to hold the batch",
        )


def _followers_hold_it(cluster: Cluster, queue: str, partition: int, replicas: list[int]) -> bool:
    copies = {segment_bytes(cluster.brokers[b].data_dir, queue, partition) for b in replicas}
    return len(copies) == 1 and b"in new partition" in copies.pop()


def test_explicit_assignments_are_honoured_or_refused(cluster: Cluster) -> None:
    created = create(cluster, "placed", 1, 2)
    assert created.error_code == ErrorCode.NONE, created.error_message
    grow(cluster, "placed", 2, replica_assignment=[[3, 1]])
    partitions = wait_for(lambda: partitions_everywhere(cluster, "placed", 2), "the placed partition")
    assert partitions[1].replica_nodes == [3, 1]
    assert partitions[1].leader_id == 3
    for bad in ([[1, 1]], [[2]], [[9, 1]], [[1, 2], [2, 3]]):
        with pytest.raises(KafkaException) as caught:
            grow(cluster, "placed", 3, replica_assignment=bad)
        assert caught.value.args[0].code() == KafkaError.INVALID_REPLICA_ASSIGNMENT, bad
    with pytest.raises(KafkaException) as caught:
        grow(cluster, "placed", 1)
    assert caught.value.args[0].code() == KafkaError.INVALID_PARTITIONS
    assert len(cluster.metadata(2, ["placed"]).topics[0].partitions) == 2
