"""logq's producer, asyncio-native: records are accumulated per partition into batches and sent in the
background; ``send`` returns a :class:`RecordFuture` at once.

How a record travels:

1. ``send`` (not a coroutine) picks the partition: the one given, murmur2 of the key exactly as Kafka's
   default partitioner, or, for keyless records, the queue's *sticky* partition (KIP-480: one partition
   until its batch is closed, then another one at random). It encodes the record straight into that
   partition's open :class:`~logq.client.records.BatchBuilder` (the compiled codec's ``append``, or with
   the pure-Python codec ``append`` inlined for the common case of one-byte-or-two varints; see
   :mod:`logq.client.records`) and returns a tiny future that refers to the batch's shared
   completion state and the record's offset delta. No other object outlives the call. Records sent to a
   queue whose partitions are not known yet wait (one completion each) until its metadata arrives; an
   unknown queue fails them with UnknownQueueError.
2. A batch is closed when the next record does not fit (``batch_size``), when it is ``linger_ms`` old, or
   by ``flush``/``close``, and handed to the sender.
3. The sender (:mod:`logq.client.producer_sender`, a task on the event loop) builds the batch, sends it
   with other ready batches for the same broker, completes it with the answer and retries it, in order,
   after retriable errors (see that module for sequences, retries and the epoch bump).

Around this module: :mod:`~logq.client.producer_futures` (the completion state and
:class:`RecordFuture`), :mod:`~logq.client.producer_batches` (per queue and per partition state, batches),
:mod:`~logq.client.producer_settings` (the settings: defaults, documentation, checks).

Threads: the producer runs on the event loop that awaited ``start()``. ``send`` may also be called from
other threads (that is what the synchronous :class:`logq.client.sync_producer.Producer` does); the state
shared with the loop is guarded by one lock, held only for the append of a record. Callbacks
(``on_delivery`` and ``RecordFuture.add_done_callback``) run on the producer's event loop thread, except
``add_done_callback`` on a future that is already done, which calls the function at once.

``buffer_memory`` bounds the bytes of unsent and unacknowledged batches (an open batch counts as
``batch_size``). When it is full, ``send`` raises :class:`BufferFullError` on the event loop thread
(``await producer.wait_for_room()`` first), and blocks in any other thread until there is room.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from logq import batch as rb
from logq.client.cluster import DEFAULT_BOOTSTRAP, Cluster
from logq.client.partitioner import partition_for_key
from logq.client.producer_batches import (
    PartitionState,
    PendingRecords,
    ProducerBatch,
    QueueState,
    Record,
    place_key,
)
from logq.client.producer_futures import Completion, DeliveryCallback, RecordFuture, set_done
from logq.client.producer_sender import Sender
from logq.client.producer_settings import CODECS, ProducerSettings
from logq.client.records import (
    CODEC,
    COMPILED_MODULE,
    PYTHON_CODEC,
    Headers,
    PythonBatchBuilder,
    encode_headers,
    new_batch_builder,
    varint,
)
from logq.client.security import security_of
from logq.client.settings import build_settings, takes_settings
from logq.errors import (
    BatchTooLargeError,
    BufferFullError,
    ClientError,
    ClientTimeoutError,
    LogqError,
    UnknownQueueError,
)

__all__ = ["BufferFullError", "DeliveryCallback", "Producer", "ProducerSettings", "RecordFuture"]

log = logging.getLogger(__name__)

_NO_HEADERS = b"\x00"
_COMPILED = CODEC is not PYTHON_CODEC  # send's fast path: the compiled append, or the Python one inlined
_SMALL = 1 << 14
_VARINT = tuple(varint(i) for i in range(_SMALL))  # the zigzag varints of 0..16383, for the fast path
_NULL = varint(-1)
_join = b"".join
_NOWHERE: Any = object()  # an explicit partition out of range: take the slow path, which fails it
_time_ns = time.time_ns


def _python_now_ms() -> int:
    return _time_ns() // 1_000_000


_now_ms: Callable[[], int] = _python_now_ms if COMPILED_MODULE is None else COMPILED_MODULE.now_ms
_monotonic = time.monotonic


@takes_settings(ProducerSettings, "Settings (keyword arguments; Kafka's producer configs of the same names):")
class Producer:
    """Sends records to logq queues. ``await start()`` (or ``async with``) before ``send``.

    ValueError for a bad setting value, TypeError for an unknown setting."""

    def __init__(self, bootstrap: str | Sequence[str] = DEFAULT_BOOTSTRAP, **settings: Any) -> None:
        config = build_settings(ProducerSettings, "Producer", settings)
        self.settings = config
        self.idempotent = config.idempotent
        self._linger_s = config.linger_ms / 1000
        self._batch_size = config.batch_size
        self._delivery_timeout_s = config.delivery_timeout_ms / 1000
        self._buffer_memory = config.buffer_memory
        self._max_request_size = config.max_request_size
        self._size_limit = min(config.batch_size, config.max_request_size - rb.HEADER_SIZE)
        self._allow_auto_create = config.allow_auto_create
        self._cluster = Cluster(
            bootstrap,
            client_id=config.client_id,
            request_timeout_s=config.request_timeout_ms / 1000,
            security=security_of(config),
        )

        # Shared with sending threads, guarded by _lock.
        self._lock = threading.Lock()
        self._queues: dict[str, QueueState] = {}  # queues with known partitions
        self._pending: dict[str, PendingRecords] = {}  # queues whose metadata is awaited
        self._open_parts: dict[PartitionState, None] = {}  # partitions with an open batch
        self._handoff: list[ProducerBatch] = []  # closed batches for the sender
        self._incomplete: dict[Completion, None] = {}
        self._used = 0  # bytes of buffer_memory in use
        self._room_event = threading.Event()
        self._room_futures: list[asyncio.Future[None]] = []
        self._wake_pending = False
        self._flushes = 0  # flush() calls in progress
        self._closed = False

        # Loop-thread state.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread_id = -1
        self._close_task: asyncio.Task[None] | None = None
        self._sender = Sender(
            self,
            self._cluster,
            idempotent=self.idempotent,
            acks=config.wire_acks,
            codec=CODECS[config.compression],
            retries=config.retries,
            backoff_s=config.retry_backoff_ms / 1000,
            delivery_timeout_s=self._delivery_timeout_s,
            request_timeout_ms=config.request_timeout_ms,
            metadata_max_age_s=config.metadata_max_age_ms / 1000,
            max_in_flight=config.max_in_flight,
            max_request_size=config.max_request_size,
            allow_auto_create=config.allow_auto_create,
        )

    # --- life cycle -------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect to the cluster and, for an idempotent producer, get a producer id (InitProducerId)."""
        if self._loop is not None:
            return
        if self._closed:
            raise ClientError("the producer is closed")
        try:
            await self._cluster.refresh([])  # connects and learns the brokers
            if self.idempotent:
                await self._sender.init_producer_id()
        except BaseException:
            await self._cluster.close()
            raise
        self._loop = asyncio.get_running_loop()
        self._loop_thread_id = threading.get_ident()
        self._sender.start(self._loop)

    async def __aenter__(self) -> Producer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def producer_id(self) -> int:
        """The idempotent producer id (-1 when not idempotent or not started)."""
        return self._sender.producer_id

    async def flush(self, timeout: float | None = None) -> None:  # noqa: ASYNC109 (the public API)
        """Send every buffered record now and wait until every record sent before this call is done
        (delivered or failed). ClientTimeoutError if that takes more than ``timeout`` seconds."""
        if self._loop is None:
            return
        with self._lock:
            waiting = list(self._incomplete)
            self._flushes += 1  # while a flush runs, batches go out without lingering (as Kafka's)
            self._wake_locked()
        try:
            futures = [c.loop_future() for c in waiting if not c.done]
            if not futures:
                return
            _done, pending = await asyncio.wait(futures, timeout=timeout)
            if pending:
                raise ClientTimeoutError(f"flush: {len(pending)} batches still undelivered after {timeout} s")
        finally:
            with self._lock:
                self._flushes -= 1

    async def close(self, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Flush (up to ``timeout`` seconds), then close the connections. Records still undelivered then
        fail with ClientError. Sending afterwards raises ClientError. Idempotent."""
        if self._close_task is None:
            self._close_task = asyncio.ensure_future(self._close(timeout))
        await asyncio.shield(self._close_task)

    async def _close(self, timeout: float | None) -> None:  # noqa: ASYNC109
        with self._lock:
            self._closed = True
            self._room_event.set()  # blocked senders see the producer closed
            futures, self._room_futures = self._room_futures, []
        for future in futures:
            if not future.done():
                future.set_result(None)
        if self._loop is None:
            await self._cluster.close()
            return
        try:
            try:
                await self.flush(timeout)
            except ClientTimeoutError:
                log.warning("closing the producer with records still undelivered after %s s", timeout)
        finally:
            await self._sender.stop()
            with self._lock:
                for p in list(self._open_parts):
                    p.open = None
                self._open_parts.clear()
                left = list(self._incomplete)
            closed = ClientError("the producer was closed before the record was delivered")
            for completion in left:
                completion.finish(-1, closed)
            await self._cluster.close()

    async def partitions_for(self, queue: str) -> int:
        """The number of partitions of ``queue`` (UnknownQueueError if there is no such queue)."""
        info = await self._cluster.queue(queue, allow_auto_create=self._allow_auto_create)
        return info.partition_count

    async def wait_for_room(self) -> None:
        """Return once ``buffer_memory`` has room for another batch (at once when it has)."""
        loop = asyncio.get_running_loop()
        while True:
            with self._lock:
                if self._used < self._buffer_memory or self._closed:
                    return
                future: asyncio.Future[None] = loop.create_future()
                self._room_futures.append(future)
            await future

    # --- sending ----------------------------------------------------------------------------------------

    def send(
        self,
        queue: str,
        value: bytes | None,
        key: bytes | None = None,
        *,
        headers: Headers | None = None,
        partition: int | None = None,
        timestamp: int | None = None,
        on_delivery: DeliveryCallback | None = None,
    ) -> RecordFuture:
        """Queue one record; returns at once. ``timestamp`` in ms since the epoch (default: now);
        ``on_delivery(err, metadata)`` is called once, on the producer's event loop thread."""
        if timestamp is None:
            # (inline with the pure-Python codec: a Python call costs more than it saves)
            timestamp = _now_ms() if _COMPILED else _time_ns() // 1_000_000
        encoded = _NO_HEADERS if headers is None else encode_headers(headers)
        qs = self._queues.get(queue)
        if qs is not None and not self._closed:
            # The fast path: the record fits into its partition's open batch.
            try:
                if partition is None:
                    if key is None:
                        p = None
                    elif type(key) is bytes:
                        count, placed = qs.placed
                        index = placed.get(key)
                        if index is None:
                            index = place_key(placed, key, count)
                        p = qs.parts[index]
                    else:
                        p = qs.parts[partition_for_key(key, qs.count)]
                elif 0 <= partition < qs.count:
                    p = qs.parts[partition]
                else:
                    p = _NOWHERE
                if p is not _NOWHERE:
                    lock = self._lock
                    lock.acquire()  # not `with`: its __enter__ and __exit__ calls cost twice as much
                    try:
                        b = (qs.sticky if p is None else p).open
                        if b is not None:
                            if _COMPILED:
                                delta = b.builder.append(key, value, encoded, timestamp)
                            else:
                                # The pure-Python BatchBuilder.append inlined for the common case (small
                                # varints), the same bytes: attributes, timestamp delta, offset delta, key,
                                # value, headers. (A Python call would cost as much as the encoding.)
                                bb: PythonBatchBuilder = b.builder  # type: ignore[assignment]
                                count = bb.count
                                ts_delta = timestamp - bb.base_timestamp
                                try:
                                    body = _join(
                                        (
                                            b"\x00",
                                            _VARINT[ts_delta if ts_delta >= 0 else _SMALL],
                                            _VARINT[count],
                                            _NULL if key is None else _VARINT[len(key)] + key,
                                            _VARINT[len(value)],  # type: ignore[arg-type]
                                            value,
                                            encoded,
                                        )
                                    )
                                    prefix = _VARINT[len(body)]
                                except (IndexError, TypeError):  # large, negative or None: the general path
                                    delta = bb.append(key, value, encoded, timestamp)
                                else:
                                    records = bb.records
                                    if count and len(records) + len(body) + 5 > bb.size_limit:
                                        delta = None
                                    else:
                                        records += prefix
                                        records += body
                                        bb.count = count + 1
                                        if timestamp > bb.max_timestamp:  # noqa: PLR1730 (no call: hot path)
                                            bb.max_timestamp = timestamp
                                        delta = count
                            if delta is not None:
                                if on_delivery is not None:
                                    if b.deliveries is None:
                                        b.deliveries = []
                                    b.deliveries.append((delta, timestamp, on_delivery))
                                return RecordFuture(b, delta, timestamp)
                    finally:
                        lock.release()
            except TypeError:
                _check_types(key, value, partition, timestamp)
                raise
        return self._send_slow(queue, (key, value, encoded, partition, timestamp), on_delivery)

    def _send_slow(self, queue: str, record: Record, on_delivery: DeliveryCallback | None) -> RecordFuture:
        key, value, _encoded, partition, timestamp = record
        _check_types(key, value, partition, timestamp)
        while True:
            if self._closed:
                raise ClientError("the producer is closed")
            if self._loop is None:
                raise ClientError("the producer is not started: await Producer.start() first")
            with self._lock:
                qs = self._queues.get(queue)
                if qs is None:
                    result = self._add_pending_locked(queue, record)
                else:
                    result = self._append_locked(qs, record, limit=True)
                if result is not None:
                    completion, delta = result
                    if on_delivery is not None:
                        if completion.done:  # failed at once: still called on the loop thread
                            self._call_in_loop(on_delivery, completion.error, None)
                        else:
                            if completion.deliveries is None:
                                completion.deliveries = []
                            completion.deliveries.append((delta, timestamp, on_delivery))
                    return RecordFuture(completion, delta, timestamp)
                # buffer_memory is full
                if threading.get_ident() == self._loop_thread_id:
                    raise BufferFullError(
                        f"buffer_memory ({self._buffer_memory} bytes) is full: await wait_for_room()"
                    )
                self._room_event.clear()
            self._room_event.wait(0.5)

    def _append_locked(self, qs: QueueState, record: Record, *, limit: bool) -> tuple[Completion, int] | None:
        """Append a record to its partition's batch, opening one if needed. None if the buffer is full
        (only when ``limit``); a completion that failed already for a record that cannot be sent."""
        key, value, encoded, partition, timestamp = record
        error: LogqError
        if partition is None:
            p = qs.sticky if key is None else qs.parts[partition_for_key(key, qs.count)]
        elif 0 <= partition < qs.count:
            p = qs.parts[partition]
        else:
            error = UnknownQueueError(f"queue {qs.name!r} has no partition {partition}")
            return Completion.failed(self, qs.name, partition, error), 0
        b = p.open
        if b is not None:
            delta = b.builder.append(key, value, encoded, timestamp)
            if delta is not None:
                return b, delta
            self._close_locked(p)
            if key is None and partition is None:
                p = qs.sticky
                b = p.open
                if b is not None:
                    delta = b.builder.append(key, value, encoded, timestamp)
                    if delta is not None:
                        return b, delta
                    self._close_locked(p)
        builder = new_batch_builder(timestamp, self._size_limit)
        builder.append(key, value, encoded, timestamp)
        if builder.size > self._max_request_size:
            error = BatchTooLargeError(
                f"the record is {builder.size - rb.HEADER_SIZE} bytes encoded, more than max_request_size "
                f"({self._max_request_size}) allows"
            )
            return Completion.failed(self, qs.name, p.index, error), 0
        if limit and self._used >= self._buffer_memory:
            return None
        reserve = max(self._batch_size, builder.size)
        b = ProducerBatch(self, p, builder, _monotonic())
        b.reserved = reserve
        self._used += reserve
        p.open = b
        self._open_parts[p] = None
        self._incomplete[b] = None
        self._wake_locked()  # to close it after linger_ms
        return b, 0

    def _add_pending_locked(self, queue: str, record: Record) -> tuple[Completion, int] | None:
        key, value, encoded, partition, _timestamp = record
        if self._used >= self._buffer_memory:
            return None
        size = len(value or b"") + len(key or b"") + len(encoded) + 32
        pending = self._pending.get(queue)
        if pending is None:
            pending = self._pending[queue] = PendingRecords()
            self._wake_locked()  # to fetch the queue's metadata
        completion = Completion(self, queue, -1 if partition is None else partition)
        completion.reserved = size
        self._used += size
        self._incomplete[completion] = None
        pending.records.append((record, completion, _monotonic()))
        return completion, 0

    def _close_locked(self, p: PartitionState) -> None:
        """Close the partition's open batch and hand it to the sender."""
        b = p.open
        assert b is not None
        p.open = None
        del self._open_parts[p]
        self._handoff.append(b)
        size = b.builder.size
        if size < b.reserved:
            self._used -= b.reserved - size
            b.reserved = size
            self._room_locked()
        qs = p.qs
        if qs.sticky is p and qs.count > 1:
            index = random.randrange(qs.count - 1)
            qs.sticky = qs.parts[index + 1 if index >= p.index else index]
        self._wake_locked()

    def _room_locked(self) -> None:
        if self._used < self._buffer_memory:
            if not self._room_event.is_set():
                self._room_event.set()
            if self._room_futures:
                futures, self._room_futures = self._room_futures, []
                for future in futures:
                    self._call_in_loop(set_done, future)

    def _call_in_loop(self, fn: Callable[..., object], *args: object) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            if threading.get_ident() == self._loop_thread_id:
                loop.call_soon(fn, *args)
            else:
                loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop closed meanwhile: the producer is closed, nothing waits
            pass

    def _wake_locked(self) -> None:
        """Make the sender run another pass (from any thread; under the lock)."""
        if not self._wake_pending:
            self._wake_pending = True
            if threading.get_ident() == self._loop_thread_id:
                self._sender.wake()
            else:
                self._call_in_loop(self._sender.wake)

    def _wake(self) -> None:
        with self._lock:
            self._wake_locked()

    # --- for the sender (loop thread) -------------------------------------------------------------------

    def _drain(self, now: float) -> tuple[list[ProducerBatch], list[tuple[str, PendingRecords]], float]:
        """Close the open batches that lingered ``linger_ms`` (every one while a flush runs), then take the
        closed batches and the queues whose metadata is to be fetched. Also returns when the next open
        batch is due (inf if none is open)."""
        next_at = float("inf")
        with self._lock:
            flush_all = self._flushes > 0
            linger = self._linger_s
            for p in list(self._open_parts):
                b = p.open
                assert b is not None
                due = b.created + linger
                if flush_all or due <= now:
                    self._close_locked(p)
                else:
                    next_at = min(next_at, due)
            handoff, self._handoff = self._handoff, []
            fetch = [(q, pend) for q, pend in self._pending.items() if not pend.fetching]
            for _queue, pend in fetch:
                pend.fetching = True
        return handoff, fetch, next_at

    def _route_pending(self, queue: str, pending: PendingRecords, qs: QueueState) -> None:
        """Append the records that waited for the queue's metadata to their partitions' batches."""
        failed = []
        with self._lock:
            existing = self._queues.get(queue)
            if existing is None:
                self._queues[queue] = qs
            else:
                qs = existing
            if self._pending.get(queue) is pending:
                del self._pending[queue]
            for record, completion, _sent_at in pending.records:
                self._used -= completion.reserved
                completion.reserved = 0
                result = self._append_locked(qs, record, limit=False)
                assert result is not None
                target, delta = result
                if target.done:
                    failed.append((completion, target.error))
                    continue
                assert isinstance(target, ProducerBatch)
                completion.partition = target.partition
                if target.linked is None:
                    target.linked = []
                target.linked.append((delta, completion))
            pending.records = []
            self._room_locked()
        for completion, error in failed:
            completion.finish(-1, error)

    def _expire_pending(self, queue: str, pending: PendingRecords, last: LogqError) -> None:
        """Fail the records that waited for the queue's metadata longer than delivery_timeout_ms."""
        oldest = _monotonic() - self._delivery_timeout_s
        with self._lock:
            expired = [r for r in pending.records if r[2] <= oldest]
            if not expired:
                return
            pending.records = [r for r in pending.records if r[2] > oldest]
        for _record, completion, _sent_at in expired:
            completion.finish(
                -1,
                ClientTimeoutError(
                    f"no metadata for queue {queue!r} within delivery_timeout_ms (last error: {last})"
                ),
            )

    def _fail_pending(self, queue: str, pending: PendingRecords, error: LogqError) -> None:
        """Fail every record that waited for the queue's metadata."""
        with self._lock:
            if self._pending.get(queue) is pending:
                del self._pending[queue]
            records, pending.records = pending.records, []
        for _record, completion, _sent_at in records:
            completion.finish(-1, error)

    def _drop_queue(self, qs: QueueState) -> list[ProducerBatch]:
        """Forget a queue that is gone; returns the open batches taken from its partitions."""
        doomed: list[ProducerBatch] = []
        with self._lock:
            if self._queues.get(qs.name) is qs:
                del self._queues[qs.name]
            for p in qs.parts:
                if p.open is not None:
                    doomed.append(p.open)
                    p.open = None
                    self._open_parts.pop(p, None)
        return doomed


def _check_types(key: object, value: object, partition: object, timestamp: object) -> None:
    for name, item in (("key", key), ("value", value)):
        if item is not None and not isinstance(item, bytes | bytearray | memoryview):
            raise TypeError(f"{name} must be bytes or None, not {type(item).__name__}")
    for name, item in (("partition", partition), ("timestamp", timestamp)):
        if item is not None and (isinstance(item, bool) or not isinstance(item, int)):
            raise TypeError(f"{name} must be an int or None, not {type(item).__name__}")
