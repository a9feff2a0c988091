"""The partitions this broker hosts: their logs, appends with the acks rules, high watermarks, and the
wake-ups that long-polling fetches wait for.

Standalone mode: this broker leads every partition and is its only replica, so the high watermark moves
to the log end on every append. Runs on the event loop; blocking work (fsync, creating and deleting
logs) goes to threads.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping

from logq.config import LogConfig
from logq.coordinator import QueueMetadata
from logq.groups.offsets import OFFSETS_QUEUE, offsets_log_config
from logq.queues import log_config_for
from logq.segments import AppendInfo, LogManager, PartitionLog

log = logging.getLogger(__name__)

QueuePartition = tuple[str, int]


class ReplicaManager:
    def __init__(self, logs: LogManager, defaults: LogConfig, *, fsync_before_ack: bool) -> None:
        self._logs = logs
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
            for partition in range(len(queue.partitions)):
                plog = self._logs.create(queue.name, partition, config)
                plog.high_watermark = plog.log_end_offset

    def warn_about_strays(self, queues: Mapping[str, QueueMetadata]) -> None:
        """Logs on disk for partitions the metadata does not know are kept, never deleted silently."""
        for queue, partition in self._logs.partitions():
            meta = queues.get(queue)
            if meta is None or partition >= len(meta.partitions):
                log.warning(
                    "partition %s-%d is on disk but not in the metadata; leaving it alone", queue, partition
                )

    async def drop(self, queue: str, partitions: int) -> None:
        """Delete the data of a deleted queue."""
        for partition in range(partitions):
            await asyncio.to_thread(self._logs.delete, queue, partition)
            self._wake((queue, partition))

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
