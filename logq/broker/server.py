"""The TCP server: an asyncio Protocol per connection, and one task per connection that answers its
requests one at a time, in order (as Kafka mutes a connection until it has answered).

Reading goes on while a request is handled: complete frames queue up (reading pauses when more than
``QUEUE_PAUSE_BYTES`` wait), and the client's EOF is seen at once, which ends a long-polling Fetch
whose client has left. Responses are written chunk by chunk, so record bytes are never joined into one
big buffer first.

Bad input never crashes the broker. A length prefix above ``socket.request.max.bytes``, zero or negative
closes the connection before anything is allocated (complete requests received before it are answered
first, as Kafka does); so do an undecodable request, an API or version the broker does not serve (except
ApiVersions, which gets the v0 fallback reply), Produce v0-2, and a failed acks=0 Produce. Each close is
one log line.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time

from logq.broker.handlers import MIN_SERVED_PRODUCE_VERSION, CloseConnectionError, Handlers
from logq.broker.metrics import BrokerMetrics
from logq.broker.session import ClientSession, enter_session
from logq.protocol import (
    ApiKey,
    FrameBuffer,
    FrameSizeError,
    ProtocolDecodeError,
    UnsupportedVersionError,
    decode_request,
    encode_response_chunks,
    unsupported_version_response,
)
from logq.protocol.primitives import Chunk

log = logging.getLogger(__name__)

QUEUE_PAUSE_BYTES = 8 << 20  # received but unanswered request bytes before reading pauses
WRITE_HIGH_WATER = 4 << 20


class Server:
    def __init__(
        self, handlers: Handlers, metrics: BrokerMetrics, *, max_frame_bytes: int, idle_timeout_s: float
    ) -> None:
        self._handlers = handlers
        self._metrics = metrics
        self.max_frame_bytes = max_frame_bytes
        self.idle_timeout_s = idle_timeout_s
        self._connections: set[_Connection] = set()

    def protocol(self) -> asyncio.Protocol:
        """The protocol factory for ``loop.create_server``."""
        return _Connection(self)

    def opened(self, connection: _Connection) -> None:
        self._connections.add(connection)
        self._metrics.connections.inc()

    def closed(self, connection: _Connection, reason: str | None, detail: str) -> None:
        if connection in self._connections:
            self._connections.discard(connection)
            self._metrics.connections.dec()
        if reason is not None:
            self._metrics.connections_closed.labels(reason).inc()
            log.info("closing connection from %s: %s", connection.peer, detail)

    async def handle(self, frame: memoryview) -> list[Chunk] | None:
        """Decode one request and run its handler; the response chunks, or None when none is due."""
        try:
            request = decode_request(frame)
        except UnsupportedVersionError as exc:
            fallback = unsupported_version_response(exc)
            if fallback is None:
                raise CloseConnectionError(
                    f"unsupported api_key {exc.api_key} version {exc.api_version}"
                ) from None
            return [fallback]
        except ProtocolDecodeError as exc:
            raise CloseConnectionError(f"malformed request: {exc}") from None
        header, body = request.header, request.body
        handler = self._handlers.by_type.get(type(body))
        if handler is None:
            raise CloseConnectionError(f"api_key {header.api_key} is not served by this broker")
        if header.api_key == ApiKey.PRODUCE and header.api_version < MIN_SERVED_PRODUCE_VERSION:
            raise CloseConnectionError(f"Produce v{header.api_version} (message format < 2) is not served")
        api = type(body).__name__.removesuffix("Request")
        started = time.perf_counter()
        response = await handler(header, body)
        self._metrics.latency.labels(api).observe(time.perf_counter() - started)
        self._metrics.requests.labels(api).inc()
        if response is None or not request.expects_response:
            return None
        return encode_response_chunks(header, response)

    async def close_connections(self) -> None:
        connections = list(self._connections)
        for connection in connections:
            connection.abort()
        await asyncio.gather(*(c.finished for c in connections), return_exceptions=True)


class _Connection(asyncio.Protocol):
    """One client connection: the protocol callbacks fill a queue of frames; ``_serve`` answers them."""

    def __init__(self, server: Server) -> None:
        self._server = server
        self._frames = FrameBuffer(server.max_frame_bytes)
        self._queue: collections.deque[memoryview] = collections.deque()
        self._queued_bytes = 0
        self._bad_prefix: FrameSizeError | None = None
        self._eof = False
        self._lost = False
        self._reading_paused = False
        self._wakeup = asyncio.Event()
        self._writable: asyncio.Future[None] | None = None
        self._long_poll = False  # handling a Fetch, which may wait for data
        self._transport: asyncio.Transport | None = None
        self._task: asyncio.Task[None] | None = None
        self.finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.peer: object = None

    # --- protocol callbacks (event loop, synchronous) ----------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self.peer = transport.get_extra_info("peername")
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        self._server.opened(self)
        self._task = asyncio.create_task(self._serve())

    def data_received(self, data: bytes) -> None:
        if self._bad_prefix is not None:
            return
        try:
            frames = self._frames.feed(data)
        except FrameSizeError as exc:
            frames, self._bad_prefix = exc.frames, exc
        for frame in frames:
            self._queue.append(frame)
            self._queued_bytes += len(frame)
        if (
            self._queued_bytes > QUEUE_PAUSE_BYTES
            and not self._reading_paused
            and self._transport is not None
        ):
            self._transport.pause_reading()
            self._reading_paused = True
        self._wakeup.set()

    def eof_received(self) -> bool:
        self._eof = True
        self._wakeup.set()
        if self._long_poll and self._task is not None:
            self._task.cancel()  # the client has left: nobody will read this Fetch's answer
        return True  # keep the transport: requests received before the EOF are still answered

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._wakeup.set()
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        if self._task is not None and not self._task.done():
            self._task.cancel()

    def pause_writing(self) -> None:
        if self._writable is None or self._writable.done():
            self._writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    # --- the connection's task -----------------------------------------------------------------

    async def _serve(self) -> None:
        reason: str | None = None
        detail = ""
        peer = self.peer if isinstance(self.peer, tuple) else ("", -1)
        enter_session(ClientSession(str(peer[0]), int(peer[1])))
        try:
            while True:
                frame = await self._next_frame()
                if frame is None:
                    break
                self._long_poll = frame.nbytes >= 2 and frame[0] == 0 and frame[1] == ApiKey.FETCH
                reply = await self._server.handle(frame)
                self._long_poll = False
                if reply and not self._lost:
                    assert self._transport is not None
                    for chunk in reply:
                        self._transport.write(chunk)
                    if self._writable is not None and not self._writable.done():
                        await self._writable
            if self._bad_prefix is not None:
                reason = "frame-size"
                detail = f"length prefix {self._bad_prefix.size} (limit {self._bad_prefix.limit})"
        except CloseConnectionError as exc:
            reason, detail = "bad-request", str(exc)
        except TimeoutError:
            log.debug("closing idle connection from %s", self.peer)
        except asyncio.CancelledError:
            pass
        except Exception:  # a bug in a handler: this connection ends, the broker carries on
            log.exception("closing connection from %s after an internal error", self.peer)
            reason = "internal-error"
        finally:
            self._server.closed(self, reason, detail)
            if self._transport is not None:
                self._transport.close()
            if not self.finished.done():
                self.finished.set_result(None)

    async def _next_frame(self) -> memoryview | None:
        """The next complete request, or None once the client is gone or sent a bad prefix."""
        while not self._queue:
            if self._eof or self._lost or self._bad_prefix is not None:
                return None
            self._wakeup.clear()
            async with asyncio.timeout(self._server.idle_timeout_s):
                await self._wakeup.wait()
        frame = self._queue.popleft()
        self._queued_bytes -= len(frame)
        if (
            self._reading_paused
            and self._queued_bytes <= QUEUE_PAUSE_BYTES // 2
            and self._transport is not None
        ):
            self._transport.resume_reading()
            self._reading_paused = False
        return frame
