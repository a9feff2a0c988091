"""The partitions this broker hosts: a map of ``Partition`` objects (``partition.py``), and their hosting.

A partition is known here once the metadata assigns it to this broker (``update_leadership``, on every
snapshot of the coordinator: each ``Partition`` takes the role its state gives); its log is opened (or
created) by ``host`` and deleted by ``drop``. Everything else a partition does (appends, reads, the high
watermark, the ISR, the waiters) is its own: handlers look a partition up once (``leader``) and call it.

Standalone is a cluster of one: the embedded coordinator names this broker leader of everything, with an
ISR of itself and real leader epochs, so the same code serves both modes.

Runs on the event loop; creating, opening and deleting logs go to a thread.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping

from logq.broker.partition import Origin, Partition, QueuePartition, ReplicaSettings
from logq.broker.replication import ReplicationStatus
from logq.config import LogConfig
from logq.coordinator import PartitionState, QueueMetadata
from logq.error_codes import ErrorCode
from logq.errors import ReplicationError
from logq.groups.offsets import OFFSETS_QUEUE, offsets_log_config
from logq.queues import log_config_for, min_insync_replicas
from logq.segments import AppendInfo, LogManager, NewPartition, PartitionLog

log = logging.getLogger(__name__)

DEFAULT_REPLICA_LAG_TIME_MAX_MS = 30_000  # Kafka's replica.lag.time.max.ms


class NotServedError(ReplicationError):
    """The partition is not led here: UNKNOWN_TOPIC_OR_PARTITION, NOT_LEADER_OR_FOLLOWER."""


class ReplicaManager:
    def __init__(self, logs: LogManager, defaults: LogConfig, settings: ReplicaSettings) -> None:
        self._logs = logs
        self._defaults = defaults
        self.settings = settings
        self._partitions: dict[QueuePartition, Partition] = {}
        self._queues: Mapping[str, QueueMetadata] = {}  # the latest snapshot
        self._hosting: dict[str, set[asyncio.Future[list[QueuePartition]]]] = {}  # queue -> host() calls
        self._background: set[asyncio.Task[None]] = set()
        # queue -> (the defaults, its settings, its logs' config) last computed
        self._configs: dict[str, tuple[LogConfig, Mapping[str, str], LogConfig]] = {}

    @property
    def broker_id(self) -> int:
        return self.settings.broker_id

    # --- lookups -----------------------------------------------------------------------------------

    def partition(self, queue: str, index: int) -> Partition | None:
        return self._partitions.get((queue, index))

    def partitions(self) -> list[Partition]:
        return list(self._partitions.values())

    def leader(self, queue: str, index: int) -> Partition:
        """The partition, led here; else NotServedError with the answer for the client:
        UNKNOWN_TOPIC_OR_PARTITION for a queue or partition the metadata does not have, otherwise
        NOT_LEADER_OR_FOLLOWER (another broker leads it, or its log is still being created)."""
        partition = self._partitions.get((queue, index))
        if partition is not None and partition.is_leader:
            return partition
        meta = self._queues.get(queue)
        if meta is None or not 0 <= index < len(meta.partitions):
            raise NotServedError(
                f"this broker knows no partition {queue}-{index}", code=ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
            )
        raise NotServedError(f"{queue}-{index}: not led here", code=ErrorCode.NOT_LEADER_OR_FOLLOWER)

    def is_leader(self, queue: str, index: int) -> bool:
        partition = self._partitions.get((queue, index))
        return partition is not None and partition.is_leader

    def leading(self) -> set[QueuePartition]:
        return {key for key, p in self._partitions.items() if p.is_leader}

    def following(self) -> dict[QueuePartition, PartitionState]:
        """The hosted partitions led by another live broker, with the state followed."""
        out = {}
        for key, partition in self._partitions.items():
            state = partition.followed_state()
            if state is not None:
                out[key] = state
        return out

    def replication_status(self) -> list[ReplicationStatus]:
        """Every led partition's replicas, ISR and followers' lag (for the metrics; cheap, on scrape)."""
        return [s for p in list(self._partitions.values()) if (s := p.replication_status()) is not None]

    def without_log(self, meta: QueueMetadata) -> set[int]:
        """The partitions of ``meta`` that the metadata says this broker leads but whose log is not open
        (yet): their creation is still going on. Metadata answers them without a leader, as Kafka does
        until a new partition's leader has created its log."""
        return {
            index
            for index, state in enumerate(meta.partitions)
            if state.leader == self.broker_id and self._logs.get(meta.name, index) is None
        }

    def last_fetch_ms(self, queue: str, index: int) -> int:
        partition = self._partitions.get((queue, index))
        return partition.last_consumer_fetch_ms if partition is not None else -1

    # --- roles from the metadata -------------------------------------------------------------------

    def update_leadership(
        self,
        queues: Mapping[str, QueueMetadata],
        is_current: Callable[[str, int], bool] = lambda queue, index: True,
    ) -> tuple[set[QueuePartition], set[QueuePartition]]:
        """Every partition assigned here takes the role of its state in the snapshot ``queues``
        (``is_current``: written after this broker registered, so it may be led). Returns the partitions
        (gained, lost) as leader: a gained one is led at once, or once its log is open."""
        self._queues = queues
        before = self._lead_epochs()
        me = self.broker_id
        assigned: set[QueuePartition] = set()
        for queue in queues.values():
            min_isr = min_insync_replicas(queue.settings, queue.replication_factor)
            for index, state in enumerate(queue.partitions):
                if me not in state.replicas:
                    continue
                key = (queue.name, index)
                partition = self._partitions.get(key)
                if partition is None:
                    partition = self._partitions[key] = Partition(queue.name, index, self.settings)
                partition.update(state, min_isr, may_lead=is_current(queue.name, index))
                assigned.add(key)
        for key, partition in self._partitions.items():
            if key not in assigned:  # its queue is deleted (its data goes with drop()), or it moved away
                partition.unassign()
        after = self._lead_epochs()
        gained = {key for key, epoch in after.items() if before.get(key) != epoch}
        lost = {key for key, epoch in before.items() if after.get(key) != epoch}
        self.refresh_log_configs()
        return gained, lost

    # --- settings changed while hosted -------------------------------------------------------------

    @property
    def log_defaults(self) -> LogConfig:
        """The log defaults in force here: the configuration file's with the dynamic broker settings."""
        return self._defaults

    def set_log_defaults(self, defaults: LogConfig) -> None:
        """The dynamic broker settings changed: every hosted log takes its new effective settings."""
        self._defaults = defaults
        self.refresh_log_configs()

    def refresh_log_configs(self) -> None:
        """Give every hosted log the settings its queue's latest metadata and the defaults make. A log
        reads ``config`` on each append, roll and retention run, so this is in force at once. Runs on
        every snapshot: a queue whose settings and defaults did not change keeps its config object, so
        most partitions cost an identity check."""
        for (queue, _), partition in self._partitions.items():
            plog = partition.log
            meta = self._queues.get(queue)
            if plog is None or meta is None:
                continue
            config = self._cached_config(meta)
            if plog.config is not config:
                plog.config = config

    def _cached_config(self, meta: QueueMetadata) -> LogConfig:
        cached = self._configs.get(meta.name)
        if cached is not None and cached[0] is self._defaults and cached[1] == meta.settings:
            return cached[2]
        config = self.log_config(meta)
        self._configs[meta.name] = (self._defaults, meta.settings, config)
        return config

    def log_config(self, meta: QueueMetadata) -> LogConfig:
        """The effective log settings of a queue's partitions on this broker."""
        config = log_config_for(self._defaults, meta.settings)
        if meta.name == OFFSETS_QUEUE:
            config = offsets_log_config(config)  # compacted by the offset store, never aged out
        return config

    def _lead_epochs(self) -> dict[QueuePartition, int]:
        return {
            key: p.leader_epoch if p.is_leader else -2 for key, p in self._partitions.items() if p.wants_lead
        }

    def fence(self) -> set[QueuePartition]:
        """Stop leading everything now (the coordinator session was lost); returns the partitions that
        were led (or about to be)."""
        return {key for key, partition in self._partitions.items() if partition.fence()}

    async def shrink_lagging_isrs(self) -> None:
        """Drop followers that lagged longer than replica.lag.time.max.ms from every led ISR."""
        now = self.settings.clock.time_ms()
        for partition in list(self._partitions.values()):
            partition.shrink_isr(now)

    # --- hosting -----------------------------------------------------------------------------------

    async def host(self, queues: Mapping[str, QueueMetadata]) -> None:
        """Open (creating if needed) the log of every partition of ``queues`` assigned here, with its
        settings; each then takes the role its latest state gives."""
        work = asyncio.ensure_future(asyncio.to_thread(self._open_logs, list(queues.values())))
        for name in queues:
            self._hosting.setdefault(name, set()).add(work)
        try:
            opened = await work
        finally:
            for name in queues:
                pending = self._hosting.get(name)
                if pending is not None:
                    pending.discard(work)
                    if not pending:
                        del self._hosting[name]
        for key in opened:
            plog = self._logs.get(*key)
            partition = self._partitions.get(key)
            if partition is None and plog is not None:  # hosted before any snapshot named it
                partition = self._partitions[key] = Partition(key[0], key[1], self.settings)
            if partition is not None and plog is not None:
                partition.host(plog)

    def host_in_background(self, queues: Mapping[str, QueueMetadata]) -> asyncio.Task[None]:
        """``host`` as a task that goes on even if its caller stops waiting for it (a CreateTopics that
        answered REQUEST_TIMED_OUT); a failure is logged."""
        task = asyncio.get_running_loop().create_task(self.host(queues), name="host-" + ",".join(queues))
        self._background.add(task)
        task.add_done_callback(self._hosted)
        return task

    def _hosted(self, task: asyncio.Task[None]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("hosting %s failed", task.get_name(), exc_info=task.exception())

    async def _hosting_done(self, queue: str) -> None:
        """Wait until no ``host`` is creating or opening ``queue``'s logs (its outcome does not matter)."""
        while self._hosting.get(queue):
            await asyncio.wait(self._hosting[queue])

    def _open_logs(self, queues: Iterable[QueueMetadata]) -> list[QueuePartition]:
        wanted: list[NewPartition] = []
        for queue in queues:
            config = self.log_config(queue)
            for index, state in enumerate(queue.partitions):
                if self.broker_id in state.replicas:
                    wanted.append(NewPartition(queue.name, index, config, queue.queue_id))
        # a loaded log takes the config; one left by an older queue of the name is replaced
        self._logs.create_many(wanted)
        return [(spec.queue, spec.partition) for spec in wanted]

    async def remove_strays(self, queues: Mapping[str, QueueMetadata], *, delete: bool) -> None:
        """At startup, after ``host``: the logs on disk that the metadata does not assign here.

        With ``delete`` (cluster mode, where the data directory's cluster id was checked, so the metadata
        is this cluster's), a log recorded under a queue id whose queue is gone or was created again with
        another id is deleted: its queue was deleted while this broker was down. Anything else is kept and
        logged. Standalone nothing is deleted: no cluster id guards against a lost coordinator.json."""
        for queue, index in self._logs.partitions():
            meta = queues.get(queue)
            recorded = self._logs.queue_id(queue, index)
            gone = meta is None or bool(meta.queue_id and meta.queue_id != recorded)
            if delete and recorded and gone:
                log.warning(
                    "partition %s-%d belongs to a queue deleted while this broker was down: deleting it",
                    queue,
                    index,
                )
                await asyncio.to_thread(self._logs.delete, queue, index)
                continue
            mine = (
                meta is not None
                and index < len(meta.partitions)
                and self.broker_id in meta.partitions[index].replicas
            )
            if not mine:
                log.warning(
                    "partition %s-%d is on disk but not assigned here by the metadata; leaving it alone",
                    queue,
                    index,
                )

    async def drop(self, queue: str, partitions: int) -> None:
        """Delete the data of a deleted queue (the partitions hosted here), once a creation of its logs
        still going on has ended (it would leave logs behind)."""
        await self._hosting_done(queue)
        for index in range(partitions):
            partition = self._partitions.pop((queue, index), None)
            if partition is not None:
                partition.delete()  # fetches waiting on it answer that it is gone
            await asyncio.to_thread(self._logs.delete, queue, index)

    # --- fetch wake-ups ----------------------------------------------------------------------------

    def data_arrival(self, keys: Iterable[QueuePartition]) -> asyncio.Future[None]:
        """A future that completes at the next append to (or high-watermark move, or role change of) any
        of ``keys`` hosted here (cancel it when done)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        for key in set(keys):
            partition = self._partitions.get(key)
            if partition is not None:
                partition.data_arrival(future)
        return future


class CoordinatorWrites:
    """The group coordinator's side of ``__consumer_offsets``: its writes go through the leader
    partition, as a producer's do (Kafka's appendRecords with origin COORDINATOR)."""

    def __init__(self, replicas: ReplicaManager) -> None:
        self._replicas = replicas

    def log(self, partition: int) -> PartitionLog:
        led = self._replicas.leader(OFFSETS_QUEUE, partition)
        assert led.log is not None
        return led.log

    def append(self, partition: int, batch: bytes, *, acks: int) -> AppendInfo:
        led = self._replicas.leader(OFFSETS_QUEUE, partition)
        return led.append_as_leader(batch, acks=acks, origin=Origin.COORDINATOR)
