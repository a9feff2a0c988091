"""The partitions this broker hosts: their logs, appends with the acks rules, high watermarks, and the
wake-ups that long-polling fetches wait for.

Standalone mode: this broker leads every partition and is its only replica, so the high watermark moves
to the log end on every append. Runs on the event loop; blocking work (fsync, creating and deleting
logs) goes to threads.

Cluster mode (``broker_id`` given): the broker hosts only the partitions whose replicas include it, and
leads those whose state in the coordinator's latest snapshot names it as leader (``update_leadership``).
``fence()`` (the ZooKeeper session was lost) drops every leadership at once and remembers each
partition's leader epoch: the partition is led again only once a snapshot names this broker leader in a
*newer* leader epoch (the controller always gives a re-registered leader a new epoch), so nothing is
acknowledged in an epoch that may already have another leader.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping

from logq.config import LogConfig
from logq.coordinator import QueueMetadata
from logq.error_codes import ErrorCode
from logq.groups.offsets import OFFSETS_QUEUE, offsets_log_config
from logq.queues import log_config_for
from logq.segments import AppendInfo, LogManager, PartitionLog

log = logging.getLogger(__name__)

QueuePartition = tuple[str, int]


class ReplicaManager:
    def __init__(
        self, logs: LogManager, defaults: LogConfig, *, fsync_before_ack: bool, broker_id: int | None = None
    ) -> None:
        self._logs = logs
        self._broker_id = broker_id  # None: standalone, the only replica and leader of everything
        self._leading: dict[QueuePartition, int] = {}  # cluster mode: led partition -> its leader epoch
        self._fenced: dict[QueuePartition, int] = {}  # leader epoch at the last fence(), per partition
        self._defaults = defaults
        self._fsync_before_ack = fsync_before_ack
        self._waiters: dict[QueuePartition, set[asyncio.Future[None]]] = {}
        self._last_fetch_ms: dict[QueuePartition, int] = {}
        self._clock = logs.clock

    def log_for(self, queue: str, partition: int) -> PartitionLog | None:
        return self._logs.get(queue, partition)

    def logs(self) -> list[PartitionLog]:
        return self._logs.logs()

    # --- hosting -----------------------------------------------------------------------------------

    async def host(self, queues: Mapping[str, QueueMetadata]) -> None:
        """Open (creating if needed) the log of every partition of ``queues``, with its settings."""
        await asyncio.to_thread(self._host_blocking, list(queues.values()))

    def _host_blocking(self, queues: Iterable[QueueMetadata]) -> None:
        for queue in queues:
            config = log_config_for(self._defaults, queue.settings)
            if queue.name == OFFSETS_QUEUE:
                config = offsets_log_config(config)  # compacted by the offset store, never aged out
            for partition, state in enumerate(queue.partitions):
                if self._broker_id is not None and self._broker_id not in state.replicas:
                    continue  # another broker's partition
                plog = self._logs.create(queue.name, partition, config)
                plog.high_watermark = plog.log_end_offset

    # --- leadership --------------------------------------------------------------------------------

    @property
    def cluster_mode(self) -> bool:
        return self._broker_id is not None

    def is_leader(self, queue: str, partition: int) -> bool:
        """Whether this broker may serve produce, consumer fetches and ListOffsets for the partition."""
        return self._broker_id is None or (queue, partition) in self._leading

    def leading(self) -> set[QueuePartition]:
        return set(self._leading)

    def not_served(self, queue: str, partition: int, queues: Mapping[str, QueueMetadata]) -> ErrorCode:
        """The error for a partition this broker has no log of or does not lead."""
        meta = queues.get(queue)
        if self._broker_id is None or meta is None or not 0 <= partition < len(meta.partitions):
            return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        return ErrorCode.NOT_LEADER_OR_FOLLOWER

    def update_leadership(
        self, queues: Mapping[str, QueueMetadata]
    ) -> tuple[set[QueuePartition], set[QueuePartition]]:
        """Take the leaders of a new snapshot; returns the partitions (gained, lost)."""
        if self._broker_id is None:
            return set(), set()
        now: dict[QueuePartition, int] = {}
        for queue in queues.values():
            for partition, state in enumerate(queue.partitions):
                key = (queue.name, partition)
                if state.leader == self._broker_id and state.leader_epoch > self._fenced.get(key, -1):
                    now[key] = state.leader_epoch
        gained = set(now) - set(self._leading)
        lost = set(self._leading) - set(now)
        self._leading = now
        for key in lost:
            self._wake(key)
        return gained, lost

    def fence(self) -> set[QueuePartition]:
        """Stop leading everything now (session lost); returns the partitions that were led."""
        lost = set(self._leading)
        self._fenced.update(self._leading)
        self._leading = {}
        for key in lost:
            self._wake(key)
        return lost

    def warn_about_strays(self, queues: Mapping[str, QueueMetadata]) -> None:
        """Logs on disk for partitions the metadata does not know are kept, never deleted silently."""
        for queue, partition in self._logs.partitions():
            meta = queues.get(queue)
            mine = self._broker_id is None or (
                meta is not None
                and partition < len(meta.partitions)
                and self._broker_id in meta.partitions[partition].replicas
            )
            if not mine:
                log.warning(
                    "partition %s-%d is on disk but not assigned here by the metadata; leaving it alone",
                    queue,
                    partition,
                )

    async def drop(self, queue: str, partitions: int) -> None:
        """Delete the data of a deleted queue (the partitions hosted here)."""
        for partition in range(partitions):
            await asyncio.to_thread(self._logs.delete, queue, partition)
            self._leading.pop((queue, partition), None)
            self._fenced.pop((queue, partition), None)
            self._wake((queue, partition))

    def hosted_queues(self) -> set[str]:
        return {queue for queue, _ in self._logs.partitions()}

    # --- produce -----------------------------------------------------------------------------------

    async def append(
        self, queue: str, partition: int, plog: PartitionLog, batch: memoryview, acks: int
    ) -> AppendInfo:
        """Append one producer batch; with acks=all (-1) and log.fsync.before.ack, return only once it is
        fsynced. Concurrent callers share fsyncs (the log's group commit), off the event loop."""
        info = plog.append(batch)
        plog.high_watermark = plog.log_end_offset  # the only replica: committed once written
        self._wake((queue, partition))
        if acks == -1 and self._fsync_before_ack and plog.durable_offset <= info.last_offset:
            await asyncio.to_thread(plog.flush)
        return info

    # --- fetch bookkeeping ---------------------------------------------------------------------------

    def record_fetch(self, queue: str, partition: int) -> None:
        """Remember when a partition was last fetched (for stalled-owner detection; one dict store)."""
        self._last_fetch_ms[(queue, partition)] = self._clock.time_ms()

    def last_fetch_ms(self, queue: str, partition: int) -> int:
        return self._last_fetch_ms.get((queue, partition), -1)

    # --- fetch wake-ups ----------------------------------------------------------------------------

    def data_arrival(self, keys: Iterable[QueuePartition]) -> asyncio.Future[None]:
        """A future that completes at the next append to any of ``keys`` (cancel it when done)."""
        wanted = tuple(keys)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        for key in wanted:
            self._waiters.setdefault(key, set()).add(future)
        future.add_done_callback(lambda f: self._forget(f, wanted))
        return future

    def _forget(self, future: asyncio.Future[None], keys: tuple[QueuePartition, ...]) -> None:
        for key in keys:
            waiting = self._waiters.get(key)
            if waiting is not None:
                waiting.discard(future)
                if not waiting:
                    del self._waiters[key]

    def _wake(self, key: QueuePartition) -> None:
        waiting = self._waiters.get(key)
        if waiting:
            for future in list(waiting):
                if not future.done():
                    future.set_result(None)
