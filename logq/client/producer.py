"""logq's producer, asyncio-native: records are accumulated per partition into batches and sent in the
background; ``send`` returns a :class:`RecordFuture` at once.

How a record travels:

1. ``send`` (not a coroutine) picks the partition: the one given, murmur2 of the key exactly as Kafka's
   default partitioner, or, for keyless records, the queue's *sticky* partition (KIP-480: one partition
   until its batch is closed, then another one at random). It encodes the record straight into that
   partition's open :class:`~logq.client.records.BatchBuilder` (``BatchBuilder.append`` inlined for the
   common case of one-byte-or-two varints) and returns a tiny future that refers to the batch's shared
   completion state and the record's offset delta. No other object outlives the call. Records sent to a
   queue whose partitions are not known yet wait (one completion each) until its metadata arrives; an
   unknown queue fails them with UnknownQueueError.
2. A batch is closed when the next record does not fit (``batch_size``), when it is ``linger_ms`` old, or
   by ``flush``/``close``. The sender task (on the event loop) then builds it: compressed (zstd by
   default), CRC-ed and, for an idempotent producer, given the partition's next sequence numbers.
3. The sender combines ready batches of partitions led by the same broker into one ProduceRequest (one
   batch per partition per request, at most ``max_request_size`` bytes), with at most ``max_in_flight``
   requests in flight per partition. Answers complete whole batches: every future and ``on_delivery``
   callback of the batch at once.
4. Retriable errors (lost connection, NOT_LEADER_OR_FOLLOWER, UNKNOWN_TOPIC_OR_PARTITION, timeouts...)
   refresh metadata and retry the batch, with exponential backoff from ``retry_backoff_ms`` (at most 1 s),
   until ``retries`` or ``delivery_timeout_ms`` runs out. Order within a partition survives retries: a
   partition sends nothing new while one of its batches is failing, and failed batches go out again in
   their original order, with the same bytes and sequence numbers, once its other in-flight requests are
   answered. So the broker sees a retried batch of an idempotent producer as a duplicate (answered with
   the original offsets) or as the next one. Should a batch that carried sequence numbers fail for good,
   the producer takes a new producer id (epoch bump, as Kafka's KIP-360) before it sends anything else
   and renumbers the batches it still holds.

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
import collections
import logging
import random
import threading
import time
from collections.abc import Callable, Generator, Sequence
from typing import Any

from logq import batch as rb
from logq.client.cluster import Cluster, QueueInfo
from logq.client.connection import BrokerConnection
from logq.client.partitioner import partition_for_key
from logq.client.records import BatchBuilder, Headers, RecordMetadata, encode_headers, varint, with_sequence
from logq.error_codes import ErrorCode
from logq.errors import (
    BatchTooLargeError,
    BrokerUnavailableError,
    ClientError,
    ClientTimeoutError,
    LogqError,
    UnknownQueueError,
    error_for_code,
)
from logq.protocol import messages as m

__all__ = ["BufferFullError", "DeliveryCallback", "Producer", "RecordFuture"]

log = logging.getLogger(__name__)

DeliveryCallback = Callable[[LogqError | None, RecordMetadata | None], object]
DoneCallback = Callable[["RecordFuture"], object]

CODECS = {"none": rb.CODEC_NONE, "gzip": rb.CODEC_GZIP, "zstd": rb.CODEC_ZSTD}
ACKS = {0: 0, 1: 1, -1: -1, "all": -1, "0": 0, "1": 1, "-1": -1}
MAX_IDEMPOTENT_IN_FLIGHT = 5  # the broker remembers the last 5 batches of each producer (protocol.md §5)
MIN_REQUEST_SIZE = 128
PLACED_KEYS = 16384  # the partitions of this many recent keys are remembered per queue
MAX_BACKOFF_S = 1.0
SEQUENCE_WRAP = 1 << 31
_NO_HEADERS = b"\x00"
_SMALL = 1 << 14
_VARINT = tuple(varint(i) for i in range(_SMALL))  # the zigzag varints of 0..16383, for the fast path
_NULL = varint(-1)
_join = b"".join
_NOWHERE: Any = object()  # an explicit partition out of range: take the slow path, which fails it
_time_ns = time.time_ns
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


class BufferFullError(ClientError, BufferError):
    """``buffer_memory`` is full: on the event loop, ``await producer.wait_for_room()`` before sending."""


# --- completion state shared by the records of a batch ---------------------------------------------------


class _Completion:
    """The outcome of a group of records (a batch, or one record sent before its queue's metadata was
    known); every RecordFuture of the group refers to it."""

    __slots__ = (
        "_aio",
        "_callbacks",
        "_event",
        "_owner",
        "base_offset",
        "deliveries",
        "done",
        "error",
        "log_append_time",
        "partition",
        "queue",
        "reserved",
    )

    def __init__(self, owner: Producer, queue: str, partition: int) -> None:
        self._owner = owner
        self.queue = queue
        self.partition = partition
        self.done = False
        self.error: LogqError | None = None
        self.base_offset = -1
        self.log_append_time = -1
        self.reserved = 0  # bytes of buffer_memory held until done
        self._event = threading.Event()
        self._aio: asyncio.Future[None] | None = None
        self._callbacks: list[tuple[DoneCallback, RecordFuture]] | None = None
        # on_delivery callbacks: (offset delta, record timestamp, callback)
        self.deliveries: list[tuple[int, int, DeliveryCallback]] | None = None

    def _finish(self, base_offset: int, error: LogqError | None, log_append_time: int = -1) -> None:
        """Complete the group: wake waiters, call callbacks (in this thread: the loop's). Idempotent."""
        owner = self._owner
        with owner._lock:
            if self.done:
                return
            self.base_offset = base_offset if error is None else -1
            self.error = error
            self.log_append_time = log_append_time
            self.done = True  # last: other threads read the fields above once they see it
            callbacks, self._callbacks = self._callbacks, None
            owner._incomplete.pop(self, None)
            if self.reserved:
                owner._used -= self.reserved
                self.reserved = 0
                owner._room_locked()
            self._release_locked()
        self._event.set()
        aio = self._aio
        if aio is not None and not aio.done():
            aio.set_result(None)
        deliveries, self.deliveries = self.deliveries, None
        if deliveries:
            queue, partition = self.queue, self.partition
            for delta, timestamp, callback in deliveries:
                metadata = None
                if error is None:
                    offset = base_offset + delta if base_offset >= 0 else -1
                    ts = log_append_time if log_append_time >= 0 else timestamp
                    metadata = RecordMetadata(queue, partition, offset, ts)
                try:
                    callback(error, metadata)
                except Exception:
                    log.exception("an on_delivery callback raised")
        if callbacks:
            for fn, future in callbacks:
                try:
                    fn(future)
                except Exception:
                    log.exception("a RecordFuture done callback raised")

    def _release_locked(self) -> None:
        """Drop what is no longer needed once done (a batch's bytes)."""

    def _wait(self, timeout: float | None) -> None:
        if self.done:
            return
        owner = self._owner
        if owner._loop_thread_id == threading.get_ident():
            raise RuntimeError(
                "RecordFuture.result() would block the producer's event loop: await the future instead"
            )
        if not self._event.wait(timeout):
            raise ClientTimeoutError(f"the record was not delivered within {timeout} s (it may still be)")

    def _loop_future(self) -> asyncio.Future[None]:
        """An asyncio future done with this group; only on the producer's loop."""
        aio = self._aio
        if aio is None:
            loop = self._owner._loop
            if loop is None or asyncio.get_running_loop() is not loop:
                raise RuntimeError("await a RecordFuture in the event loop that runs its producer")
            aio = self._aio = loop.create_future()
            if self.done:
                aio.set_result(None)
        return aio


class _Batch(_Completion):
    __slots__ = (
        "attempts",
        "builder",
        "count",
        "created",
        "data",
        "deadline",
        "linked",
        "number",
        "part",
        "sequence",
    )

    def __init__(self, owner: Producer, part: _Part, builder: BatchBuilder, now: float) -> None:
        super().__init__(owner, part.qs.name, part.index)
        self.part = part
        self.builder = builder  # _SPENT once built
        self.created = now
        self.deadline = now + owner._delivery_timeout_s
        self.data: bytes | None = None  # the built RecordBatch, once closed and drained
        self.count = 0
        self.sequence = -1
        self.attempts = 0
        self.number = 0  # send order, to put retried batches back in order
        # records sent before their queue's metadata was known: (offset delta, their completion)
        self.linked: list[tuple[int, _Completion]] | None = None

    def _release_locked(self) -> None:
        self.builder = _SPENT
        self.data = None

    def _finish(self, base_offset: int, error: LogqError | None, log_append_time: int = -1) -> None:
        super()._finish(base_offset, error, log_append_time)
        linked, self.linked = self.linked, None
        if linked:
            for delta, completion in linked:
                offset = base_offset + delta if base_offset >= 0 and error is None else -1
                completion._finish(offset, error, log_append_time)


_SPENT = BatchBuilder(0, 0)  # the builder of a batch that was built


class RecordFuture:
    """The outcome of one sent record. Cheap: a reference to its batch's completion and its offset delta.

    ``result()`` blocks (in any thread but the producer's loop thread); ``await future`` works in the loop
    that runs the producer."""

    __slots__ = ("_c", "_delta", "_ts")

    def __init__(self, completion: _Completion, delta: int, timestamp: int) -> None:
        self._c = completion
        self._delta = delta
        self._ts = timestamp

    def done(self) -> bool:
        return self._c.done

    def result(self, timeout: float | None = None) -> RecordMetadata:
        """Where the record was stored; raises the LogqError that failed it, or ClientTimeoutError if
        not done within ``timeout`` seconds. With acks=0 the offset is -1."""
        c = self._c
        if not c.done:
            c._wait(timeout)
        if c.error is not None:
            raise c.error
        return self._metadata()

    def _metadata(self) -> RecordMetadata:
        c = self._c
        offset = c.base_offset + self._delta if c.base_offset >= 0 else -1
        ts = c.log_append_time if c.log_append_time >= 0 else self._ts
        return RecordMetadata(c.queue, c.partition, offset, ts)

    def exception(self, timeout: float | None = None) -> BaseException | None:
        c = self._c
        if not c.done:
            c._wait(timeout)
        return c.error

    def add_done_callback(self, fn: DoneCallback) -> None:
        """Call ``fn(future)`` when done: on the producer's loop thread, or at once if already done."""
        c = self._c
        with c._owner._lock:
            if not c.done:
                if c._callbacks is None:
                    c._callbacks = []
                c._callbacks.append((fn, self))
                return
        fn(self)

    def __await__(self) -> Generator[Any, None, RecordMetadata]:
        c = self._c
        if not c.done:
            yield from c._loop_future().__await__()
        return self.result()

    def __repr__(self) -> str:
        c = self._c
        state = "pending" if not c.done else ("failed" if c.error is not None else "done")
        return f"<RecordFuture {c.queue}/{c.partition} {state}>"


# --- per queue and per partition state --------------------------------------------------------------------


class _Part:
    __slots__ = (
        "backoff_until",
        "failing",
        "index",
        "inflight",
        "leader",
        "next_seq",
        "open",
        "qs",
        "queue",
        "retry",
    )

    def __init__(self, qs: _QueueState, index: int, leader: int) -> None:
        self.qs = qs
        self.index = index
        self.leader = leader
        self.open: _Batch | None = None  # guarded by the producer's lock
        # The rest is only touched on the loop thread.
        self.queue: collections.deque[_Batch] = collections.deque()  # closed, waiting to be sent
        self.inflight: collections.deque[_Batch] = collections.deque()  # in send order
        self.retry: list[_Batch] = []  # failed retriably, to go out again once inflight is empty
        self.failing = False
        self.backoff_until = 0.0
        self.next_seq = 0


class _QueueState:
    __slots__ = ("count", "dead", "name", "parts", "placed", "refresh_after", "refreshing", "sticky")

    def __init__(self, name: str, info: QueueInfo) -> None:
        self.name = name
        self.parts = [_Part(self, p.partition, p.leader) for p in info.partitions]
        self.count = len(self.parts)
        self.sticky = self.parts[random.randrange(self.count)]
        self.dead: LogqError | None = None
        self.refreshing = False
        self.refresh_after = 0.0
        # The partitions of recent keys (murmur2 in Python costs ~1.5 us, a dict lookup ~50 ns), with the
        # partition count they are for: replaced as a whole when partitions are added.
        self.placed: tuple[int, dict[bytes, int]] = (self.count, {})


_Record = tuple[bytes | None, bytes | None, bytes, int | None, int]  # key, value, headers, partition, ts


class _Pending:
    """Records of a queue whose metadata is being fetched: routed to partitions once it arrives."""

    __slots__ = ("fetching", "records")

    def __init__(self) -> None:
        self.records: list[tuple[_Record, _Completion, float]] = []  # (record, its completion, sent at)
        self.fetching = False


# --- settings ---------------------------------------------------------------------------------------------


def _number(name: str, value: object, low: float, *, integer: bool = True) -> None:
    kinds: tuple[type, ...] = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or value < low:  # type: ignore[operator]
        kind = "an integer" if integer else "a number"
        raise ValueError(f"{name} must be {kind} >= {low:g}, not {value!r}")


def _parse_acks(acks: object) -> int:
    if isinstance(acks, bool) or not isinstance(acks, int | str) or acks not in ACKS:
        raise ValueError(f"acks must be 0, 1, -1 or 'all', not {acks!r}")
    return ACKS[acks]


class Producer:
    """Sends records to logq queues. ``await start()`` (or ``async with``) before ``send``.

    Settings follow Kafka's producer configs of the same names (``linger_ms`` = linger.ms ...)."""

    def __init__(
        self,
        bootstrap: str | Sequence[str] = "127.0.0.1:9092",
        *,
        acks: int | str = "all",
        linger_ms: float = 5,
        batch_size: int = 131072,
        compression: str = "zstd",
        enable_idempotence: bool | None = None,
        retries: int | None = None,
        retry_backoff_ms: int = 100,
        delivery_timeout_ms: int = 120_000,
        request_timeout_ms: int = 30_000,
        max_in_flight: int = 5,
        buffer_memory: int = 64 << 20,
        max_request_size: int = 1 << 20,
        client_id: str = "logq-producer",
        allow_auto_create: bool = False,
    ) -> None:
        self._acks = _parse_acks(acks)
        _number("linger_ms", linger_ms, 0, integer=False)
        _number("batch_size", batch_size, 1)
        if compression not in CODECS:
            raise ValueError(f"compression must be one of {', '.join(CODECS)}, not {compression!r}")
        if enable_idempotence is not None and not isinstance(enable_idempotence, bool):
            raise ValueError(f"enable_idempotence must be True, False or None, not {enable_idempotence!r}")
        if retries is not None:
            _number("retries", retries, 0)
        _number("retry_backoff_ms", retry_backoff_ms, 0)
        _number("request_timeout_ms", request_timeout_ms, 1)
        _number("delivery_timeout_ms", delivery_timeout_ms, 1)
        _number("max_in_flight", max_in_flight, 1)
        _number("buffer_memory", buffer_memory, 1)
        _number("max_request_size", max_request_size, MIN_REQUEST_SIZE)
        if delivery_timeout_ms < linger_ms + request_timeout_ms:
            raise ValueError(
                f"delivery_timeout_ms ({delivery_timeout_ms}) must be at least linger_ms + "
                f"request_timeout_ms ({linger_ms:g} + {request_timeout_ms})"
            )
        if not isinstance(client_id, str) or not client_id:
            raise ValueError(f"client_id must be a non-empty string, not {client_id!r}")
        if not isinstance(allow_auto_create, bool):
            raise ValueError(f"allow_auto_create must be True or False, not {allow_auto_create!r}")
        if enable_idempotence:
            if self._acks != -1:
                raise ValueError(f"enable_idempotence=True needs acks='all', not acks={acks!r}")
            if max_in_flight > MAX_IDEMPOTENT_IN_FLIGHT:
                raise ValueError(
                    f"enable_idempotence=True needs max_in_flight <= {MAX_IDEMPOTENT_IN_FLIGHT}, "
                    f"not {max_in_flight}"
                )
            if retries == 0:
                raise ValueError("enable_idempotence=True needs retries > 0")
        elif enable_idempotence is None:
            # On by default, off when other settings conflict with it (as Kafka 3 does).
            enable_idempotence = (
                self._acks == -1 and max_in_flight <= MAX_IDEMPOTENT_IN_FLIGHT and retries != 0
            )
        self.idempotent = enable_idempotence
        self._linger_s = linger_ms / 1000
        self._batch_size = batch_size
        self._codec = CODECS[compression]
        self._retries = retries
        self._backoff_s = retry_backoff_ms / 1000
        self._delivery_timeout_s = delivery_timeout_ms / 1000
        self._request_timeout_ms = request_timeout_ms
        self._max_in_flight = max_in_flight
        self._buffer_memory = buffer_memory
        self._max_request_size = max_request_size
        self._size_limit = min(batch_size, max_request_size - rb.HEADER_SIZE)
        self._allow_auto_create = allow_auto_create
        self._cluster = Cluster(bootstrap, client_id=client_id, request_timeout_s=request_timeout_ms / 1000)

        # Shared with sending threads, guarded by _lock.
        self._lock = threading.Lock()
        self._queues: dict[str, _QueueState] = {}  # queues with known partitions
        self._pending: dict[str, _Pending] = {}  # queues whose metadata is awaited
        self._open_parts: dict[_Part, None] = {}  # partitions with an open batch
        self._handoff: list[_Batch] = []  # closed batches for the sender
        self._incomplete: dict[_Completion, None] = {}
        self._used = 0  # bytes of buffer_memory in use
        self._room_event = threading.Event()
        self._room_futures: list[asyncio.Future[None]] = []
        self._wake_pending = False
        self._flushes = 0  # flush() calls in progress
        self._closed = False

        # Loop-thread state.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread_id = -1
        self._waiter: asyncio.Future[None] | None = None
        self._sender_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._active: dict[_Part, None] = {}  # partitions with batches queued
        self._conns: dict[int, BrokerConnection] = {}
        self._connecting: set[int] = set()
        self._node_failures: dict[int, int] = {}
        self._node_retry_at: dict[int, float] = {}
        self._inflight_requests = 0
        self._batch_number = 0
        self._producer_id = rb.NO_PRODUCER_ID
        self._producer_epoch = -1
        self._reset_needed = False
        self._resetting = False
        self._close_task: asyncio.Task[None] | None = None

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
                await self._init_producer_id()
        except BaseException:
            await self._cluster.close()
            raise
        self._loop = asyncio.get_running_loop()
        self._loop_thread_id = threading.get_ident()
        self._sender_task = self._loop.create_task(self._sender(), name="logq-producer-sender")

    async def __aenter__(self) -> Producer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _init_producer_id(self) -> None:
        conn = await self._cluster.any_connection()
        answer: m.InitProducerIdResponse = await self._cluster.send(
            conn, m.InitProducerIdRequest(transactional_id=None, transaction_timeout_ms=-1)
        )
        if answer.error_code != ErrorCode.NONE:
            raise error_for_code(answer.error_code, "InitProducerId failed")
        self._producer_id = answer.producer_id
        self._producer_epoch = answer.producer_epoch

    @property
    def producer_id(self) -> int:
        """The idempotent producer id (-1 when not idempotent or not started)."""
        return self._producer_id

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
            futures = [c._loop_future() for c in waiting if not c.done]
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
            tasks = [t for t in (self._sender_task, *self._tasks) if t is not None]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            with self._lock:
                for p in list(self._open_parts):
                    p.open = None
                self._open_parts.clear()
                left = list(self._incomplete)
            closed = ClientError("the producer was closed before the record was delivered")
            for completion in left:
                completion._finish(-1, closed)
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
            timestamp = _time_ns() // 1_000_000
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
                            index = _place(placed, key, count)
                        p = qs.parts[index]
                    else:
                        p = qs.parts[partition_for_key(key, qs.count)]
                elif 0 <= partition < qs.count:
                    p = qs.parts[partition]
                else:
                    p = _NOWHERE
                if p is not _NOWHERE:
                    with self._lock:
                        b = (qs.sticky if p is None else p).open
                        if b is not None:
                            # BatchBuilder.append inlined for the common case (small varints), the same
                            # bytes: attributes, timestamp delta, offset delta, key, value, headers.
                            bb = b.builder
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
            except TypeError:
                _check_types(key, value, partition, timestamp)
                raise
        return self._send_slow(queue, (key, value, encoded, partition, timestamp), on_delivery)

    def _send_slow(self, queue: str, record: _Record, on_delivery: DeliveryCallback | None) -> RecordFuture:
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

    def _append_locked(
        self, qs: _QueueState, record: _Record, *, limit: bool
    ) -> tuple[_Completion, int] | None:
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
            return self._failed(qs.name, partition, error), 0
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
        builder = BatchBuilder(timestamp, self._size_limit)
        builder.append(key, value, encoded, timestamp)
        if builder.size > self._max_request_size:
            error = BatchTooLargeError(
                f"the record is {builder.size - rb.HEADER_SIZE} bytes encoded, more than max_request_size "
                f"({self._max_request_size}) allows"
            )
            return self._failed(qs.name, p.index, error), 0
        if limit and self._used >= self._buffer_memory:
            return None
        reserve = max(self._batch_size, builder.size)
        b = _Batch(self, p, builder, _monotonic())
        b.reserved = reserve
        self._used += reserve
        p.open = b
        self._open_parts[p] = None
        self._incomplete[b] = None
        self._wake_locked()  # to close it after linger_ms
        return b, 0

    def _failed(self, queue: str, partition: int, error: LogqError) -> _Completion:
        completion = _Completion(self, queue, partition)
        completion.error = error
        completion.done = True
        completion._event.set()
        return completion

    def _add_pending_locked(self, queue: str, record: _Record) -> tuple[_Completion, int] | None:
        key, value, encoded, partition, _timestamp = record
        if self._used >= self._buffer_memory:
            return None
        size = len(value or b"") + len(key or b"") + len(encoded) + 32
        pending = self._pending.get(queue)
        if pending is None:
            pending = self._pending[queue] = _Pending()
            self._wake_locked()  # to fetch the queue's metadata
        completion = _Completion(self, queue, -1 if partition is None else partition)
        completion.reserved = size
        self._used += size
        self._incomplete[completion] = None
        pending.records.append((record, completion, _monotonic()))
        return completion, 0

    def _close_locked(self, p: _Part) -> None:
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
                    self._call_in_loop(_set_done, future)

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
                self._on_wake()
            else:
                self._call_in_loop(self._on_wake)

    def _on_wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _wake(self) -> None:
        with self._lock:
            self._wake_locked()

    # --- the sender (loop thread) -----------------------------------------------------------------------

    async def _sender(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            with self._lock:
                self._wake_pending = False
            try:
                next_at = self._run_once()
            except Exception:  # a bug must not leave every future hanging: log it and carry on
                log.exception("the producer's sender failed; retrying")
                next_at = _monotonic() + max(self._backoff_s, 0.1)
            with self._lock:
                if self._wake_pending:  # woken while running: another pass
                    waiter = None
                else:
                    waiter = self._waiter = loop.create_future()
            if waiter is None:
                await asyncio.sleep(0)
                continue
            handle = None
            if next_at is not None:
                handle = loop.call_later(max(next_at - _monotonic(), 0.0), _set_done, waiter)
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
        for name, pend in fetch:
            self._spawn(self._fetch_new_queue(name, pend))
        for b in handoff:
            p = b.part
            if p.qs.dead is not None:
                b._finish(-1, p.qs.dead)
                continue
            p.queue.append(b)
            self._active[p] = None

        if self._reset_needed:
            if self._inflight_requests == 0 and not self._resetting:
                self._resetting = True
                self._spawn(self._reset_producer_id())
            self._expire_queued(now)
            return min(next_at, now + 0.1)

        requests: dict[int, tuple[BrokerConnection, list[_Batch], int]] = {}
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
                    self._expire(head)
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

    def _build(self, b: _Batch) -> None:
        builder = b.builder
        p = b.part
        sequence = rb.NO_SEQUENCE
        if self.idempotent:
            sequence = p.next_seq
            p.next_seq = (sequence + builder.count) % SEQUENCE_WRAP
        b.sequence = sequence
        b.count = builder.count
        b.data = builder.build(self._codec, self._producer_id, self._producer_epoch, sequence)
        b.builder = _SPENT
        self._batch_number += 1
        b.number = self._batch_number

    def _launch(self, node: int, conn: BrokerConnection, batches: list[_Batch]) -> None:
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
        self, node: int, conn: BrokerConnection, request: m.ProduceRequest, batches: list[_Batch]
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
                b._finish(-1, failure)
        finally:
            self._wake()

    def _answered(
        self,
        b: _Batch,
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
            b._finish(base_offset, None, log_append_time)
        else:
            if error is None:
                error = error_for_code(code, message)
            if p.qs.dead is not None:
                b._finish(-1, p.qs.dead)
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

    def _retry(self, b: _Batch, error: LogqError) -> None:
        p = b.part
        b.attempts += 1
        if self._retries is not None and b.attempts > self._retries:
            self._fail(b, error)
            return
        if _monotonic() >= b.deadline:
            self._expire(b, error)
            return
        p.retry.append(b)
        p.failing = True

    def _requeue(self, p: _Part) -> None:
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

    def _fail(self, b: _Batch, error: LogqError) -> None:
        if self.idempotent and b.sequence >= 0:
            self._reset_needed = True  # its sequence numbers are a gap now: renumber what follows
        b._finish(-1, error)

    def _expire(self, b: _Batch, last: LogqError | None = None) -> None:
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
            self._wake()

    def _connection_failed(self, node: int, conn: BrokerConnection) -> None:
        if self._conns.get(node) is conn:
            del self._conns[node]

    def _request_refresh(self, qs: _QueueState, now: float) -> None:
        if not qs.refreshing and qs.refresh_after <= now and qs.dead is None:
            qs.refreshing = True
            self._spawn(self._refresh_queue(qs))

    async def _refresh_queue(self, qs: _QueueState) -> None:
        try:
            info = await self._cluster.queue(qs.name, refresh=True)
        except UnknownQueueError as exc:
            self._kill_queue(qs, exc)
        except Exception as exc:
            log.info("metadata refresh of %s failed: %r", qs.name, exc)
            qs.refresh_after = _monotonic() + max(self._backoff_s, 0.05)
        else:
            qs.refresh_after = _monotonic() + max(self._backoff_s, 0.05)
            with self._lock:
                for p in qs.parts:
                    if p.index < info.partition_count:
                        p.leader = info.partitions[p.index].leader
                if info.partition_count > qs.count:  # partitions were added: keys move
                    qs.parts += [_Part(qs, p.partition, p.leader) for p in info.partitions[qs.count :]]
                    qs.count = len(qs.parts)
                    qs.placed = (qs.count, {})
        finally:
            qs.refreshing = False
            self._wake()

    async def _fetch_new_queue(self, queue: str, pending: _Pending) -> None:
        """Learn a new queue's partitions, then route the records sent to it meanwhile."""
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
                    self._expire_pending(queue, pending, exc)
                    await asyncio.sleep(self._backoff(attempts) or 0.05)
                    continue
                if info.partition_count == 0:
                    error = UnknownQueueError(f"queue {queue!r} has no partitions")
                    break
                self._route_pending(queue, pending, _QueueState(queue, info))
                return
            with self._lock:
                if self._pending.get(queue) is pending:
                    del self._pending[queue]
                records, pending.records = pending.records, []
            for _record, completion, _sent_at in records:
                completion._finish(-1, error)
        finally:
            self._wake()

    def _route_pending(self, queue: str, pending: _Pending, qs: _QueueState) -> None:
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
                assert isinstance(target, _Batch)
                completion.partition = target.partition
                if target.linked is None:
                    target.linked = []
                target.linked.append((delta, completion))
            pending.records = []
            self._room_locked()
        for completion, error in failed:
            completion._finish(-1, error)

    def _expire_pending(self, queue: str, pending: _Pending, last: LogqError) -> None:
        oldest = _monotonic() - self._delivery_timeout_s
        with self._lock:
            expired = [r for r in pending.records if r[2] <= oldest]
            if not expired:
                return
            pending.records = [r for r in pending.records if r[2] > oldest]
        for _record, completion, _sent_at in expired:
            completion._finish(
                -1,
                ClientTimeoutError(
                    f"no metadata for queue {queue!r} within delivery_timeout_ms (last error: {last})"
                ),
            )

    def _kill_queue(self, qs: _QueueState, error: LogqError) -> None:
        """The queue is gone: fail everything sent to it."""
        qs.dead = error
        doomed: list[_Batch] = []
        with self._lock:
            if self._queues.get(qs.name) is qs:
                del self._queues[qs.name]
            for p in qs.parts:
                if p.open is not None:
                    doomed.append(p.open)
                    p.open = None
                    self._open_parts.pop(p, None)
        for p in qs.parts:
            doomed.extend(p.queue)
            doomed.extend(p.retry)
            p.queue.clear()
            p.retry = []
            p.failing = False
            self._active.pop(p, None)
        for b in doomed:
            b._finish(-1, error)

    async def _reset_producer_id(self) -> None:
        """Take a new producer id (nothing is in flight) and renumber every batch not yet acknowledged."""
        attempts = 0
        try:
            while True:
                try:
                    await self._init_producer_id()
                    break
                except Exception as exc:
                    attempts += 1
                    log.warning("InitProducerId failed (%r); retrying", exc)
                    await asyncio.sleep(self._backoff(attempts) or 0.05)
            log.info("new producer id %d after a failed idempotent batch", self._producer_id)
            for qs in list(self._queues.values()):
                for p in qs.parts:
                    if p.failing or p.retry:
                        self._requeue(p)
                    sequence = 0
                    for b in p.queue:
                        if b.data is not None:
                            b.data = with_sequence(b.data, self._producer_id, self._producer_epoch, sequence)
                            b.sequence = sequence
                            sequence = (sequence + b.count) % SEQUENCE_WRAP
                    p.next_seq = sequence
            self._reset_needed = False
        finally:
            self._resetting = False
            self._wake()


def _place(placed: dict[bytes, int], key: bytes, count: int) -> int:
    index = partition_for_key(key, count)
    if len(placed) >= PLACED_KEYS:
        placed.clear()
    placed[key] = index
    return index


def _set_done(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _check_types(key: object, value: object, partition: object, timestamp: object) -> None:
    for name, item in (("key", key), ("value", value)):
        if item is not None and not isinstance(item, bytes | bytearray | memoryview):
            raise TypeError(f"{name} must be bytes or None, not {type(item).__name__}")
    for name, item in (("partition", partition), ("timestamp", timestamp)):
        if item is not None and (isinstance(item, bool) or not isinstance(item, int)):
            raise TypeError(f"{name} must be an int or None, not {type(item).__name__}")
