"""One hosted partition, as Kafka's ``Partition``: its log, its role, and on the leader everything that
acknowledging writes needs.

A ``Partition`` is the only owner of:

- its **role** (``partition_role.py``: unhosted, no leader, leader, follower, fenced, deleted), changed
  only through that module's transition table;
- its **leader state** while it leads (``replication.py``'s ``LeaderState``: the leader epoch, the ISR,
  the followers' positions, min.insync.replicas), and the ISR changes it writes through the coordinator;
- its **high watermark**: ``_advance_high_watermark`` on the leader (the smallest log end over the ISR),
  ``append_as_follower`` on a follower (the leader's, as its fetch answered); nothing else moves it;
- the **waiters**: acks=all appends waiting for the high watermark, DeleteRecords waiting for the low
  watermark (the smallest log start over the ISR), and long-polling fetches waiting for data.

Writes on the leader go through ``append_as_leader`` (then ``wait_acknowledged`` for acks=all), for a
producer's batch (``Origin.CLIENT``: validated as a client's) and for the group coordinator's offset
records (``Origin.COORDINATOR``) alike; a follower writes through ``append_as_follower``. Reads go through
``read``: consumers up to the high watermark, followers up to the log end.

Standalone is a cluster of one: the partition leads with an ISR of itself, so its high watermark follows
its log end at every append, and acks=all waits only for the fsync.

Runs on the event loop (the log itself is thread-safe; its fsyncs go to a thread).
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from logq import batch as rb
from logq.broker.batch_rewrite import THREAD_THRESHOLD_BYTES, RewritePlan, plan_for, rewrite
from logq.broker.partition_role import Role, RoleEvent, transition
from logq.broker.replication import LeaderState, ReplicationStatus
from logq.client.records import decode_fetched
from logq.clock import Clock
from logq.config import LogConfig
from logq.coordinator import PartitionState
from logq.error_codes import ErrorCode
from logq.errors import InvalidRecordsError, LogqError, OffsetOutOfRangeError, ReplicationError
from logq.queues import INTERNAL_PREFIX
from logq.segments import AppendInfo, PartitionLog

log = logging.getLogger(__name__)

QueuePartition = tuple[str, int]
# (queue, partition, leader epoch, the ISR the change is based on, the new ISR) -> written
IsrWriter = Callable[[str, int, int, tuple[int, ...], tuple[int, ...]], Awaitable[bool]]
_MAGIC_AT = 16  # the magic byte's position in both the old message format and RecordBatch v2
EMPTY = memoryview(b"")
MAX_TIMESTAMP = -3  # ListOffsets: the record with the largest timestamp (KIP-734, v7+)


class Origin(enum.Enum):
    """Who appends on the leader (Kafka's AppendOrigin)."""

    CLIENT = "client"  # a producer: one RecordBatch v2, no control or transactional batch, no internal queue
    COORDINATOR = "coordinator"  # the group coordinator's records of __consumer_offsets


@dataclass(frozen=True, slots=True)
class ReplicaSettings:
    """What every partition of a broker shares."""

    broker_id: int
    clock: Clock
    fsync_before_ack: bool  # acks=all answers once the batch is fsynced (on every ISR member)
    replica_lag_time_max_ms: int
    isr_writer: IsrWriter | None = None  # None: a cluster of one, whose ISR never changes


@dataclass(frozen=True, slots=True)
class PartitionRead:
    """What a fetch gets from one partition."""

    error: int
    records: memoryview
    high_watermark: int
    log_start_offset: int


class Partition:
    def __init__(self, queue: str, index: int, settings: ReplicaSettings) -> None:
        self.queue = queue
        self.index = index
        self.key: QueuePartition = (queue, index)
        self.log: PartitionLog | None = None
        self.role = Role.UNHOSTED
        self.leader_id = -1
        self.leader_epoch = -1  # the epoch of the leadership led or followed
        self.last_consumer_fetch_ms = -1  # for stalled-owner detection
        self._settings = settings
        self._internal = queue.startswith(INTERNAL_PREFIX)
        self._state: PartitionState | None = None  # the latest state from the metadata
        self._min_isr = 1
        self._may_lead = False  # the latest state names this broker leader in an epoch it may lead
        self._fenced_epoch = -1  # the leader epoch led when the session was lost
        self._leader: LeaderState | None = None
        self._acks: list[tuple[int, asyncio.Future[None]]] = []
        self._deletions: list[tuple[int, asyncio.Future[None]]] = []  # DeleteRecords: (log start, waiter)
        self._waiters: set[asyncio.Future[None]] = set()
        self._isr_writes: set[asyncio.Task[None]] = set()
        self._rewrite_for: LogConfig | None = None  # the log config ``_rewrite_plan`` was made from
        self._rewrite_plan: RewritePlan | None = None

    def __repr__(self) -> str:
        return f"Partition({self.queue}-{self.index}, {self.role.value}, epoch {self.leader_epoch})"

    @property
    def name(self) -> str:
        return f"{self.queue}-{self.index}"

    @property
    def is_leader(self) -> bool:
        return self.role is Role.LEADER

    @property
    def high_watermark(self) -> int:
        return self.log.high_watermark if self.log is not None else -1

    def _move(self, event: RoleEvent) -> None:
        self.role = transition(self.role, event)

    # --- roles -------------------------------------------------------------------------------------

    def host(self, plog: PartitionLog) -> None:
        """The log is open: take the role the latest state gives. No high watermark survives a restart
        (a loaded log's tail may not be committed): a leader learns it again from its ISR, a follower
        from its leader."""
        if self.role is not Role.UNHOSTED:
            return
        self.log = plog
        plog.high_watermark = plog.log_start_offset
        self._move(RoleEvent.HOST)
        if self._state is not None:
            self._apply()

    def update(self, state: PartitionState, min_isr: int, *, may_lead: bool) -> None:
        """The metadata's latest state of this partition (``may_lead``: it was written after this broker
        registered, so its leader epoch is not one this broker may already have led and lost)."""
        self._state, self._min_isr = state, min_isr
        self._may_lead = (
            may_lead and state.leader == self._settings.broker_id and state.leader_epoch > self._fenced_epoch
        )
        if self.role is Role.UNHOSTED:
            return  # taken once hosted
        self._apply()

    def unassign(self) -> None:
        """The metadata no longer assigns this partition to this broker (its queue was deleted): it stops
        serving at once; its log stays until it is dropped."""
        if self._state is None or self.role is Role.DELETED:
            return
        self.update(dataclasses.replace(self._state, leader=-1), self._min_isr, may_lead=False)

    def _apply(self) -> None:
        state = self._state
        assert state is not None
        assert self.log is not None
        if state.leader == self._settings.broker_id:
            led = self._leader
            if led is not None and led.leader_epoch == state.leader_epoch:
                self._refresh_leader(state)
                return
            if self._may_lead:
                self._lead(state)
                return
            event = RoleEvent.NO_LEADER  # a state this broker may not lead in (yet)
        elif state.leader >= 0:
            event = RoleEvent.FOLLOW
        else:
            event = RoleEvent.NO_LEADER
        if self.role is Role.LEADER:
            self._resign(event)
        else:
            self._move(event)
        if event is RoleEvent.FOLLOW:
            self.leader_id, self.leader_epoch = state.leader, state.leader_epoch

    def _lead(self, state: PartitionState) -> None:
        assert self.log is not None
        if self.role is Role.LEADER:
            self._resign(RoleEvent.NO_LEADER)
        try:
            self.log.become_leader(state.leader_epoch)  # its start in the leader-epoch history
        except LogqError as exc:
            log.error("cannot lead %s in leader epoch %d: %s", self.name, state.leader_epoch, exc)
            return
        self._leader = LeaderState(
            self._settings.broker_id,
            state.leader_epoch,
            replicas=state.replicas,
            isr=state.isr,
            min_isr=self._min_isr,
            epoch_start=self.log.log_end_offset,
            now_ms=self._settings.clock.time_ms(),
        )
        self._move(RoleEvent.LEAD)
        self.leader_id, self.leader_epoch = self._settings.broker_id, state.leader_epoch
        self._advance_high_watermark()

    def _refresh_leader(self, state: PartitionState) -> None:
        """Still leading in the same epoch: the metadata may have changed the ISR (the controller removed
        a dead follower) or min.insync.replicas. While this leader's own ISR write is out, the snapshot may
        predate it: the write's outcome decides."""
        led = self._leader
        assert led is not None
        if led.pending_isr is None:
            led.isr = state.isr
        led.min_isr = self._min_isr
        self._advance_high_watermark()
        self._complete_deletions()

    def _resign(self, event: RoleEvent) -> None:
        """Stop leading: acks=all writes still waiting fail (another leader decides their fate)."""
        self._leader = None
        self._move(event)
        waiting, self._acks = self._acks + self._deletions, []
        self._deletions = []
        for _, future in waiting:
            if not future.done():
                future.set_exception(
                    ReplicationError(
                        f"{self.name}: this broker stopped leading before the ISR had the batch",
                        code=ErrorCode.NOT_LEADER_OR_FOLLOWER,
                    )
                )
        self._wake()

    def fence(self) -> bool:
        """The coordinator session was lost: stop leading now, and lead again only in a newer leader
        epoch. Returns whether it led (or was about to, once hosted)."""
        if self.role is Role.DELETED:
            return False
        wanted = self._state is not None and self._may_lead
        led = self.role is Role.LEADER
        if led:
            self._fenced_epoch = max(self._fenced_epoch, self.leader_epoch)
        if wanted and self._state is not None:
            self._fenced_epoch = max(self._fenced_epoch, self._state.leader_epoch)
        self._may_lead = False
        if led:
            self._resign(RoleEvent.FENCE)
        else:
            self._move(RoleEvent.FENCE)
        return led or wanted

    def delete(self) -> None:
        """The queue was deleted: stop everything; waiting fetches answer that it is gone."""
        if self.role is Role.LEADER:
            self._resign(RoleEvent.DELETE)
        else:
            self._move(RoleEvent.DELETE)
            self._wake()

    @property
    def wants_lead(self) -> bool:
        """Leads, or will lead once its log is open."""
        return self.role is Role.LEADER or (self.role is Role.UNHOSTED and self._may_lead)

    def followed_state(self) -> PartitionState | None:
        """The state a follower copies from (its leader and leader epoch), None unless following."""
        return self._state if self.role is Role.FOLLOWER else None

    # --- appends on the leader -----------------------------------------------------------------------

    def _led(self) -> tuple[LeaderState, PartitionLog]:
        if self.role is not Role.LEADER or self._leader is None or self.log is None:
            raise ReplicationError(f"{self.name}: not the leader", code=ErrorCode.NOT_LEADER_OR_FOLLOWER)
        return self._leader, self.log

    def append_as_leader(
        self, batch: bytes | bytearray | memoryview, *, acks: int, origin: Origin
    ) -> AppendInfo:
        """Append one batch on the leader, now: it is in the page cache, the high watermark has moved as
        far as the ISR allows, and waiting fetches are woken. acks=all is refused up front while fewer
        than min.insync.replicas are in sync (NOT_ENOUGH_REPLICAS). Raises a LogqError carrying the
        answer's error code."""
        led, plog = self._led()
        if origin is Origin.CLIENT:
            if self._internal:
                raise LogqError(
                    f"{self.queue}: internal queues are not writable (only logq writes to them)",
                    code=ErrorCode.INVALID_TOPIC_EXCEPTION,
                )
            batch = client_batch(batch)
            if "compact" in plog.config.cleanup_policy:  # a look at each record only in compacted queues
                require_keys(batch)
        elif isinstance(batch, bytearray):
            batch = memoryview(batch)
        if acks == -1 and not led.enough_in_sync():
            raise ReplicationError(
                f"{self.name}: {len(led.isr)} in-sync replica(s) {list(led.isr)}, "
                f"min.insync.replicas is {led.min_isr}"
            )
        info = plog.append(batch)
        self._advance_high_watermark()
        self._wake()
        return info

    async def wait_acknowledged(self, info: AppendInfo, *, acks: int, timeout_ms: int) -> None:
        """Return once an append is acknowledged as ``acks`` promises: acks=all, once fsynced here (with
        log.fsync.before.ack) and the high watermark passed it with min.insync.replicas in sync, all in
        the leadership that appended it (a lost and regained leadership does not count). Raises
        ReplicationError: NOT_LEADER_OR_FOLLOWER, REQUEST_TIMED_OUT, NOT_ENOUGH_REPLICAS_AFTER_APPEND."""
        if acks != -1:
            return
        led, plog = self._leadership(info)
        if self._settings.fsync_before_ack and plog.durable_offset <= info.last_offset:
            await asyncio.to_thread(plog.flush)
            led, plog = self._leadership(info)
        offset = info.last_offset + 1
        if plog.high_watermark < offset:
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            entry = (offset, future)
            self._acks.append(entry)
            try:
                await asyncio.wait_for(future, max(timeout_ms, 0) / 1000)
            except TimeoutError:
                raise ReplicationError(
                    f"{self.name}: the ISR did not reach offset {offset} within {timeout_ms} ms",
                    code=ErrorCode.REQUEST_TIMED_OUT,
                ) from None
            finally:
                if entry in self._acks:
                    self._acks.remove(entry)
            led, plog = self._leadership(info)
        if not led.enough_in_sync():
            raise ReplicationError(
                f"{self.name}: written, but the ISR shrank to {list(led.isr)} "
                f"(min.insync.replicas {led.min_isr})",
                code=ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
            )

    def _leadership(self, info: AppendInfo) -> tuple[LeaderState, PartitionLog]:
        led, plog = self._led()
        if led.leader_epoch != info.leader_epoch:
            raise ReplicationError(
                f"{self.name}: led in another leader epoch now", code=ErrorCode.NOT_LEADER_OR_FOLLOWER
            )
        return led, plog

    async def append(
        self, batch: bytes | bytearray | memoryview, *, acks: int, origin: Origin, timeout_ms: int
    ) -> AppendInfo:
        """``append_as_leader``, then ``wait_acknowledged``: a producer's write, answered when its acks
        say so. A client's batch is first rewritten as its queue's compression.type and
        message.timestamp.type ask (``batch_rewrite.py``; nothing is done for the defaults)."""
        append_time = -1
        plan = None
        if origin is Origin.CLIENT and self.role is Role.LEADER and self.log is not None:
            plan = self._plan(self.log.config)
        if plan is not None:
            batch, append_time = await self._rewritten(plan, batch)
        info = self.append_as_leader(batch, acks=acks, origin=origin)
        if append_time >= 0:
            if info.duplicate:  # Kafka answers a retried batch with the time stamped on the original
                append_time = self._stamped_time(info.base_offset, append_time)
            info = info._replace(log_append_time=append_time)
        await self.wait_acknowledged(info, acks=acks, timeout_ms=timeout_ms)
        return info

    async def _rewritten(
        self, plan: RewritePlan, batch: bytes | bytearray | memoryview
    ) -> tuple[bytes | memoryview, int]:
        """(the batch as the queue stores it, the append time stamped on it or -1). A large batch to
        recompress is rewritten in a worker thread: the loop goes on serving meanwhile."""
        view = client_batch(batch)
        now = self._settings.clock.time_ms()
        if len(view) > THREAD_THRESHOLD_BYTES and plan.recompresses(view):
            stored = await asyncio.to_thread(rewrite, plan, view, now)
        else:
            stored = rewrite(plan, view, now)
        return stored, now if plan.log_append_time else -1

    def _plan(self, config: LogConfig) -> RewritePlan | None:
        """The rewrite the queue's settings ask for, made again only when its log config changes."""
        if config is not self._rewrite_for:
            self._rewrite_for, self._rewrite_plan = config, plan_for(config)
        return self._rewrite_plan

    def _stamped_time(self, offset: int, default: int) -> int:
        """The max timestamp of the stored batch at ``offset`` (``default`` if it is gone)."""
        assert self.log is not None
        try:
            stored = self.log.read(offset, 0)
        except LogqError:
            return default
        return rb.parse_header(stored).max_timestamp if len(stored) >= rb.HEADER_SIZE else default

    def _advance_high_watermark(self) -> None:
        """The only code that moves a leader's high watermark: the smallest log end over the ISR, never
        back. Completes the acks=all waiters it passes and wakes fetches."""
        led, plog = self._leader, self.log
        if led is None or plog is None:
            return
        hw = led.high_watermark(plog.log_end_offset)
        if hw <= plog.high_watermark:
            return
        plog.high_watermark = hw
        if self._acks:
            for offset, future in list(self._acks):
                if offset <= hw and not future.done():
                    future.set_result(None)
        self._wake()

    # --- the followers' side on the leader -----------------------------------------------------------

    def check_epoch(self, epoch: int) -> ErrorCode:
        """KIP-320 fencing of a request that names the leader epoch it believes current (-1: none)."""
        led = self._leader
        if epoch == -1 or led is None or epoch == led.leader_epoch:
            return ErrorCode.NONE
        return ErrorCode.FENCED_LEADER_EPOCH if epoch < led.leader_epoch else ErrorCode.UNKNOWN_LEADER_EPOCH

    def follower_fetched(self, replica: int, fetch_offset: int, epoch: int, log_start: int = -1) -> ErrorCode:
        """A follower's Fetch says its log ends at ``fetch_offset`` and starts at ``log_start``: update its
        progress, the high and low watermarks, and the ISR if it has caught up."""
        led, plog = self._leader, self.log
        if led is None or plog is None or not led.is_replica(replica):
            return ErrorCode.NOT_LEADER_OR_FOLLOWER  # not (led here, or a replica of this partition)
        if epoch < 0:
            return ErrorCode.FENCED_LEADER_EPOCH  # a replica must say which leader epoch it follows
        if fetch_offset > plog.log_end_offset:
            return ErrorCode.OFFSET_OUT_OF_RANGE  # a diverged log: it must truncate by epoch first
        led.on_fetch(replica, fetch_offset, plog.log_end_offset, self._settings.clock.time_ms(), log_start)
        self._advance_high_watermark()
        self._complete_deletions()
        if led.may_join(replica, plog.high_watermark):
            self._change_isr(led, tuple(sorted({*led.isr, replica})))
        return ErrorCode.NONE

    def shrink_isr(self, now_ms: int) -> None:
        """Drop followers that lagged longer than replica.lag.time.max.ms from the ISR."""
        led = self._leader
        if led is None:
            return
        lagging = led.lagging(now_ms, self._settings.replica_lag_time_max_ms)
        if lagging:
            log.info(
                "%s: replicas %s lagged more than %d ms; removing them from the ISR",
                self.name, list(lagging), self._settings.replica_lag_time_max_ms,
            )  # fmt: skip
            self._change_isr(led, tuple(r for r in led.isr if r not in lagging))

    def _change_isr(self, led: LeaderState, isr: tuple[int, ...]) -> None:
        if self._settings.isr_writer is None or led.pending_isr is not None or isr == led.isr:
            return
        led.pending_isr = isr
        task = asyncio.get_running_loop().create_task(
            self._write_isr(led, led.isr, isr), name=f"isr-{self.name}"
        )
        self._isr_writes.add(task)
        task.add_done_callback(self._isr_writes.discard)

    async def _write_isr(self, led: LeaderState, based_on: tuple[int, ...], isr: tuple[int, ...]) -> None:
        assert self._settings.isr_writer is not None
        try:
            written = await self._settings.isr_writer(self.queue, self.index, led.leader_epoch, based_on, isr)
        except Exception:
            log.exception("%s: writing the ISR failed", self.name)
            written = False
        finally:
            led.pending_isr = None
        if written and self._leader is led:
            led.isr = isr
        self._advance_high_watermark()
        self._complete_deletions()

    # --- DeleteRecords -------------------------------------------------------------------------------

    def low_watermark(self) -> int:
        """The smallest log start over the ISR (the leader's alone standalone); -1 while unknown."""
        led, plog = self._led()
        return led.low_watermark(plog.log_start_offset)

    def _complete_deletions(self) -> None:
        if not self._deletions or self._leader is None or self.log is None:
            return
        low = self._leader.low_watermark(self.log.log_start_offset)
        for offset, future in list(self._deletions):
            if offset <= low and not future.done():
                future.set_result(None)

    async def delete_records(self, offset: int, timeout_ms: int) -> tuple[ErrorCode, int]:
        """DeleteRecords on the leader, as Kafka's: ``offset`` (-1: the high watermark) becomes the log
        start, durable here before the ISR is asked; the answer waits up to ``timeout_ms`` until every ISR
        member reports it too (Kafka's DelayedDeleteRecords). Returns (NONE or REQUEST_TIMED_OUT, the low
        watermark). Raises a LogqError: NOT_LEADER_OR_FOLLOWER, OFFSET_OUT_OF_RANGE (negative, or past
        the high watermark), POLICY_VIOLATION (a compacted queue), INVALID_TOPIC_EXCEPTION (internal)."""
        led, plog = self._led()
        if self._internal:
            raise LogqError(
                f"{self.queue}: records of internal queues cannot be deleted",
                code=ErrorCode.INVALID_TOPIC_EXCEPTION,
            )
        if "delete" not in plog.config.cleanup_policy.split(","):
            raise LogqError(
                f"{self.name}: cleanup.policy is {plog.config.cleanup_policy}: records are deleted only "
                "where it includes delete",
                code=ErrorCode.POLICY_VIOLATION,
            )
        hw = plog.high_watermark
        target = hw if offset == -1 else offset
        if not 0 <= target <= hw:
            raise OffsetOutOfRangeError(f"{self.name}: offset {offset} is outside [0, high watermark {hw}]")
        await asyncio.to_thread(plog.advance_log_start, target)
        if self._leader is not led:
            raise ReplicationError(f"{self.name}: not the leader", code=ErrorCode.NOT_LEADER_OR_FOLLOWER)
        self._wake()  # a consumer long-polling below the new start is answered OFFSET_OUT_OF_RANGE now
        if led.low_watermark(plog.log_start_offset) < target and timeout_ms > 0:
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            entry = (target, future)
            self._deletions.append(entry)
            try:
                await asyncio.wait_for(future, timeout_ms / 1000)
            except TimeoutError:
                pass
            finally:
                if entry in self._deletions:
                    self._deletions.remove(entry)
            led, plog = self._led()
        low = led.low_watermark(plog.log_start_offset)
        if low < target:
            return ErrorCode.REQUEST_TIMED_OUT, plog.log_start_offset
        return ErrorCode.NONE, low

    def replication_status(self) -> ReplicationStatus | None:
        """The leader's view of its followers, for the metrics (None unless leading)."""
        led, plog = self._leader, self.log
        if led is None or plog is None:
            return None
        end = plog.log_end_offset
        lag = {r: end - f.log_end if f.log_end >= 0 else -1 for r, f in led.followers.items()}
        return ReplicationStatus(plog.name, len(led.followers) + 1, len(led.isr), led.min_isr, lag)

    def other_in_sync_replicas(self) -> tuple[int, ...]:
        """The ISR members other than this broker (a leader that could hand over)."""
        led = self._leader
        return tuple(r for r in led.isr if r != self._settings.broker_id) if led is not None else ()

    # --- the follower's side -------------------------------------------------------------------------

    def _followed(self) -> PartitionLog:
        if self.role is not Role.FOLLOWER or self.log is None:
            raise ReplicationError(f"{self.name}: not a follower", code=ErrorCode.NOT_LEADER_OR_FOLLOWER)
        return self.log

    def append_as_follower(self, records: bytes | memoryview, leader_hw: int, leader_log_start: int) -> None:
        """Append whole batches fetched from the leader, unchanged (CRC checked), and take the leader's
        high watermark and log start (segments wholly below it are deleted, as the leader's were)."""
        plog = self._followed()
        if records:
            plog.append_replicated(records)
        plog.high_watermark = leader_hw
        if leader_log_start > plog.log_start_offset:  # e.g. DeleteRecords: written by the next flush
            plog.adopt_log_start(leader_log_start)
        doomed = sum(1 for s in plog.segment_infos() if not s.active and s.end_offset <= leader_log_start)
        if doomed:
            plog.delete_oldest_segments(doomed, f"the leader's log starts at {leader_log_start}")
        self._wake()

    def truncate_as_follower(self, offset: int) -> None:
        """Cut the log at ``offset`` (truncation by leader epoch): a follower never keeps a tail its leader
        does not have. On the loop, so no role change can come between the check and the cut."""
        self._followed().truncate_to(offset)

    def restart_as_follower(self, offset: int) -> None:
        """Empty the log and continue at ``offset``, the leader's log start: it deleted everything this
        replica lacks (Kafka's truncateFullyAndStartAt)."""
        plog = self._followed()
        log.warning(
            "%s: this replica ends at %d, before the leader's log start %d",
            self.name, plog.log_end_offset, offset,
        )  # fmt: skip
        plog.restart_at(offset)

    # --- reads ---------------------------------------------------------------------------------------

    def read(self, fetch_offset: int, max_bytes: int, *, follower: bool, may_exceed: bool) -> PartitionRead:
        """A fetch's read of this partition, on the leader: whole batches from the one containing
        ``fetch_offset``, up to the high watermark for a consumer and to the log end for a follower, within
        ``max_bytes`` unless ``may_exceed`` (KIP-74: the first non-empty partition of a response gets its
        first batch whole). OFFSET_OUT_OF_RANGE outside [log start, log end]."""
        plog = self.log
        if self.role is not Role.LEADER or plog is None:
            return PartitionRead(ErrorCode.NOT_LEADER_OR_FOLLOWER, EMPTY, -1, -1)
        if not follower:
            self.last_consumer_fetch_ms = self._settings.clock.time_ms()
        data = EMPTY
        error = ErrorCode.NONE
        if not plog.log_start_offset <= fetch_offset <= plog.log_end_offset:
            error = ErrorCode.OFFSET_OUT_OF_RANGE
        elif max_bytes > 0 or may_exceed:
            try:
                data = plog.read(
                    fetch_offset, max(max_bytes, 0), upto=None if follower else plog.high_watermark
                )
            except LogqError as exc:  # retention (another thread) moved the start; the log was closed
                error = exc.code
            if not may_exceed and len(data) > max_bytes:
                data = EMPTY
        return PartitionRead(error, data, plog.high_watermark, plog.log_start_offset)

    def data_arrival(self, future: asyncio.Future[None]) -> None:
        """Complete ``future`` at the next append here, high-watermark move, or role change."""
        self._waiters.add(future)
        future.add_done_callback(self._waiters.discard)

    def _wake(self) -> None:
        if self._waiters:
            for future in list(self._waiters):
                if not future.done():
                    future.set_result(None)

    # --- lookups for ListOffsets and OffsetForLeaderEpoch --------------------------------------------

    def _epoch_at(self, offset: int) -> int:
        """The leader epoch the batch at ``offset`` was written in (-1 if unknown)."""
        assert self.log is not None
        epoch = -1
        for entry_epoch, start in self.log.epoch_history():
            if start > offset:
                break
            epoch = entry_epoch
        return epoch

    async def list_offset(self, timestamp: int) -> tuple[int, int, int]:
        """ListOffsets on the leader: (offset, timestamp, leader epoch) for -1 (the high watermark), -2
        (the log start), -3 (the record with the largest timestamp, KIP-734) or a timestamp (the first
        record at or after it). Consumers see only committed data: for -3 and a timestamp only records
        below the high watermark count, and offset -1 (timestamp -1) means there is none."""
        _, plog = self._led()
        if timestamp == -1:
            return plog.high_watermark, -1, self.leader_epoch
        if timestamp == -2:
            start = plog.log_start_offset
            return start, -1, self._epoch_at(start)
        committed = plog.high_watermark
        if timestamp == MAX_TIMESTAMP:
            found = await asyncio.to_thread(plog.offset_for_max_timestamp, committed)
        else:
            found = await asyncio.to_thread(plog.offset_for_timestamp, timestamp)
        if found is None or found.offset >= committed:
            return -1, -1, -1
        return found.offset, found.timestamp, self._epoch_at(found.offset)

    def end_offset_for_epoch(self, epoch: int) -> tuple[int, int]:
        """OffsetForLeaderEpoch on the leader (see ``PartitionLog.end_offset_for_epoch``)."""
        _, plog = self._led()
        return plog.end_offset_for_epoch(epoch)


def require_keys(batch: memoryview) -> None:
    """Kafka refuses a batch holding a record without a key for a compacted queue: INVALID_RECORD.

    On the event loop for every batch of a compacted queue, so with the client's compiled decoder (the
    cleaner's pure-Python record walk took ~4 us a record here). A batch it cannot decode is let through:
    the append's validation refuses a damaged one, and the cleaner keeps a snappy or lz4 one whole."""
    try:
        records = decode_fetched(batch, "", 0, 0).records
    except Exception:  # BatchError, an unsupported codec, a damaged compressed block (zlib, zstd errors)
        return
    keyless = [record.offset for record in records if record.key is None]
    if keyless:
        why = "has no key: a compacted queue (cleanup.policy=compact) keeps the latest record of each key"
        raise InvalidRecordsError(
            f"{len(keyless)} record(s) of the batch, the first at offset delta {keyless[0]}, {why}",
            [(index, f"the record {why}") for index in keyless],
        )


def client_batch(records: bytes | bytearray | memoryview | None) -> memoryview:
    """A producer's records as Kafka's ``validateRecords`` accepts them: exactly one RecordBatch v2,
    neither a control nor a transactional batch. LogqError(INVALID_RECORD / CORRUPT_MESSAGE) otherwise.
    The CRC and the records are checked by the log's append."""
    if records is not None and len(records) > _MAGIC_AT and records[_MAGIC_AT] != rb.MAGIC:
        raise LogqError("only record batches of magic 2", code=ErrorCode.INVALID_RECORD)
    if records is None or len(records) < rb.HEADER_SIZE:
        raise LogqError("the records are shorter than a batch header", code=ErrorCode.CORRUPT_MESSAGE)
    view = memoryview(records)
    header = rb.parse_header(view)
    if header.size < len(view):
        raise LogqError("exactly one record batch per partition", code=ErrorCode.INVALID_RECORD)
    if header.is_control or header.is_transactional:
        raise LogqError("control and transactional batches", code=ErrorCode.INVALID_RECORD)
    return view
