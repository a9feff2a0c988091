"""ReplicaManager's leadership: what is hosted, what is led, the fence after a lost coordinator session,
and the replication metrics (no processes)."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from logq.broker.metrics import BrokerMetrics
from logq.broker.partition import Origin, ReplicaSettings
from logq.broker.replica_manager import ReplicaManager
from logq.config import LogConfig
from logq.coordinator import PartitionState, QueueMetadata
from logq.error_codes import ErrorCode
from logq.errors import LogqError
from logq.segments import LogManager
from logq.testing import make_batch


def snapshot(*states: PartitionState) -> dict[str, QueueMetadata]:
    return {"q": QueueMetadata(name="q", partitions=states, replication_factor=1)}


def state(leader: int, epoch: int, replica: int | None = None) -> PartitionState:
    r = leader if replica is None else replica
    return PartitionState(leader=leader, leader_epoch=epoch, replicas=(r,), isr=(r,))


def replica_manager(manager: LogManager, broker_id: int = 1) -> ReplicaManager:
    settings = ReplicaSettings(
        broker_id=broker_id, clock=manager.clock, fsync_before_ack=False, replica_lag_time_max_ms=30_000
    )
    return ReplicaManager(manager, LogConfig(), settings)


def refusal(replicas: ReplicaManager, queue: str, index: int) -> int:
    with pytest.raises(LogqError) as refused:
        replicas.leader(queue, index)
    return int(refused.value.code)


def test_hosts_only_its_partitions_and_leads_what_the_snapshot_says(manager: LogManager) -> None:
    replicas = replica_manager(manager)
    queues = snapshot(state(1, 0), state(2, 0), state(-1, 3, replica=1))
    gained, lost = replicas.update_leadership(queues)
    assert gained == {("q", 0)}  # led once its log is open
    assert not replicas.is_leader("q", 0)
    asyncio.run(replicas.host(queues))
    assert manager.partitions() == [("q", 0), ("q", 2)]
    assert not lost
    assert replicas.is_leader("q", 0)
    assert not replicas.is_leader("q", 1)
    assert not replicas.is_leader("q", 2)
    assert refusal(replicas, "q", 1) == ErrorCode.NOT_LEADER_OR_FOLLOWER
    assert refusal(replicas, "q", 3) == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    assert refusal(replicas, "other", 0) == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    gained, lost = replicas.update_leadership(snapshot(state(2, 1), state(2, 0), state(1, 4)))
    assert gained == {("q", 2)}
    assert lost == {("q", 0)}


def test_after_a_fence_only_a_newer_leader_epoch_gives_leadership_back(manager: LogManager) -> None:
    replicas = replica_manager(manager)
    replicas.update_leadership(snapshot(state(1, 5), state(1, 2)))
    asyncio.run(replicas.host(snapshot(state(1, 5), state(1, 2))))
    assert replicas.fence() == {("q", 0), ("q", 1)}
    assert not replicas.is_leader("q", 0)
    # The snapshot read right after reconnecting still shows the old epochs: not led.
    assert replicas.update_leadership(snapshot(state(1, 5), state(1, 2))) == (set(), set())
    gained, _ = replicas.update_leadership(snapshot(state(1, 6), state(1, 2)))
    assert gained == {("q", 0)}
    assert replicas.is_leader("q", 0)
    assert not replicas.is_leader("q", 1)


def test_a_cluster_of_one_leads_in_the_epoch_it_is_given(manager: LogManager) -> None:
    replicas = replica_manager(manager, broker_id=0)
    queues = snapshot(state(0, 3))
    replicas.update_leadership(queues)
    # a partition of the metadata without its log yet (still being created): retriable
    assert refusal(replicas, "q", 0) == ErrorCode.NOT_LEADER_OR_FOLLOWER
    assert refusal(replicas, "other", 0) == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    asyncio.run(replicas.host(queues))
    led = replicas.leader("q", 0)
    info = led.append_as_leader(make_batch(3), acks=-1, origin=Origin.CLIENT)
    assert (info.base_offset, info.leader_epoch) == (0, 3)
    assert led.high_watermark == 3  # an ISR of one: committed at once
    assert led.log is not None
    assert led.log.epoch_history() == [(3, 0)]


def test_replication_metrics_report_the_isr_and_the_followers_lag(manager: LogManager) -> None:
    replicas = replica_manager(manager)
    queues = {
        "q": QueueMetadata(
            name="q",
            partitions=(
                PartitionState(leader=1, leader_epoch=0, replicas=(1, 2, 3), isr=(1, 2, 3)),
                PartitionState(leader=1, leader_epoch=0, replicas=(1, 2, 3), isr=(1, 2)),
            ),
            replication_factor=3,
        )
    }
    replicas.update_leadership(queues)
    asyncio.run(replicas.host(queues))
    for index in (0, 1):
        replicas.leader("q", index).append_as_leader(make_batch(5), acks=1, origin=Origin.CLIENT)
    led = replicas.leader("q", 0)
    assert led.follower_fetched(2, 5, 0) == ErrorCode.NONE
    assert led.follower_fetched(3, 2, 0) == ErrorCode.NONE
    metrics = BrokerMetrics()
    metrics.watch_replication(replicas.replication_status)
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(generate_latest(metrics.registry).decode())
        for s in family.samples
    }
    assert samples[("logq_under_replicated_partitions", ())] == 1
    assert samples[("logq_under_min_isr_partitions", ())] == 0  # min.insync.replicas 2 with 3 replicas
    assert samples[("logq_partition_isr_size", (("partition", "q-1"),))] == 2
    assert samples[("logq_partition_replicas", (("partition", "q-0"),))] == 3
    assert samples[("logq_follower_lag_offsets", (("follower", "2"), ("partition", "q-0")))] == 0
    assert samples[("logq_follower_lag_offsets", (("follower", "3"), ("partition", "q-0")))] == 3
    assert samples[("logq_follower_lag_offsets", (("follower", "3"), ("partition", "q-1")))] == -1
