"""The partitions this broker hosts: their logs, appends with the acks rules, high watermarks,
replication bookkeeping on leaders, and the wake-ups that long-polling fetches wait for.

Standalone mode: this broker leads every partition and is its only replica, so the high watermark moves
to the log end on every append. Runs on the event loop; blocking work (fsync, creating and deleting
logs) goes to threads.

Cluster mode (``broker_id`` given): the broker hosts only the partitions whose replicas include it. It
leads those whose state in the coordinator's latest snapshot names it leader (``update_leadership``)
and follows the others (``following()``: the replica fetchers copy them from their leaders). A led
partition has a ``LeaderState`` (``replication.py``): the ISR, each follower's log end from its
fetches, and min.insync.replicas. Its high watermark is the smallest log end over the ISR; acks=all
waits until it passes the batch. The ISR shrinks when a follower lags longer than
``replica.lag.time.max.ms`` and grows when one catches up, each by a conditional write of the
partition state (``isr_writer``, the coordinator's ``update_isr``).

Leadership starts only for a state written after this broker registered (``is_current``) and, after a
lost ZooKeeper session (``fence()``), only in a *newer* leader epoch than the one fenced: the controller
always gives a returning broker a new epoch, so nothing is acknowledged in an epoch that may already
have another leader. Taking the lead records the epoch's start in the log (``become_leader``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping

from logq.config import LogConfig
from logq.coordinator import PartitionState, QueueMetadata
from logq.error_codes import ErrorCode
from logq.errors import LogqError, ReplicationError
from logq.groups.offsets import OFFSETS_QUEUE, offsets_log_config
from logq.queues import log_config_for, min_insync_replicas
from logq.segments import AppendInfo, LogManager, NewPartition, PartitionLog

from .replication import LeaderState, ReplicationStatus

log = logging.getLogger(__name__)

QueuePartition = tuple[str, int]
# (queue, partition, leader epoch, the ISR the change is based on, the new ISR) -> written
IsrWriter = Callable[[str, int, int, tuple[int, ...], tuple[int, ...]], Awaitable[bool]]
DEFAULT_REPLICA_LAG_TIME_MAX_MS = 30_000  # Kafka's replica.lag.time.max.ms


class ReplicaManager:
    def __init__(
        self,
        logs: LogManager,
        defaults: LogConfig,
        *,
        fsync_before_ack: bool,
        broker_id: int | None = None,
        replica_lag_time_max_ms: int = DEFAULT_REPLICA_LAG_TIME_MAX_MS,
        isr_writer: IsrWriter | None = None,
    ) -> None:
        self._logs = logs
        self._broker_id = broker_id  # None: standalone, the only replica and leader of everything
        self._defaults = defaults
        self._fsync_before_ack = fsync_before_ack
        self._lag_max_ms = replica_lag_time_max_ms
        self._isr_writer = isr_writer
        self._leaders: dict[QueuePartition, LeaderState] = {}  # cluster mode: led and ready
        self._want_lead: dict[QueuePartition, tuple[PartitionState, int]] = {}  # (state, min ISR)
        self._following: dict[QueuePartition, PartitionState] = {}
        self._fenced: dict[QueuePartition, int] = {}  # leader epoch at the last fence(), per partition
        self._acks: dict[QueuePartition, list[tuple[int, asyncio.Future[None]]]] = {}
        self._waiters: dict[QueuePartition, set[asyncio.Future[None]]] = {}
        self._last_fetch_ms: dict[QueuePartition, int] = {}
        self._isr_writes: set[asyncio.Task[None]] = set()
        self._hosting: dict[str, set[asyncio.Future[None]]] = {}  # queue -> host() calls working on it
        self._background: set[asyncio.Task[None]] = set()
        self._clock = logs.clock
        if broker_id is not None:
            # No high watermark survives a restart: a loaded log's tail may not be committed. A leader
            # learns it again from its followers; a follower from its leader.
            for plog in logs.logs():
                plog.high_watermark = plog.log_start_offset

    def log_for(self, queue: str, partition: int) -> PartitionLog | None:
        return self._logs.get(queue, partition)

    def logs(self) -> list[PartitionLog]:
        return self._logs.logs()

    # --- hosting -----------------------------------------------------------------------------------

    async def host(self, queues: Mapping[str, QueueMetadata]) -> None:
        """Open (creating if needed) the log of every partition of ``queues`` hosted here, with its
        settings; then start leading the partitions that waited for their log."""
        work = asyncio.ensure_future(asyncio.to_thread(self._host_blocking, list(queues.values())))
        for name in queues:
            self._hosting.setdefault(name, set()).add(work)
        try:
            await work
        finally:
            for name in queues:
                pending = self._hosting.get(name)
                if pending is not None:
                    pending.discard(work)
                    if not pending:
                        del self._hosting[name]
        for key in sorted(self._want_lead):
            if key not in self._leaders:
                self._activate(key)

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

    def _host_blocking(self, queues: Iterable[QueueMetadata]) -> None:
        wanted: list[NewPartition] = []
        for queue in queues:
            config = log_config_for(self._defaults, queue.settings)
            if queue.name == OFFSETS_QUEUE:
                config = offsets_log_config(config)  # compacted by the offset store, never aged out
            for partition, state in enumerate(queue.partitions):
                if self._broker_id is not None and self._broker_id not in state.replicas:
                    continue  # another broker's partition
                wanted.append(NewPartition(queue.name, partition, config, queue.queue_id))
        # a loaded log takes the config; one left by an older queue of the name is replaced
        self._logs.create_many(wanted)
        if self._broker_id is None:
            for spec in wanted:
                plog = self._logs.get(spec.queue, spec.partition)
                if plog is not None:
                    plog.high_watermark = plog.log_end_offset

    # --- leadership --------------------------------------------------------------------------------

    @property
    def cluster_mode(self) -> bool:
        return self._broker_id is not None

    def is_leader(self, queue: str, partition: int) -> bool:
        """Whether this broker may serve produce, consumer fetches and ListOffsets for the partition."""
        return self._broker_id is None or (queue, partition) in self._leaders

    def leading(self) -> set[QueuePartition]:
        return set(self._leaders)

    def following(self) -> dict[QueuePartition, PartitionState]:
        """Cluster mode: the hosted partitions led by another live broker, with their state."""
        return dict(self._following)

    def replication_status(self) -> list[ReplicationStatus]:
        """Every led partition's replicas, ISR and followers' lag (for the metrics; cheap, on scrape)."""
        out = []
        for key, led in list(self._leaders.items()):
            plog = self._logs.get(*key)
            if plog is None:
                continue
            end = plog.log_end_offset
            lag = {r: end - f.log_end if f.log_end >= 0 else -1 for r, f in led.followers.items()}
            out.append(ReplicationStatus(plog.name, len(led.followers) + 1, len(led.isr), led.min_isr, lag))
        return out

    def not_served(self, queue: str, partition: int, queues: Mapping[str, QueueMetadata]) -> ErrorCode:
        """The error for a partition this broker has no log of or does not lead (standalone: a partition
        of a queue still being created, whose log is not there yet)."""
        meta = queues.get(queue)
        if meta is None or not 0 <= partition < len(meta.partitions):
            return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        return ErrorCode.NOT_LEADER_OR_FOLLOWER

    def without_log(self, meta: QueueMetadata) -> set[int]:
        """The partitions of ``meta`` that the metadata says this broker leads but whose log is not open
        (yet): their creation is still going on. Metadata answers them without a leader, as Kafka does
        until a new partition's leader has created its log."""
        me = self._broker_id
        return {
            partition
            for partition, state in enumerate(meta.partitions)
            if (me is None or state.leader == me) and self._logs.get(meta.name, partition) is None
        }

    def update_leadership(
        self,
        queues: Mapping[str, QueueMetadata],
        is_current: Callable[[str, int], bool] = lambda queue, partition: True,
    ) -> tuple[set[QueuePartition], set[QueuePartition]]:
        """Take the roles of a new snapshot; returns the partitions (gained, lost) as leader. A gained
        partition is led once its log exists (at once, or after ``host``)."""
        if self._broker_id is None:
            return set(), set()
        me = self._broker_id
        want: dict[QueuePartition, tuple[PartitionState, int]] = {}
        following: dict[QueuePartition, PartitionState] = {}
        for queue in queues.values():
            min_isr = min_insync_replicas(queue.settings, queue.replication_factor)
            for partition, state in enumerate(queue.partitions):
                key = (queue.name, partition)
                if me not in state.replicas:
                    continue
                if state.leader != me:
                    if state.leader >= 0:
                        following[key] = state
                    continue
                led = self._leaders.get(key)
                if led is not None and led.leader_epoch == state.leader_epoch:
                    want[key] = (state, min_isr)  # still leading; the snapshot may change the ISR
                elif state.leader_epoch > self._fenced.get(key, -1) and is_current(queue.name, partition):
                    want[key] = (state, min_isr)
        before = {key: state.leader_epoch for key, (state, _) in self._want_lead.items()}
        after = {key: state.leader_epoch for key, (state, _) in want.items()}
        for key, led in list(self._leaders.items()):
            if after.get(key) != led.leader_epoch:
                self._resign(key)
        self._want_lead = want
        self._following = following
        for key, (state, min_isr) in want.items():
            led = self._leaders.get(key)
            if led is None:
                self._activate(key)
            elif led.min_isr != min_isr or (led.isr != state.isr and led.pending_isr is None):
                # e.g. the controller removed a dead follower. While this leader's own ISR write is
                # out, a snapshot may predate it: the write's outcome decides.
                if led.pending_isr is None:
                    led.isr = state.isr
                led.min_isr = min_isr
                self._advance_high_watermark(key)
        gained = {key for key, epoch in after.items() if before.get(key) != epoch}
        lost = {key for key, epoch in before.items() if after.get(key) != epoch}
        return gained, lost

    def _activate(self, key: QueuePartition) -> None:
        state, min_isr = self._want_lead[key]
        plog = self._logs.get(*key)
        if plog is None or self._broker_id is None:
            return  # hosted by the next host()
        try:
            plog.become_leader(state.leader_epoch)
        except LogqError as exc:
            log.error("cannot lead %s-%d in leader epoch %d: %s", key[0], key[1], state.leader_epoch, exc)
            return
        self._leaders[key] = LeaderState(
            self._broker_id,
            state.leader_epoch,
            replicas=state.replicas,
            isr=state.isr,
            min_isr=min_isr,
            epoch_start=plog.log_end_offset,
            now_ms=self._clock.time_ms(),
        )
        self._advance_high_watermark(key)

    def _resign(self, key: QueuePartition) -> None:
        self._leaders.pop(key, None)
        for _, future in self._acks.pop(key, []):
            if not future.done():
                future.set_exception(
                    ReplicationError(
                        f"{key[0]}-{key[1]}: this broker stopped leading before the ISR had the batch",
                        code=ErrorCode.NOT_LEADER_OR_FOLLOWER,
                    )
                )
        self._wake(key)

    def fence(self) -> set[QueuePartition]:
        """Stop leading everything now (session lost); returns the partitions that were led."""
        lost = set(self._want_lead)  # led, or waiting for its log to be led
        self._fenced.update({key: state.leader_epoch for key, (state, _) in self._want_lead.items()})
        for key in list(self._leaders):
            self._resign(key)
        self._want_lead = {}
        return lost

    async def remove_strays(self, queues: Mapping[str, QueueMetadata]) -> None:
        """At startup, after ``host``: delete the logs of queues deleted while this broker was down.

        Only in cluster mode (the data directory's cluster id was checked, so the metadata is this
        cluster's) and only a log recorded under a queue id whose queue is gone or was created again with
        another id. Anything else on disk that the metadata does not assign here is kept and logged."""
        for queue, partition in self._logs.partitions():
            meta = queues.get(queue)
            recorded = self._logs.queue_id(queue, partition)
            gone = meta is None or bool(meta.queue_id and meta.queue_id != recorded)
            if self._broker_id is not None and recorded and gone:
                log.warning(
                    "partition %s-%d belongs to a queue deleted while this broker was down: deleting it",
                    queue,
                    partition,
                )
                await asyncio.to_thread(self._logs.delete, queue, partition)
                continue
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
        """Delete the data of a deleted queue (the partitions hosted here), once a creation of its logs
        still going on has ended (it would leave logs behind)."""
        await self._hosting_done(queue)
        for partition in range(partitions):
            key = (queue, partition)
            self._resign(key)
            self._want_lead.pop(key, None)
            self._following.pop(key, None)
            self._fenced.pop(key, None)
            await asyncio.to_thread(self._logs.delete, queue, partition)
            self._wake(key)  # fetches waiting on it answer that it is gone

    # --- produce -----------------------------------------------------------------------------------

    async def append(
        self,
        queue: str,
        partition: int,
        plog: PartitionLog,
        batch: memoryview,
        acks: int,
        *,
        timeout_ms: int = 30_000,
    ) -> AppendInfo:
        """Append one producer batch. acks=all (-1) returns once every ISR member has it (and, with
        log.fsync.before.ack, has fsynced it: the leader here, followers before they fetch again).
        Concurrent callers share fsyncs (the log's group commit), off the event loop."""
        key = (queue, partition)
        led = self._leaders.get(key)
        if led is None and self._broker_id is not None:
            raise _not_leader(key)
        if led is not None and acks == -1 and not led.enough_in_sync():
            raise ReplicationError(
                f"{queue}-{partition}: {len(led.isr)} in-sync replica(s) {list(led.isr)}, "
                f"min.insync.replicas is {led.min_isr}"
            )
        info = plog.append(batch)
        if led is None:
            plog.high_watermark = plog.log_end_offset  # standalone: the only replica
        else:
            self._advance_high_watermark(key)
        self._wake(key)
        if acks == -1:
            if self._fsync_before_ack and plog.durable_offset <= info.last_offset:
                await asyncio.to_thread(plog.flush)
            if led is not None:
                await self.wait_replicated(queue, partition, info.last_offset + 1, timeout_ms, led=led)
        return info

    async def wait_replicated(
        self, queue: str, partition: int, offset: int, timeout_ms: int, *, led: LeaderState | None = None
    ) -> None:
        """Return once the high watermark reaches ``offset`` with at least min.insync.replicas in the
        ISR, all within the leadership ``led`` (default: the current one) that wrote the data: a lost
        and regained leadership does not count. ReplicationError otherwise (see its codes).
        Standalone: at once."""
        key = (queue, partition)
        if self._broker_id is None:
            return
        plog = self._logs.get(queue, partition)
        led = led or self._leaders.get(key)
        if led is None or self._leaders.get(key) is not led or plog is None:
            raise _not_leader(key)
        if plog.high_watermark < offset:
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            waiting = self._acks.setdefault(key, [])
            waiting.append((offset, future))
            try:
                await asyncio.wait_for(future, max(timeout_ms, 0) / 1000)
            except TimeoutError:
                raise ReplicationError(
                    f"{queue}-{partition}: the ISR did not reach offset {offset} within {timeout_ms} ms",
                    code=ErrorCode.REQUEST_TIMED_OUT,
                ) from None
            finally:
                if (offset, future) in waiting:
                    waiting.remove((offset, future))
        if self._leaders.get(key) is not led:
            raise _not_leader(key)
        if not led.enough_in_sync():
            raise ReplicationError(
                f"{queue}-{partition}: written, but the ISR shrank to {list(led.isr)} "
                f"(min.insync.replicas {led.min_isr})",
                code=ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
            )

    def appended(self, queue: str, partition: int) -> None:
        """Something other than a producer (the offset store) appended to a led partition: move the
        high watermark (an ISR of one) and wake the followers' fetches."""
        key = (queue, partition)
        self._advance_high_watermark(key)
        self._wake(key)

    def _advance_high_watermark(self, key: QueuePartition) -> None:
        led = self._leaders.get(key)
        plog = self._logs.get(*key)
        if led is None or plog is None:
            return
        hw = led.high_watermark(plog.log_end_offset)
        if hw <= plog.high_watermark:
            return
        plog.high_watermark = hw
        waiting = self._acks.get(key)
        if waiting:
            for offset, future in list(waiting):
                if offset <= hw and not future.done():
                    future.set_result(None)
        self._wake(key)

    # --- followers' fetches (on the leader) ----------------------------------------------------------

    def check_leader_epoch(self, queue: str, partition: int, epoch: int) -> ErrorCode:
        """KIP-320 fencing of a request that names the leader epoch it believes current (-1: none)."""
        led = self._leaders.get((queue, partition))
        if epoch == -1 or led is None or epoch == led.leader_epoch:
            return ErrorCode.NONE
        return ErrorCode.FENCED_LEADER_EPOCH if epoch < led.leader_epoch else ErrorCode.UNKNOWN_LEADER_EPOCH

    def follower_fetched(
        self, queue: str, partition: int, replica: int, fetch_offset: int, epoch: int
    ) -> ErrorCode:
        """A follower's Fetch says its log ends at ``fetch_offset``: update its progress, the high
        watermark, and the ISR if it has caught up."""
        key = (queue, partition)
        led = self._leaders.get(key)
        plog = self._logs.get(queue, partition)
        if led is None or plog is None:
            return ErrorCode.NOT_LEADER_OR_FOLLOWER
        if not led.is_replica(replica):
            return ErrorCode.NOT_LEADER_OR_FOLLOWER  # not a replica of this partition (Kafka: 9 or 6)
        if epoch < 0:
            return ErrorCode.FENCED_LEADER_EPOCH  # a replica must say which leader epoch it follows
        if fetch_offset > plog.log_end_offset:
            return ErrorCode.OFFSET_OUT_OF_RANGE  # a diverged log: it must truncate by epoch first
        led.on_fetch(replica, fetch_offset, plog.log_end_offset, self._clock.time_ms())
        self._advance_high_watermark(key)
        if led.may_join(replica, plog.high_watermark):
            self._change_isr(key, led, tuple(sorted({*led.isr, replica})))
        return ErrorCode.NONE

    async def shrink_lagging_isrs(self) -> None:
        """Drop followers that lagged longer than replica.lag.time.max.ms from every led ISR."""
        now = self._clock.time_ms()
        for key, led in list(self._leaders.items()):
            lagging = led.lagging(now, self._lag_max_ms)
            if lagging:
                log.info(
                    "%s-%d: replicas %s lagged more than %d ms; removing them from the ISR",
                    key[0], key[1], list(lagging), self._lag_max_ms,
                )  # fmt: skip
                self._change_isr(key, led, tuple(r for r in led.isr if r not in lagging))

    def _change_isr(self, key: QueuePartition, led: LeaderState, isr: tuple[int, ...]) -> None:
        if self._isr_writer is None or led.pending_isr is not None or isr == led.isr:
            return
        led.pending_isr = isr
        task = asyncio.get_running_loop().create_task(
            self._write_isr(key, led, led.isr, isr), name=f"isr-{key[0]}-{key[1]}"
        )
        self._isr_writes.add(task)
        task.add_done_callback(self._isr_writes.discard)

    async def _write_isr(
        self, key: QueuePartition, led: LeaderState, based_on: tuple[int, ...], isr: tuple[int, ...]
    ) -> None:
        assert self._isr_writer is not None
        try:
            written = await self._isr_writer(key[0], key[1], led.leader_epoch, based_on, isr)
        except Exception:
            log.exception("%s-%d: writing the ISR failed", key[0], key[1])
            written = False
        finally:
            led.pending_isr = None
        if written and self._leaders.get(key) is led:
            led.isr = isr
        self._advance_high_watermark(key)

    # --- fetch bookkeeping ---------------------------------------------------------------------------

    def record_fetch(self, queue: str, partition: int) -> None:
        """Remember when a partition was last fetched (for stalled-owner detection; one dict store)."""
        self._last_fetch_ms[(queue, partition)] = self._clock.time_ms()

    def last_fetch_ms(self, queue: str, partition: int) -> int:
        return self._last_fetch_ms.get((queue, partition), -1)

    # --- fetch wake-ups ----------------------------------------------------------------------------

    def data_arrival(self, keys: Iterable[QueuePartition]) -> asyncio.Future[None]:
        """A future that completes at the next append to (or high-watermark move of) any of ``keys``
        (cancel it when done)."""
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


def _not_leader(key: QueuePartition) -> ReplicationError:
    return ReplicationError(f"{key[0]}-{key[1]}: not the leader", code=ErrorCode.NOT_LEADER_OR_FOLLOWER)
