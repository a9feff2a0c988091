"""ReplicaManager's leadership in cluster mode: what is hosted, what is led, and the fence after a lost
ZooKeeper session (no processes)."""

from __future__ import annotations

import asyncio

from logq.broker.replica_manager import ReplicaManager
from logq.config import LogConfig
from logq.coordinator import PartitionState, QueueMetadata
from logq.error_codes import ErrorCode
from logq.segments import LogManager


def snapshot(*states: PartitionState) -> dict[str, QueueMetadata]:
    return {"q": QueueMetadata(name="q", partitions=states, replication_factor=1)}


def state(leader: int, epoch: int, replica: int | None = None) -> PartitionState:
    r = leader if replica is None else replica
    return PartitionState(leader=leader, leader_epoch=epoch, replicas=(r,), isr=(r,))


def test_hosts_only_its_partitions_and_leads_what_the_snapshot_says(manager: LogManager) -> None:
    replicas = ReplicaManager(manager, LogConfig(), fsync_before_ack=False, broker_id=1)
    queues = snapshot(state(1, 0), state(2, 0), state(-1, 3, replica=1))
    asyncio.run(replicas.host(queues))
    assert manager.partitions() == [("q", 0), ("q", 2)]
    gained, lost = replicas.update_leadership(queues)
    assert gained == {("q", 0)}
    assert not lost
    assert replicas.is_leader("q", 0)
    assert not replicas.is_leader("q", 1)
    assert not replicas.is_leader("q", 2)
    assert replicas.not_served("q", 1, queues) == ErrorCode.NOT_LEADER_OR_FOLLOWER
    assert replicas.not_served("q", 3, queues) == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    assert replicas.not_served("other", 0, queues) == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    gained, lost = replicas.update_leadership(snapshot(state(2, 1), state(2, 0), state(1, 4)))
    assert gained == {("q", 2)}
    assert lost == {("q", 0)}


def test_after_a_fence_only_a_newer_leader_epoch_gives_leadership_back(manager: LogManager) -> None:
    replicas = ReplicaManager(manager, LogConfig(), fsync_before_ack=False, broker_id=1)
    asyncio.run(replicas.host(snapshot(state(1, 5), state(1, 2))))
    replicas.update_leadership(snapshot(state(1, 5), state(1, 2)))
    assert replicas.fence() == {("q", 0), ("q", 1)}
    assert not replicas.is_leader("q", 0)
    # The snapshot read right after reconnecting still shows the old epochs: not led.
    assert replicas.update_leadership(snapshot(state(1, 5), state(1, 2))) == (set(), set())
    gained, _ = replicas.update_leadership(snapshot(state(1, 6), state(1, 2)))
    assert gained == {("q", 0)}
    assert replicas.is_leader("q", 0)
    assert not replicas.is_leader("q", 1)


def test_standalone_leads_everything(manager: LogManager) -> None:
    replicas = ReplicaManager(manager, LogConfig(), fsync_before_ack=False)
    queues = snapshot(state(0, 0))
    assert replicas.update_leadership(queues) == (set(), set())
    assert replicas.is_leader("q", 0)
    assert replicas.is_leader("anything", 7)
    assert replicas.not_served("q", 0, queues) == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
