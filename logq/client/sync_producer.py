"""The synchronous producer: the asyncio :class:`logq.client.producer.Producer` running on its own event
loop thread (:class:`~logq.client.loop_thread.LoopThread`), for code that does not use asyncio.

``send`` is the asyncio producer's ``send`` called from the caller's thread: it appends the record to its
batch under a short lock and returns a :class:`~logq.client.producer.RecordFuture` at once; linger timers,
compression and the requests run on the loop thread meanwhile. When ``buffer_memory`` is full, ``send``
blocks until there is room. ``on_delivery(err, metadata)`` callbacks and ``add_done_callback`` functions
run on the producer's loop thread (keep them short; do not call ``flush`` or ``close`` from them).
A producer still open when the interpreter exits is closed then, so records sent just before the end
of a script are delivered (or fail after ``delivery_timeout_ms``) instead of vanishing with the thread.

    with Producer("127.0.0.1:9092") as producer:
        future = producer.send("orders", b"hello", key=b"k1")
        print(future.result(timeout=10))    # RecordMetadata(queue, partition, offset, timestamp)
"""

from __future__ import annotations

import atexit
import functools
import weakref
from collections.abc import Sequence
from typing import Any

from logq.client.cluster import DEFAULT_BOOTSTRAP
from logq.client.loop_thread import LoopThread
from logq.client.producer import DeliveryCallback, RecordFuture
from logq.client.producer import Producer as AsyncProducer
from logq.client.producer_settings import ProducerSettings
from logq.client.records import Headers
from logq.client.settings import takes_settings
from logq.errors import ClientError

__all__ = ["Producer"]

_START_TIMEOUT_S = 120.0


def _close_at_exit(ref: weakref.ref[Producer]) -> None:
    producer = ref()
    if producer is not None:
        producer.close()


@takes_settings(ProducerSettings, "Settings (keyword arguments; Kafka's producer configs of the same names):")
class Producer:
    """Sends records to logq queues from any thread; connects (and gets a producer id) in ``__init__``.

    ValueError for a bad setting value, TypeError for an unknown setting (before any thread starts)."""

    def __init__(self, bootstrap: str | Sequence[str] = DEFAULT_BOOTSTRAP, **settings: Any) -> None:
        self._producer = AsyncProducer(bootstrap, **settings)  # validates before any thread starts
        self._thread = LoopThread(name="logq-producer")
        try:
            self._thread.run(self._producer.start(), _START_TIMEOUT_S)
        except BaseException:
            self._thread.stop()
            raise
        self._closed = False
        self._at_exit = functools.partial(_close_at_exit, weakref.ref(self))
        atexit.register(self._at_exit)
        # The hot path: the asyncio producer's send itself (thread-safe; from any thread but the loop's it
        # blocks while the buffer is full), without a wrapper call per record.
        self.send = self._producer.send  # type: ignore[method-assign]

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
        """Queue one record and return its future at once (blocking only while the buffer is full).

        (Replaced in ``__init__`` by the asyncio producer's ``send``, which this calls.)"""
        return self._producer.send(
            queue,
            value,
            key,
            headers=headers,
            partition=partition,
            timestamp=timestamp,
            on_delivery=on_delivery,
        )

    @property
    def producer_id(self) -> int:
        return self._producer.producer_id

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every record sent before this call is delivered or failed (ClientTimeoutError
        after ``timeout`` seconds)."""
        if not self._closed:
            self._thread.run(self._producer.flush(timeout))

    def partitions_for(self, queue: str) -> int:
        """The number of partitions of ``queue`` (UnknownQueueError if there is no such queue)."""
        if self._closed:
            raise ClientError("the producer is closed")
        return self._thread.run(self._producer.partitions_for(queue))

    def close(self, timeout: float | None = None) -> None:
        """Flush (up to ``timeout`` seconds), close the connections and stop the loop thread. Idempotent."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self._at_exit)
        try:
            self._thread.run(self._producer.close(timeout))
        finally:
            self._thread.stop()

    def __enter__(self) -> Producer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
