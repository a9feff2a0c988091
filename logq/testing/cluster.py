"""An in-process cluster for tests of the broker's middle: several brokers' ``ReplicaManager``s and
``Partition``s in one process, driven by a ``FakeCoordinator`` that the test moves as a controller would,
with followers that copy their leaders by direct calls instead of Fetch requests.

No sockets, no ZooKeeper, no threads of its own: what is left is the logic that decides leadership, the
ISR, the high watermark, truncation and acknowledgements, on real partition logs in a temporary
directory, so that scenarios run in milliseconds (the process-level tests in ``tests/cluster`` run the
same code for real).

    coordinator = FakeCoordinator([1, 2, 3])
    coordinator.create_queue("q", partitions=1, replicas=[1, 2, 3])
    brokers = {i: InProcessBroker(tmp / f"b{i}", i, coordinator) for i in (1, 2, 3)}
    await asyncio.gather(*(b.start() for b in brokers.values()))
    leader = brokers[coordinator.state("q", 0).leader].partition("q", 0)
    info = leader.append_as_leader(make_batch([b"v"]), acks=-1, origin=Origin.CLIENT)
    for follower in (2, 3): await brokers[follower].replicate_from(brokers[1], "q", 0)
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType

from logq.broker.partition import Partition, ReplicaSettings
from logq.broker.replica_fetcher import truncation_point
from logq.broker.replica_manager import ReplicaManager
from logq.clock import Clock
from logq.config import LogConfig
from logq.coordinator import PartitionState, QueueMetadata
from logq.error_codes import ErrorCode
from logq.segments import LogManager
from logq.testing.clock import FakeClock

MetadataListener = Callable[[Mapping[str, QueueMetadata]], None]


@dataclass
class FakeCoordinator:
    """The cluster's metadata, in memory: queues and their partition states. The test plays the
    controller (``elect``, ``set_isr``, ``remove_from_isr``); a leader's ISR changes arrive through
    ``update_isr``, a write conditional on the ISR it is based on and the leader epoch, as logq's
    ZooKeeper coordinator makes it. Every change is published to the listeners (the brokers)."""

    brokers: Sequence[int]
    min_insync_replicas: int | None = None  # a queue setting for every queue created here
    isr_writes: list[tuple[str, int, tuple[int, ...]]] = field(default_factory=list)
    refuse_isr_writes: bool = False  # a controller that does not answer (a partitioned leader)
    _queues: dict[str, QueueMetadata] = field(default_factory=dict)
    _listeners: list[MetadataListener] = field(default_factory=list)

    def queues(self) -> Mapping[str, QueueMetadata]:
        return MappingProxyType(dict(self._queues))

    def add_listener(self, listener: MetadataListener) -> None:
        self._listeners.append(listener)

    def _publish(self) -> None:
        snapshot = self.queues()
        for listener in list(self._listeners):
            listener(snapshot)

    def create_queue(
        self,
        name: str,
        partitions: int = 1,
        replicas: Sequence[int] | None = None,
        queue_id: str | None = None,
    ) -> QueueMetadata:
        """A queue whose every partition has ``replicas`` (default: every broker), led by the first in
        leader epoch 0 with every replica in sync. ``queue_id``: to find a queue's logs again across
        coordinators (a test that "restarts" with a new one)."""
        chosen = tuple(replicas if replicas is not None else self.brokers)
        state = PartitionState(leader=chosen[0], leader_epoch=0, replicas=chosen, isr=chosen)
        settings = (
            {} if self.min_insync_replicas is None else {"min.insync.replicas": str(self.min_insync_replicas)}
        )
        queue = QueueMetadata(
            name=name,
            partitions=(state,) * partitions,
            replication_factor=len(chosen),
            settings=MappingProxyType(settings),
            internal=name.startswith("__"),
            queue_id=queue_id or uuid.uuid4().hex,
        )
        self._queues[name] = queue
        self._publish()
        return queue

    def delete_queue(self, name: str) -> None:
        del self._queues[name]
        self._publish()

    def state(self, queue: str, index: int) -> PartitionState:
        return self._queues[queue].partitions[index]

    def _set_state(self, queue: str, index: int, state: PartitionState) -> None:
        meta = self._queues[queue]
        partitions = list(meta.partitions)
        partitions[index] = state
        self._queues[queue] = replace(meta, partitions=tuple(partitions))
        self._publish()

    def elect(self, queue: str, index: int, leader: int, isr: Sequence[int] | None = None) -> PartitionState:
        """A new leader (-1: none) in the next leader epoch, as the controller elects one."""
        current = self.state(queue, index)
        state = replace(
            current,
            leader=leader,
            leader_epoch=current.leader_epoch + 1,
            isr=tuple(isr) if isr is not None else current.isr,
        )
        self._set_state(queue, index, state)
        return state

    def set_isr(self, queue: str, index: int, isr: Sequence[int]) -> None:
        """The controller changes the ISR (e.g. drops a dead broker), in the same leader epoch."""
        self._set_state(queue, index, replace(self.state(queue, index), isr=tuple(isr)))

    async def update_isr(
        self, queue: str, index: int, leader_epoch: int, based_on: tuple[int, ...], isr: tuple[int, ...]
    ) -> bool:
        await asyncio.sleep(0)  # a write is never instant: let the caller see its pending state
        current = self.state(queue, index)
        if self.refuse_isr_writes or current.leader_epoch != leader_epoch or current.isr != based_on:
            return False
        self.isr_writes.append((queue, index, isr))
        self._set_state(queue, index, replace(current, isr=isr))
        return True


class InProcessBroker:
    """One broker of an in-process cluster: its LogManager and ReplicaManager, taking the roles of every
    snapshot the ``FakeCoordinator`` publishes (as ``ClusterMember`` does with a real coordinator)."""

    def __init__(
        self,
        data_dir: Path,
        broker_id: int,
        coordinator: FakeCoordinator,
        *,
        clock: Clock | None = None,
        config: LogConfig | None = None,
        fsync_before_ack: bool = False,
        replica_lag_time_max_ms: int = 30_000,
    ) -> None:
        self.broker_id = broker_id
        self.coordinator = coordinator
        self.clock = clock or FakeClock()
        self.data_dir = data_dir
        self._config = config or LogConfig(segment_bytes=64 * 1024, index_interval_bytes=1024)
        self._fsync = fsync_before_ack
        self._lag_ms = replica_lag_time_max_ms
        self.logs: LogManager | None = None
        self.replicas: ReplicaManager | None = None
        self.gained: set[tuple[str, int]] = set()
        self.lost: set[tuple[str, int]] = set()
        self.cut_off = False  # a network partition from the coordinator: snapshots wait until healed
        coordinator.add_listener(self._on_metadata)

    async def start(self) -> None:
        """Open the data directory (recovering it), take the current roles and host the logs."""
        self.logs = await asyncio.to_thread(LogManager, self.data_dir, self._config, self.clock)
        self.replicas = ReplicaManager(
            self.logs,
            self._config,
            ReplicaSettings(
                broker_id=self.broker_id,
                clock=self.clock,
                fsync_before_ack=self._fsync,
                replica_lag_time_max_ms=self._lag_ms,
                isr_writer=self.coordinator.update_isr,
            ),
        )
        self._on_metadata(self.coordinator.queues())
        await self.replicas.host(self.coordinator.queues())

    def _on_metadata(self, queues: Mapping[str, QueueMetadata]) -> None:
        if self.replicas is None or self.cut_off:
            return
        gained, lost = self.replicas.update_leadership(queues)
        self.gained |= gained
        self.lost |= lost

    def cut_off_from_coordinator(self) -> None:
        """The broker loses its coordinator session: it stops leading at once (fenced) and hears of no
        snapshot until ``reconnect``."""
        self.cut_off = True
        if self.replicas is not None:
            self.lost |= self.replicas.fence()

    def reconnect(self) -> None:
        """A new session: the latest snapshot (only a newer leader epoch gives leadership back)."""
        self.cut_off = False
        self._on_metadata(self.coordinator.queues())

    def partition(self, queue: str, index: int) -> Partition:
        assert self.replicas is not None
        found = self.replicas.partition(queue, index)
        assert found is not None, f"broker {self.broker_id} does not host {queue}-{index}"
        return found

    async def replicate_from(
        self, leader: InProcessBroker, queue: str, index: int, max_bytes: int = 1 << 20
    ) -> int:
        """One round of this follower's replica fetcher against ``leader``, by direct calls: truncate by
        leader epoch (KIP-101/279) until done, then fetch once from the log end. Returns the error code of
        the fetch (0 on success)."""
        mine = self.partition(queue, index)
        theirs = leader.partition(queue, index)
        state = mine.followed_state()
        if state is None or mine.log is None:
            return int(ErrorCode.NOT_LEADER_OR_FOLLOWER)
        if not theirs.is_leader:
            return int(ErrorCode.NOT_LEADER_OR_FOLLOWER)
        while (asked := mine.log.latest_leader_epoch) >= 0:
            epoch, end = theirs.end_offset_for_epoch(asked)
            offset, done = truncation_point(mine.log, asked, epoch, end)
            if offset < mine.log.log_end_offset:
                mine.truncate_as_follower(offset)
            elif not done:
                break  # nothing to cut: the next round asks again, as the fetcher would
            if done:
                break
        fetch_offset = mine.log.log_end_offset
        code = theirs.check_epoch(state.leader_epoch)
        if code == ErrorCode.NONE:
            code = theirs.follower_fetched(
                self.broker_id, fetch_offset, state.leader_epoch, mine.log.durable_log_start
            )
        if code != ErrorCode.NONE:
            return int(code)
        got = theirs.read(fetch_offset, max_bytes, follower=True, may_exceed=True)
        if got.error != ErrorCode.NONE:
            return int(got.error)
        mine.append_as_follower(got.records, got.high_watermark, got.log_start_offset)
        if self._fsync and got.records:
            await asyncio.to_thread(mine.log.flush)
        if mine.log.durable_log_start < mine.log.log_start_offset:  # the background flush, at once
            await asyncio.to_thread(mine.log.flush)
        return 0

    def crash(self) -> None:
        """Stop as SIGKILL would: nothing flushed, nothing checkpointed (the page cache survives, as it
        does a process crash)."""
        if self.logs is not None:
            self.logs.abandon()
        self.logs = self.replicas = None

    def close(self) -> None:
        if self.logs is not None:
            self.logs.close()
        self.logs = self.replicas = None
