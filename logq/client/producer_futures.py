"""The outcome of sent records: a :class:`Completion` per group of records (a batch, or one record sent
before its queue's metadata was known) and a tiny :class:`RecordFuture` per record that refers to it.

Completing a group wakes every waiter and calls every callback of its records at once; it also gives back
the group's share of ``buffer_memory`` to the producer that owns it (:class:`CompletionOwner`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, Protocol

from logq.client.records import COMPILED_MODULE, RecordMetadata
from logq.errors import ClientTimeoutError, LogqError

__all__ = ["Completion", "CompletionOwner", "DeliveryCallback", "DoneCallback", "RecordFuture", "set_done"]

log = logging.getLogger("logq.client.producer")  # the producer's one logger, whichever module logs

DeliveryCallback = Callable[[LogqError | None, RecordMetadata | None], object]
DoneCallback = Callable[["RecordFuture"], object]


class CompletionOwner(Protocol):
    """What a completion uses of its producer (:class:`logq.client.producer.Producer`)."""

    _lock: threading.Lock  # guards the three below, and the completion's done, error and callbacks
    _incomplete: dict[Completion, None]
    _used: int  # bytes of buffer_memory in use
    _loop: asyncio.AbstractEventLoop | None
    _loop_thread_id: int

    def _room_locked(self) -> None:
        """Wake the senders that wait for room in buffer_memory, if there is room now (under _lock)."""


class Completion:
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

    def __init__(self, owner: CompletionOwner, queue: str, partition: int) -> None:
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

    @classmethod
    def failed(cls, owner: CompletionOwner, queue: str, partition: int, error: LogqError) -> Completion:
        """A completion already failed with ``error`` (for a record that cannot be sent)."""
        completion = cls(owner, queue, partition)
        completion.error = error
        completion.done = True
        completion._event.set()
        return completion

    def finish(self, base_offset: int, error: LogqError | None, log_append_time: int = -1) -> None:
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

    def loop_future(self) -> asyncio.Future[None]:
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


class _PythonFutureFields:
    """What a RecordFuture refers to: its batch's completion, its offset delta, its timestamp. (The
    compiled codec's FutureFields, when built: one is made per record sent, in a third of the time.)"""

    __slots__ = ("_c", "_delta", "_ts")

    def __init__(self, completion: Completion, delta: int, timestamp: int) -> None:
        self._c = completion
        self._delta = delta
        self._ts = timestamp


if TYPE_CHECKING or COMPILED_MODULE is None:
    _FutureFields = _PythonFutureFields
else:
    _FutureFields = COMPILED_MODULE.FutureFields


class RecordFuture(_FutureFields):
    """The outcome of one sent record. Cheap: a reference to its batch's completion and its offset delta.

    ``result()`` blocks (in any thread but the producer's loop thread); ``await future`` works in the loop
    that runs the producer."""

    __slots__ = ()

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
            yield from c.loop_future().__await__()
        return self.result()

    def __repr__(self) -> str:
        c = self._c
        state = "pending" if not c.done else ("failed" if c.error is not None else "done")
        return f"<RecordFuture {c.queue}/{c.partition} {state}>"


def set_done(future: asyncio.Future[None]) -> None:
    """Complete an asyncio future that nothing else completes, unless it is done (cancelled) already."""
    if not future.done():
        future.set_result(None)
