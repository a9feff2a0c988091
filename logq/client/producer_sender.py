"""The producer's sender: the task on the producer's event loop that takes the batches
:class:`logq.client.producer.Producer` closed to the brokers (steps 2 to 4 of how a record travels, in
:mod:`logq.client.producer`).

1. Each pass (:meth:`Sender._run_once`) takes the batches the producer closed and builds each one once:
   compressed (zstd by default), CRC-ed and, for an idempotent producer, given the partition's next
   sequence numbers.
2. It combines ready batches of partitions led by the same broker into one ProduceRequest (one batch per
   partition per request, at most ``max_request_size`` bytes), with at most ``max_in_flight`` requests in
   flight per partition. Answers complete whole batches: every future and ``on_delivery`` callback of the
   batch at once.
3. Retriable errors (lost connection, NOT_LEADER_OR_FOLLOWER, UNKNOWN_TOPIC_OR_PARTITION, timeouts...)
   refresh metadata and retry the batch, with exponential backoff from ``retry_backoff_ms`` (at most 1 s),
   until ``retries`` or ``delivery_timeout_ms`` runs out. Order within a partition survives retries: a
   partition sends nothing new while one of its batches is failing, and failed batches go out again in
   their original order, with the same bytes and sequence numbers, once its other in-flight requests are
   answered. So the broker sees a retried batch of an idempotent producer as a duplicate (answered with
   the original offsets) or as the next one. Should a batch that carried sequence numbers fail for good,
   the producer takes a new producer id (epoch bump, as Kafka's KIP-360) before it sends anything else
   and renumbers the batches it still holds.

It also keeps one connection per broker (reconnecting with backoff), refreshes the metadata of queues
whose leaders may have moved, and learns the partitions of queues sent to for the first time. A pass runs
when the producer wakes the sender (:meth:`Sender.wake`) or at the next deadline it knows of. All of it
runs on the loop thread; the producer's lock is taken only for the state shared with sending threads.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from typing import Any, Protocol

from logq import batch as rb
from logq.client.cluster import Cluster
from logq.client.connection import BrokerConnection
from logq.client.producer_batches import (
    SPENT_BUILDER,
    PartitionState,
    PendingRecords,
    ProducerBatch,
    QueueState,
)
from logq.client.producer_futures import set_done
from logq.client.records import with_sequence
from logq.error_codes import ErrorCode
from logq.errors import (
    BrokerUnavailableError,
    ClientError,
    ClientTimeoutError,
    LogqError,
    UnknownQueueError,
    error_for_code,
)
from logq.protocol import messages as m

__all__ = ["Accumulator", "Sender"]

log = logging.getLogger("logq.client.producer")  # the producer's one logger, whichever module logs

MAX_BACKOFF_S = 1.0
SEQUENCE_WRAP = 1 << 31
_monotonic = time.monotonic
# Errors after which the partition's leader may have moved: refresh metadata before retrying.
_STALE_METADATA = frozenset(
    {
        ErrorCode.NOT_LEADER_OR_FOLLOWER,
        ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
        ErrorCode.LEADER_NOT_AVAILABLE,
        ErrorCode.FENCED_LEADER_EPOCH,
        ErrorCode.UNKNOWN_LEADER_EPOCH,
        ErrorCode.NETWORK_EXCEPTION,
        ErrorCode.REQUEST_TIMED_OUT,
    }
)
# The broker lost or refused our producer state: take a new producer id, then send the batch again.
_RESET_AND_RETRY = frozenset({ErrorCode.UNKNOWN_PRODUCER_ID})


class Accumulator(Protocol):
    """What the sender uses of its producer (:class:`logq.client.producer.Producer`), which accumulates
    the records sent into batches."""

    _lock: threading.Lock  # guards the state shared with sending threads
    _wake_pending: bool  # a wake-up of the sender is on its way (under _lock)
    _queues: dict[str, QueueState]  # queues with known partitions

    def _wake(self) -> None:
        """Make the sender run another pass."""

    def _drain(self, now: float) -> tuple[list[ProducerBatch], list[tuple[str, PendingRecords]], float]:
        """Close the open batches that are due, take the closed batches and the queues to learn."""

    def _route_pending(self, queue: str, pending: PendingRecords, qs: QueueState) -> None:
        """Append the records that waited for the queue's metadata to their partitions' batches."""

    def _expire_pending(self, queue: str, pending: PendingRecords, last: LogqError) -> None:
        """Fail the records that waited for the queue's metadata longer than delivery_timeout_ms."""

    def _fail_pending(self, queue: str, pending: PendingRecords, error: LogqError) -> None:
        """Fail every record that waited for the queue's metadata."""

    def _drop_queue(self, qs: QueueState) -> list[ProducerBatch]:
        """Forget a queue that is gone; returns the open batches taken from its partitions."""


class Sender:
    """Sends the batches of one producer (see the module docstring); started by ``Producer.start``."""

    def __init__(
        self,
        producer: Accumulator,
        cluster: Cluster,
        *,
        idempotent: bool,
        acks: int,
        codec: int,
        retries: int | None,
        backoff_s: float,
        delivery_timeout_s: float,
        request_timeout_ms: int,
        metadata_max_age_s: float,
        max_in_flight: int,
        max_request_size: int,
        allow_auto_create: bool,
    ) -> None:
        self._producer = producer
        self._cluster = cluster
        self.idempotent = idempotent
        self._acks = acks
        self._codec = codec
        self._retries = retries
        self._backoff_s = backoff_s
        self._delivery_timeout_s = delivery_timeout_s
        self._request_timeout_ms = request_timeout_ms
        self._metadata_max_age_s = metadata_max_age_s
        self._metadata_due = _monotonic() + metadata_max_age_s
        self._max_in_flight = max_in_flight
        self._max_request_size = max_request_size
        self._allow_auto_create = allow_auto_create

        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._active: dict[PartitionState, None] = {}  # partitions with batches queued
        self._conns: dict[int, BrokerConnection] = {}
        self._connecting: set[int] = set()
        self._node_failures: dict[int, int] = {}
        self._node_retry_at: dict[int, float] = {}
        self._inflight_requests = 0
        self._batch_number = 0
        self.producer_id = rb.NO_PRODUCER_ID
        self.producer_epoch = -1
        self._reset_needed = False
        self._resetting = False

    # --- life cycle -------------------------------------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start the sender task on ``loop``, the producer's (from that loop)."""
        self._loop = loop
        self._task = loop.create_task(self._run(), name="logq-producer-sender")

    async def stop(self) -> None:
        """Cancel the sender task and every task it started, and wait for them to end."""
        tasks = [t for t in (self._task, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def wake(self) -> None:
        """End the sender's wait for its next pass (loop thread)."""
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def init_producer_id(self) -> None:
        """Get a producer id and epoch (InitProducerId) from any broker."""
        conn = await self._cluster.any_connection()
        answer: m.InitProducerIdResponse = await self._cluster.send(
            conn, m.InitProducerIdRequest(transactional_id=None, transaction_timeout_ms=-1)
        )
        if answer.error_code == ErrorCode.CLUSTER_AUTHORIZATION_FAILED:
            raise error_for_code(
                answer.error_code,
                "the broker's ACLs refuse this idempotent producer an id: it needs WRITE on some queue "
                "(or IDEMPOTENT_WRITE on the cluster), or enable_idempotence=False",
            )
        if answer.error_code != ErrorCode.NONE:
            raise error_for_code(answer.error_code, "InitProducerId failed")
        self.producer_id = answer.producer_id
        self.producer_epoch = answer.producer_epoch

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        producer = self._producer
        while True:
            with producer._lock:
                producer._wake_pending = False
            try:
                next_at = self._run_once()
            except Exception:  # a bug must not leave every future hanging: log it and carry on
                log.exception("the producer's sender failed; retrying")
                next_at = _monotonic() + max(self._backoff_s, 0.1)
            with producer._lock:
                if producer._wake_pending:  # woken while running: another pass
                    waiter = None
                else:
                    waiter = self._waiter = loop.create_future()
            if waiter is None:
                await asyncio.sleep(0)
                continue
            handle = None
            if next_at is not None:
                handle = loop.call_later(max(next_at - _monotonic(), 0.0), set_done, waiter)
            try:
                await waiter
            finally:
                self._waiter = None
                if handle is not None:
                    handle.cancel()

    def _run_once(self) -> float | None:
        """One pass: close lingering batches, queue closed ones, send what may go. Returns when to run
        again if nothing wakes the sender before (monotonic time), or None."""
        now = _monotonic()
        handoff, fetch, next_at = self._producer._drain(now)
        if now >= self._metadata_due:  # metadata.max.age.ms: leader moves and new partitions, unasked
            self._metadata_due = now + self._metadata_max_age_s
            with self._producer._lock:
                known = list(self._producer._queues.values())
            for qs in known:
                self._request_refresh(qs, now)
        next_at = min(next_at, self._metadata_due)
        for name, pend in fetch:
            self._spawn(self._fetch_new_queue(name, pend))
        for b in handoff:
            p = b.part
            if p.qs.dead is not None:
                b.finish(-1, p.qs.dead)
                continue
            p.queue.append(b)
            self._active[p] = None

        if self._reset_needed:
            if self._inflight_requests == 0 and not self._resetting:
                self._resetting = True
                self._spawn(self._reset_producer_id())
            self._expire_queued(now)
            return min(next_at, now + 0.1)

        requests: dict[int, tuple[BrokerConnection, list[ProducerBatch], int]] = {}
        progress = True
        while progress:
            progress = False
            for p in list(self._active):
                queue = p.queue
                if not queue:
                    del self._active[p]
                    continue
                head = queue[0]
                if head.deadline <= now:
                    queue.popleft()
                    self._expire(head, head.last_error)
                    progress = True
                    continue
                if p.failing or len(p.inflight) >= self._max_in_flight:
                    next_at = min(next_at, head.deadline)
                    continue
                if p.backoff_until > now:
                    next_at = min(next_at, p.backoff_until, head.deadline)
                    continue
                if p.leader < 0:
                    self._request_refresh(p.qs, now)
                    next_at = min(next_at, now + max(self._backoff_s, 0.05), head.deadline)
                    continue
                conn = self._connection(p.leader, now)
                if conn is None:  # connecting: that task wakes the sender
                    next_at = min(next_at, self._node_retry_at.get(p.leader, head.deadline), head.deadline)
                    continue
                if head.data is None:
                    self._build(head)
                assert head.data is not None
                size = len(head.data)
                entry = requests.get(p.leader)  # (each partition adds at most one batch per round)
                if entry is not None and entry[2] + size > self._max_request_size:
                    continue  # in the next round's request
                queue.popleft()
                p.inflight.append(head)
                if entry is None:
                    requests[p.leader] = (conn, [head], size)
                else:
                    entry[1].append(head)
                    requests[p.leader] = (conn, entry[1], entry[2] + size)
                progress = True
            if requests:
                for node, (conn, batches, _size) in requests.items():
                    self._launch(node, conn, batches)
                requests = {}
        return None if next_at == float("inf") else next_at

    def _build(self, b: ProducerBatch) -> None:
        builder = b.builder
        p = b.part
        sequence = rb.NO_SEQUENCE
        if self.idempotent:
            sequence = p.next_seq
            p.next_seq = (sequence + builder.count) % SEQUENCE_WRAP
        b.sequence = sequence
        b.count = builder.count
        b.data = builder.build(self._codec, self.producer_id, self.producer_epoch, sequence)
        b.builder = SPENT_BUILDER
        self._batch_number += 1
        b.number = self._batch_number

    def _launch(self, node: int, conn: BrokerConnection, batches: list[ProducerBatch]) -> None:
        by_queue: dict[str, list[m.PartitionProduceData]] = {}
        for b in batches:
            by_queue.setdefault(b.queue, []).append(m.PartitionProduceData(index=b.partition, records=b.data))
        request = m.ProduceRequest(
            acks=self._acks,
            timeout_ms=self._request_timeout_ms,
            topic_data=[m.TopicProduceData(name=q, partition_data=parts) for q, parts in by_queue.items()],
        )
        self._inflight_requests += 1
        self._spawn(self._produce(node, conn, request, batches))

    def _spawn(self, coro: Any) -> None:
        assert self._loop is not None
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _produce(
        self, node: int, conn: BrokerConnection, request: m.ProduceRequest, batches: list[ProducerBatch]
    ) -> None:
        error: LogqError | None = None
        answer: m.ProduceResponse | None = None
        try:
            answer = await self._cluster.send(conn, request)
        except LogqError as exc:
            error = exc
        except Exception as exc:  # e.g. OSError: a write to a connection that just broke
            error = BrokerUnavailableError(f"{conn.address}: {exc!r}")
        finally:
            self._inflight_requests -= 1
        try:
            if error is not None:
                self._connection_failed(node, conn)
                for b in batches:
                    self._answered(b, error.code, error=error)
            elif answer is None:  # acks=0: no answer comes, nothing is known
                for b in batches:
                    self._answered(b, ErrorCode.NONE)
            else:
                results = {(t.name, r.index): r for t in answer.responses for r in t.partition_responses}
                for b in batches:
                    r = results.get((b.queue, b.partition))
                    if r is None:
                        missing = BrokerUnavailableError(
                            f"{conn.address} did not answer for {b.queue}/{b.partition}"
                        )
                        self._answered(b, missing.code, error=missing)
                    else:
                        self._answered(
                            b,
                            r.error_code,
                            base_offset=r.base_offset,
                            log_append_time=r.log_append_time_ms,
                            message=r.error_message,
                        )
        except Exception as exc:  # never leave the batches' futures hanging
            log.exception("handling a produce answer failed")
            failure = ClientError(f"handling the produce answer failed: {exc!r}")
            for b in batches:
                b.finish(-1, failure)
        finally:
            self._producer._wake()

    def _answered(
        self,
        b: ProducerBatch,
        code: int,
        *,
        base_offset: int = -1,
        log_append_time: int = -1,
        error: LogqError | None = None,
        message: str | None = None,
    ) -> None:
        p = b.part
        at_head = bool(p.inflight) and p.inflight[0] is b
        if b in p.inflight:
            p.inflight.remove(b)
        if b.done:
            pass
        elif code in (ErrorCode.NONE, ErrorCode.DUPLICATE_SEQUENCE_NUMBER):
            b.finish(base_offset, None, log_append_time)
        else:
            if error is None:
                error = error_for_code(code, message)
            if p.qs.dead is not None:
                b.finish(-1, p.qs.dead)
            elif code == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER and self.idempotent:
                if at_head and not p.failing and not self._reset_needed:
                    # The broker has a gap before this batch (records it acknowledged were lost).
                    self._fail(b, error)
                else:  # an earlier batch failed: this one goes again after it
                    self._retry(b, error)
            elif code in _RESET_AND_RETRY and self.idempotent:
                self._reset_needed = True
                self._retry(b, error)
            elif error.retriable:
                self._retry(b, error)
                if code in _STALE_METADATA:
                    self._request_refresh(p.qs, _monotonic())
            else:
                self._fail(b, error)
        if p.failing and not p.inflight:
            self._requeue(p)

    def _retry(self, b: ProducerBatch, error: LogqError) -> None:
        p = b.part
        b.attempts += 1
        b.last_error = error
        if self._retries is not None and b.attempts > self._retries:
            self._fail(b, error)
            return
        if _monotonic() >= b.deadline:
            self._expire(b, error)
            return
        p.retry.append(b)
        p.failing = True

    def _requeue(self, p: PartitionState) -> None:
        """Put the partition's failed batches back at the head of its queue, in their original order."""
        p.failing = False
        if not p.retry:
            return
        p.retry.sort(key=lambda b: b.number)
        attempts = min(b.attempts for b in p.retry)
        p.queue.extendleft(reversed(p.retry))
        p.retry = []
        p.backoff_until = _monotonic() + self._backoff(attempts)
        self._active[p] = None

    def _fail(self, b: ProducerBatch, error: LogqError) -> None:
        if self.idempotent and b.sequence >= 0:
            self._reset_needed = True  # its sequence numbers are a gap now: renumber what follows
        b.finish(-1, error)

    def _expire(self, b: ProducerBatch, last: LogqError | None = None) -> None:
        why = f" (last error: {last})" if last is not None else ""
        count = b.count or b.builder.count
        self._fail(
            b,
            ClientTimeoutError(
                f"{count} records of {b.queue}/{b.partition} were not delivered within "
                f"delivery_timeout_ms ({self._delivery_timeout_s * 1000:g}){why}"
            ),
        )

    def _expire_queued(self, now: float) -> None:
        for p in list(self._active):
            while p.queue and p.queue[0].deadline <= now:
                self._expire(p.queue.popleft())

    def _backoff(self, attempts: int) -> float:
        if self._backoff_s <= 0:
            return 0.0
        delay = min(self._backoff_s * 2.0 ** max(attempts - 1, 0), max(self._backoff_s, MAX_BACKOFF_S))
        return delay * random.uniform(0.8, 1.2)

    # --- connections and metadata (loop thread) ---------------------------------------------------------

    def _connection(self, node: int, now: float) -> BrokerConnection | None:
        conn = self._conns.get(node)
        if conn is not None and not conn.closed:
            return conn
        if node not in self._connecting and self._node_retry_at.get(node, 0.0) <= now:
            self._connecting.add(node)
            self._spawn(self._connect(node))
        return None

    async def _connect(self, node: int) -> None:
        try:
            self._conns[node] = await self._cluster.connection(node)
            self._node_failures.pop(node, None)
            self._node_retry_at.pop(node, None)
        except Exception as exc:  # LogqError, or OSError (TimeoutError of the ApiVersions exchange)
            failures = self._node_failures[node] = self._node_failures.get(node, 0) + 1
            self._node_retry_at[node] = _monotonic() + self._backoff(failures)
            log.info("cannot connect to broker %d: %s", node, exc)
            now = _monotonic()
            for qs in {p.qs for p in self._active if p.leader == node}:
                self._request_refresh(qs, now)
        finally:
            self._connecting.discard(node)
            self._producer._wake()

    def _connection_failed(self, node: int, conn: BrokerConnection) -> None:
        if self._conns.get(node) is conn:
            del self._conns[node]

    def _request_refresh(self, qs: QueueState, now: float) -> None:
        if not qs.refreshing and qs.refresh_after <= now and qs.dead is None:
            qs.refreshing = True
            self._spawn(self._refresh_queue(qs))

    async def _refresh_queue(self, qs: QueueState) -> None:
        try:
            info = await self._cluster.queue(qs.name, refresh=True)
        except UnknownQueueError as exc:
            self._kill_queue(qs, exc)
        except Exception as exc:
            log.info("metadata refresh of %s failed: %r", qs.name, exc)
            qs.refresh_after = _monotonic() + max(self._backoff_s, 0.05)
        else:
            qs.refresh_after = _monotonic() + max(self._backoff_s, 0.05)
            with self._producer._lock:
                for p in qs.parts:
                    if p.index < info.partition_count:
                        p.leader = info.partitions[p.index].leader
                if info.partition_count > qs.count:  # partitions were added: keys move
                    qs.parts += [
                        PartitionState(qs, p.partition, p.leader) for p in info.partitions[qs.count :]
                    ]
                    qs.count = len(qs.parts)
                    qs.placed = (qs.count, {})
        finally:
            qs.refreshing = False
            self._producer._wake()

    async def _fetch_new_queue(self, queue: str, pending: PendingRecords) -> None:
        """Learn a new queue's partitions, then route the records sent to it meanwhile."""
        producer = self._producer
        attempts = 0
        try:
            while True:
                try:
                    info = await self._cluster.queue(
                        queue, refresh=True, allow_auto_create=self._allow_auto_create
                    )
                except UnknownQueueError as exc:
                    error: LogqError = exc
                    break
                except Exception as exc:
                    if isinstance(exc, LogqError) and not exc.retriable:
                        error = exc
                        break
                    if not isinstance(exc, LogqError):
                        exc = BrokerUnavailableError(f"metadata of {queue!r}: {exc!r}")
                    attempts += 1
                    producer._expire_pending(queue, pending, exc)
                    await asyncio.sleep(self._backoff(attempts) or 0.05)
                    continue
                if info.partition_count == 0:
                    error = UnknownQueueError(f"queue {queue!r} has no partitions")
                    break
                producer._route_pending(queue, pending, QueueState(queue, info))
                return
            producer._fail_pending(queue, pending, error)
        finally:
            producer._wake()

    def _kill_queue(self, qs: QueueState, error: LogqError) -> None:
        """The queue is gone: fail everything sent to it."""
        qs.dead = error
        doomed = self._producer._drop_queue(qs)
        for p in qs.parts:
            doomed.extend(p.queue)
            doomed.extend(p.retry)
            p.queue.clear()
            p.retry = []
            p.failing = False
            self._active.pop(p, None)
        for b in doomed:
            b.finish(-1, error)

    async def _reset_producer_id(self) -> None:
        """Take a new producer id (nothing is in flight) and renumber every batch not yet acknowledged."""
        attempts = 0
        try:
            while True:
                try:
                    await self.init_producer_id()
                    break
                except Exception as exc:
                    attempts += 1
                    log.warning("InitProducerId failed (%r); retrying", exc)
                    await asyncio.sleep(self._backoff(attempts) or 0.05)
            log.info("new producer id %d after a failed idempotent batch", self.producer_id)
            for qs in list(self._producer._queues.values()):
                for p in qs.parts:
                    if p.failing or p.retry:
                        self._requeue(p)
                    sequence = 0
                    for b in p.queue:
                        if b.data is not None:
                            b.data = with_sequence(b.data, self.producer_id, self.producer_epoch, sequence)
                            b.sequence = sequence
                            sequence = (sequence + b.count) % SEQUENCE_WRAP
                    p.next_seq = sequence
            self._reset_needed = False
        finally:
            self._resetting = False
            self._producer._wake()
