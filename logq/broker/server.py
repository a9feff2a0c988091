"""The TCP server: one task per connection that reads frames, answers them in order, and writes.

Requests on one connection are handled one at a time, in order (as Kafka mutes a connection until it
has answered), so a long-polling Fetch holds back the requests behind it. Bad input never crashes the
broker: an oversized, zero or negative length prefix, an undecodable request, an unknown API or version
(other than ApiVersions, which gets the v0 fallback reply) or Produce v0-2 closes that one connection,
with one log line, as Kafka does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from logq.broker.handlers import MIN_SERVED_PRODUCE_VERSION, Handlers
from logq.broker.metrics import BrokerMetrics
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

READ_SIZE = 1 << 20


class ConnectionClosingError(Exception):
    """Close this connection (the reason is the message); the broker carries on."""


class Server:
    def __init__(
        self, handlers: Handlers, metrics: BrokerMetrics, *, max_frame_bytes: int, idle_timeout_s: float
    ) -> None:
        self._handlers = handlers
        self._metrics = metrics
        self._max_frame_bytes = max_frame_bytes
        self._idle_timeout_s = idle_timeout_s
        self._connections: set[asyncio.Task[None]] = set()

    async def serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        self._metrics.connections.inc()
        peer = writer.get_extra_info("peername")
        frames = FrameBuffer(self._max_frame_bytes)
        try:
            while True:
                async with asyncio.timeout(self._idle_timeout_s):
                    data = await reader.read(READ_SIZE)
                if not data:
                    return
                for frame in frames.feed(data):
                    reply = await self._handle(frame)
                    if reply:
                        writer.writelines(reply)
                        await writer.drain()
        except FrameSizeError as exc:
            self._closing(peer, "frame-size", f"length prefix {exc.size} (limit {exc.limit})")
        except ConnectionClosingError as exc:
            self._closing(peer, "bad-request", str(exc))
        except TimeoutError:
            log.debug("closing idle connection from %s", peer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._metrics.connections.dec()
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()

    def _closing(self, peer: object, reason: str, detail: str) -> None:
        self._metrics.connections_closed.labels(reason).inc()
        log.info("closing connection from %s: %s", peer, detail)

    async def _handle(self, frame: memoryview) -> list[Chunk] | None:
        try:
            request = decode_request(frame)
        except UnsupportedVersionError as exc:
            fallback = unsupported_version_response(exc)
            if fallback is None:
                raise ConnectionClosingError(
                    f"unsupported api_key {exc.api_key} version {exc.api_version}"
                ) from None
            return [fallback]
        except ProtocolDecodeError as exc:
            raise ConnectionClosingError(f"malformed request: {exc}") from None
        header, body = request.header, request.body
        handler = self._handlers.by_type.get(type(body))
        if handler is None:
            raise ConnectionClosingError(f"api_key {header.api_key} is not served by this broker")
        if header.api_key == ApiKey.PRODUCE and header.api_version < MIN_SERVED_PRODUCE_VERSION:
            raise ConnectionClosingError(f"Produce v{header.api_version} (message format < 2) is not served")
        api = type(body).__name__.removesuffix("Request")
        started = time.perf_counter()
        response = await handler(header, body)
        self._metrics.latency.labels(api).observe(time.perf_counter() - started)
        self._metrics.requests.labels(api).inc()
        if response is None or not request.expects_response:
            return None
        return encode_response_chunks(header, response)

    async def close_connections(self) -> None:
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
