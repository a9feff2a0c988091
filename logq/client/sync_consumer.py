"""The synchronous Consumer: ``logq.client.consumer.Consumer`` run on an event loop in a daemon thread
(``LoopThread``), so heartbeats, fetches and commits go on while the calling thread works between polls.

    with Consumer("127.0.0.1:9092", group_id="billing", auto_offset_reset="earliest") as consumer:
        consumer.subscribe(["orders"])
        while True:
            for record in consumer.poll(1.0):
                process(record)

Same settings and methods as the asyncio Consumer, every one synchronous; ``commit(offsets=None,
asynchronous=False)`` as confluent-kafka's. Rebalance callbacks (``fn(consumer, partitions)``, given this
object) and commit callbacks run in the thread that called ``poll`` (or ``commit``, ``close``...), as
librdkafka's do, so they may call the consumer's methods. The consumer is meant for one thread at a time;
calls from several threads are serialised.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import queue
import re
import threading
from collections.abc import Callable, Coroutine, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar

from logq.client.cluster import DEFAULT_BOOTSTRAP, QueuePartition
from logq.client.consumer import CommitCallback, PartitionsArg, RebalanceCallback
from logq.client.consumer import Consumer as AsyncConsumer
from logq.client.consumer_settings import ConsumerSettings
from logq.client.loop_thread import LoopThread
from logq.client.records import ConsumerRecord
from logq.client.settings import takes_settings
from logq.errors import ClientError, LogqError

__all__ = ["Consumer"]

log = logging.getLogger(__name__)

T = TypeVar("T")
_Request = tuple[RebalanceCallback, list[QueuePartition], "asyncio.Future[None]"]


@takes_settings(ConsumerSettings, "Settings (keyword arguments; Kafka's consumer configs of the same names):")
class Consumer:
    """Reads records from logq queues, in a group (``subscribe``) or from partitions chosen by hand
    (``assign``); connects in ``__init__``. See the module's documentation.

    ValueError for a bad setting value, TypeError for an unknown setting (before any thread starts)."""

    def __init__(self, bootstrap: str | Sequence[str] = DEFAULT_BOOTSTRAP, **settings: Any) -> None:
        self._lock = threading.RLock()
        self._waiting: list[queue.SimpleQueue[_Request | None]] = []  # one per call in progress
        self._done_callbacks: collections.deque[Callable[[], object]] = collections.deque()
        # Validates the settings (TypeError, ValueError) before any thread starts; callbacks run in the
        # thread that called poll, so callback_runner is this class's own.
        self._consumer = AsyncConsumer(bootstrap, callback_runner=self._run_in_caller, **settings)
        self._loop = LoopThread(name=f"logq-consumer-{self._consumer.group_id or 'nogroup'}")
        try:
            self._call(self._consumer.start())
        except BaseException:
            self._call(self._consumer.close())
            self._loop.stop()
            raise

    # --- running on the loop, callbacks in the caller's thread -------------------------------------

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop; meanwhile run here the callbacks it hands over."""
        with self._lock:
            if self._loop.loop.is_closed():
                coro.close()
                raise ClientError("the consumer is closed")
            requests: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
            self._waiting.append(requests)
            try:
                future = asyncio.run_coroutine_threadsafe(coro, self._loop.loop)
                future.add_done_callback(lambda _: requests.put(None))
                try:
                    while (request := requests.get()) is not None:
                        self._serve(request)
                except BaseException:  # Ctrl-C: stop the work on the loop too
                    future.cancel()
                    raise
                return future.result()
            finally:
                self._waiting.pop()
                self._run_done_callbacks()

    def _serve(self, request: _Request) -> None:
        callback, partitions, done = request
        error: Exception | None = None
        try:
            callback(self, partitions)
        except Exception as exc:
            error = exc
        except BaseException:  # Ctrl-C in a callback: the consumer's work stops, the caller gets it
            self._loop.loop.call_soon_threadsafe(_settle, done, ClientError("rebalance callback interrupted"))
            raise
        self._loop.loop.call_soon_threadsafe(_settle, done, error)

    async def _run_in_caller(self, callback: RebalanceCallback, partitions: list[QueuePartition]) -> None:
        """The asyncio Consumer's callback runner: hand the call to the thread waiting in _call."""
        if not self._waiting:  # nobody is waiting (cannot happen through this class's methods)
            callback(self, partitions)
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting[-1].put((callback, partitions, done))
        await done

    def _do(self, fn: Callable[[], T]) -> T:
        """Run a plain method of the asyncio Consumer on the loop (its state belongs to the loop)."""

        async def run() -> T:
            return fn()

        return self._call(run())

    def _run_done_callbacks(self) -> None:
        while self._done_callbacks:
            try:
                self._done_callbacks.popleft()()
            except Exception:
                log.exception("commit callback failed")

    # --- the API -----------------------------------------------------------------------------------

    def subscribe(
        self,
        queues: Sequence[str] = (),
        *,
        pattern: str | re.Pattern[str] | None = None,
        on_assign: RebalanceCallback | None = None,
        on_revoke: RebalanceCallback | None = None,
        on_lost: RebalanceCallback | None = None,
    ) -> None:
        self._do(
            lambda: self._consumer.subscribe(
                queues, pattern=pattern, on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost
            )
        )

    def unsubscribe(self) -> None:
        self._call(self._consumer.unsubscribe_now())

    def assign(self, partitions: PartitionsArg) -> None:
        parts = list(partitions)
        self._do(lambda: self._consumer.assign(parts))

    def assignment(self) -> list[QueuePartition]:
        return self._do(self._consumer.assignment)

    def poll(self, timeout: float = 1.0) -> list[ConsumerRecord]:
        """Records fetched since the last poll (possibly none), waiting up to ``timeout`` seconds."""
        return self._call(self._consumer.poll(timeout))

    def commit(self, offsets: Mapping[QueuePartition, int] | None = None, asynchronous: bool = False) -> None:
        """Commit ``offsets`` (None: the position of every assigned partition, past what poll returned or
        where reading would start); ``asynchronous=True`` returns at once (a failure is logged)."""
        if asynchronous:
            self.commit_async(offsets)
        else:
            self._call(self._consumer.commit(offsets))

    def commit_async(
        self,
        offsets: Mapping[QueuePartition, int] | None = None,
        callback: CommitCallback | None = None,
    ) -> None:
        """Commit in the background; ``callback(error, offsets)`` runs in this thread during a later call
        (poll, commit, close...)."""
        handler: CommitCallback | None = None
        if callback is not None:
            user_callback = callback

            def handler(error: LogqError | None, done: dict[QueuePartition, int]) -> None:
                self._done_callbacks.append(lambda: user_callback(error, done))

        self._do(lambda: self._consumer.commit_async(offsets, handler))

    def committed(self, partitions: PartitionsArg) -> dict[QueuePartition, int | None]:
        parts = list(partitions)
        return self._call(self._consumer.committed(parts))

    def seek(self, partition: QueuePartition | tuple[str, int], offset: int) -> None:
        self._do(lambda: self._consumer.seek(partition, offset))

    def seek_to_beginning(self, partitions: PartitionsArg | None = None) -> None:
        parts = None if partitions is None else list(partitions)
        self._call(self._consumer.seek_to_beginning(parts))

    def seek_to_end(self, partitions: PartitionsArg | None = None) -> None:
        parts = None if partitions is None else list(partitions)
        self._call(self._consumer.seek_to_end(parts))

    def position(self, partition: QueuePartition | tuple[str, int]) -> int:
        return self._call(self._consumer.position(partition))

    def pause(self, partitions: PartitionsArg) -> None:
        parts = list(partitions)
        self._do(lambda: self._consumer.pause(parts))

    def resume(self, partitions: PartitionsArg) -> None:
        parts = list(partitions)
        self._do(lambda: self._consumer.resume(parts))

    def paused(self) -> list[QueuePartition]:
        return self._do(self._consumer.paused)

    def beginning_offsets(self, partitions: PartitionsArg) -> dict[QueuePartition, int]:
        parts = list(partitions)
        return self._call(self._consumer.beginning_offsets(parts))

    def end_offsets(self, partitions: PartitionsArg) -> dict[QueuePartition, int]:
        parts = list(partitions)
        return self._call(self._consumer.end_offsets(parts))

    def offsets_for_times(self, timestamps: Mapping[QueuePartition, int]) -> dict[QueuePartition, int | None]:
        wanted = dict(timestamps)
        return self._call(self._consumer.offsets_for_times(wanted))

    def partitions_for(self, queue: str) -> int:
        """The number of partitions of ``queue`` (UnknownQueueError if there is no such queue)."""
        return self._call(self._consumer.partitions_for(queue))

    def close(self) -> None:
        """Commit (auto-commit), call on_revoke, leave the group, close connections, stop the loop."""
        if not self._loop.loop.is_closed():
            try:
                self._call(self._consumer.close())
            finally:
                self._loop.stop()

    def __enter__(self) -> Consumer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _settle(future: asyncio.Future[None], error: Exception | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)
