"""The TCP server: an asyncio Protocol per connection, and one task per connection that answers its
requests one at a time, in order (as Kafka mutes a connection until it has answered).

A new connection over a connection limit (``connection_limits.py``) is aborted in ``connection_made``.
Reading goes on while a request is handled: complete frames queue up (reading pauses when more than
``QUEUE_PAUSE_BYTES`` wait, or while ``queued.max.request.bytes`` is used up broker-wide:
``request_memory.py``), and the client's EOF is seen at once, which ends a long-polling Fetch
whose client has left. Received bytes land where their frame is handed out (a BufferedProtocol over
``logq.protocol.frames.FrameReceiver``): after its first read, a large Produce is written by the kernel
or the TLS decryption straight into its own buffer. A response's small chunks are joined into one write
and record blobs written as they are, never joined into one big buffer; answers to requests already
queued on the connection are held back and sent together when the loop next turns.

Each listener has its security protocol (``logq/broker/listeners.py``). On TLS listeners asyncio does
the handshake (``ssl.*`` settings; it must end within ``authentication.timeout.ms``) before the
connection exists here; a verified client certificate's subject becomes the principal through
``ssl.principal.mapping.rules``. On SASL listeners every frame goes to the connection's ``SaslGate``
(``authentication.py``) until the login succeeds, within the same deadline and with frames capped at
``sasl.server.max.receive.size``; then the session carries ``User:<name>``. Under TLS, small response
chunks are joined (each write is at least one TLS record) and record blobs are written in 256 KiB slices
(``tls_write_pieces``).

Bad input never crashes the broker. A length prefix above ``socket.request.max.bytes``, zero or negative
closes the connection before anything is allocated (complete requests received before it are answered
first, as Kafka does); so do an undecodable request, an API or version the broker does not serve (except
ApiVersions, which gets the v0 fallback reply), Produce v0-2, and a failed acks=0 Produce. Each close is
one log line.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import logging
import ssl
import time
from collections.abc import Callable
from typing import cast

from logq.broker.authentication import AuthenticationEndedError, AuthenticationSettings, SaslGate
from logq.broker.connection_limits import ConnectionGate, ConnectionLimits
from logq.broker.handlers import MIN_SERVED_PRODUCE_VERSION, CloseConnectionError, Handlers
from logq.broker.listeners import Listener
from logq.broker.metrics import BrokerMetrics
from logq.broker.quota_manager import QuotaEnforcer
from logq.broker.request_memory import RequestMemory
from logq.broker.session import ClientSession, current_session, enter_session
from logq.protocol import (
    ApiKey,
    FrameReceiver,
    FrameSizeError,
    ProtocolDecodeError,
    UnsupportedVersionError,
    decode_request,
    encode_response_chunks,
    unsupported_version_response,
)
from logq.protocol.primitives import Chunk, as_byte_view
from logq.security.certs import peer_subject
from logq.security.principal import PrincipalMapper, user_principal

log = logging.getLogger(__name__)

QUEUE_PAUSE_BYTES = 8 << 20  # received but unanswered request bytes before reading pauses
WRITE_HIGH_WATER = 4 << 20
CLOSE_AFTER_REFUSAL_S = 1.0  # how long a refused client may take to close first
UNSENT_MAX_BYTES = 64 << 10  # answers held back for one send() at most
PLAIN_WRITE_JOIN_BYTES = 16 << 10  # plain: chunks smaller than this are joined with their neighbours
TLS_WRITE_JOIN_BYTES = 64 << 10  # TLS: chunks smaller than this are joined into writes of about this size
TLS_WRITE_SLICE_BYTES = 256 << 10  # TLS: larger chunks are written in slices of this size


class Server:
    def __init__(
        self,
        handlers: Handlers,
        metrics: BrokerMetrics,
        *,
        max_frame_bytes: int,
        idle_timeout_s: float,
        authentication: AuthenticationSettings | None = None,
        principal_mapper: PrincipalMapper | None = None,
        authentication_timeout_s: float = 10.0,
        connection_limits: ConnectionLimits | None = None,
        exempt_listener: str | None = None,
        queued_max_request_bytes: int = 1 << 62,
        quotas: QuotaEnforcer | None = None,
    ) -> None:
        self._handlers = handlers
        self._metrics = metrics
        self.max_frame_bytes = max_frame_bytes
        self.idle_timeout_s = idle_timeout_s
        self.authentication = authentication
        self.principal_mapper = principal_mapper or PrincipalMapper()
        self.authentication_timeout_s = authentication_timeout_s
        self._connections: set[_Connection] = set()
        self._connection_gate = ConnectionGate(connection_limits or ConnectionLimits())
        self.exempt_listener = exempt_listener  # the inter-broker listener of a cluster: never limited
        self.request_memory = RequestMemory(queued_max_request_bytes)
        metrics.queued_request_bytes.set_function(lambda: self.request_memory.used)
        metrics.reading_paused_connections.set_function(lambda: self.request_memory.waiting)
        self.quotas = quotas

    @property
    def metrics(self) -> BrokerMetrics:
        return self._metrics

    def protocol_for(self, listener: Listener) -> Callable[[], asyncio.BufferedProtocol]:
        """The protocol factory of one listener's ``loop.create_server``."""
        if listener.protocol.sasl and self.authentication is None:
            raise ValueError(f"listener {listener.name} needs SASL settings")
        return lambda: _Connection(self, listener)

    def admit(self, listener: Listener, host: str) -> bool:
        """Whether a new connection from ``host`` is within the connection limits; one that is not is
        counted (by reason) and must be closed at once."""
        if listener.name == self.exempt_listener:
            return True
        refusal = self._connection_gate.admit(host)
        if refusal is None:
            return True
        self._metrics.labelled(self._metrics.connections_refused, refusal).inc()
        log.debug("refused a connection from %s: %s", host, refusal)  # a flood must not flood the log
        return False

    def opened(self, connection: _Connection) -> None:
        self._connections.add(connection)
        self._metrics.connections.inc()

    def closed(self, connection: _Connection, reason: str | None, detail: str) -> None:
        if connection in self._connections:
            self._connections.discard(connection)
            self._metrics.connections.dec()
            if connection.listener.name != self.exempt_listener:
                self._connection_gate.release(connection.host)
        if reason is not None:
            self._metrics.connections_closed.labels(reason).inc()
            log.info("closing connection from %s: %s", connection.peer, detail)

    async def handle(self, frame: memoryview) -> list[Chunk] | None:
        """Decode one request and run its handler; the response chunks, or None when none is due."""
        return (await self.respond(frame))[0]

    async def respond(self, frame: memoryview) -> tuple[list[Chunk] | None, int]:
        """As ``handle``, with the time (ms) the connection is then muted for its client's quotas."""
        try:
            request = decode_request(frame)
        except UnsupportedVersionError as exc:
            fallback = unsupported_version_response(exc)
            if fallback is None:
                raise CloseConnectionError(
                    f"unsupported api_key {exc.api_key} version {exc.api_version}"
                ) from None
            return [fallback], 0
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
        handled_s = time.perf_counter() - started
        metrics = self._metrics
        metrics.labelled(metrics.latency, api).observe(handled_s)
        metrics.labelled(metrics.requests, api).inc()
        throttle_ms = 0
        quotas = self.quotas
        if quotas is not None and quotas.active:
            throttle_ms, response = quotas.throttle(
                current_session().principal,
                header.client_id or "",
                body,
                len(frame),
                response,
                handled_s=handled_s,
            )
            if throttle_ms:
                metrics.quota_throttle_seconds.labels(api).inc(throttle_ms / 1000)
        if response is None or not request.expects_response:
            return None, throttle_ms
        return encode_response_chunks(header, response), throttle_ms

    async def close_connections(self) -> None:
        connections = list(self._connections)
        for connection in connections:
            connection.abort()
        await asyncio.gather(*(c.finished for c in connections), return_exceptions=True)


class _Connection(asyncio.BufferedProtocol):
    """One client connection: the protocol callbacks fill a queue of frames; ``_serve`` answers them."""

    def __init__(self, server: Server, listener: Listener) -> None:
        self._server = server
        self.listener = listener
        self._frames = FrameReceiver(server.max_frame_bytes)
        self._gate: SaslGate | None = None
        self._principal = "User:ANONYMOUS"
        self._tls = listener.protocol.tls
        self._queue: collections.deque[memoryview] = collections.deque()
        self._arrivals: collections.deque[float] = collections.deque()  # perf_counter of each queued frame
        self._arrived = 0.0  # of the frame last taken from the queue
        self._queued_bytes = 0
        self._bad_prefix: FrameSizeError | None = None
        self._eof = False
        self._lost = False
        self._reading_paused = False
        self._paused_for_queue = False  # this connection's queue is long: its own task will drain it
        self._paused_for_memory = False  # queued.max.request.bytes is used up: waiting in request_memory
        # What this connection holds of request_memory: its complete requests (queued, and the one
        # being handled until it is answered) and the buffer of the one being received.
        self._handling_bytes = 0
        self._held_complete = 0
        self._held_receiving = 0
        self._closing = False
        self._alone = False  # let through past queued.max.request.bytes until this request is complete
        self._wakeup = asyncio.Event()
        # Idle connections are closed by a watchdog timer that re-arms itself, not by a timeout around
        # each wait for a request: that would create and cancel a timer for every request.
        self._idle_since: float | None = None  # loop time since which no request is being handled
        self._idle_timer: asyncio.TimerHandle | None = None
        self._timed_out = False
        self._unsent: list[Chunk] = []  # answers held back to go out with the next ones (plain only)
        self._unsent_bytes = 0
        self._send_scheduled = False
        self._writable: asyncio.Future[None] | None = None
        self._long_poll = False  # handling a Fetch, which may wait for data
        self._transport: asyncio.Transport | None = None
        self._task: asyncio.Task[None] | None = None
        self.finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.peer: object = None
        self.host = ""

    # --- protocol callbacks (event loop, synchronous) ----------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A cast, not an isinstance check: uvloop's transports (LOGQ_EVENT_LOOP=uvloop, logq/broker/run.py)
        # are not asyncio.Transport subclasses but offer the same methods.
        self._transport = cast(asyncio.Transport, transport)
        transport = self._transport
        self.peer = transport.get_extra_info("peername")
        self.host = str(self.peer[0]) if isinstance(self.peer, tuple) else ""
        if not self._server.admit(self.listener, self.host):
            # Over a connection limit: closed before anything is read or allocated for it.
            self._lost = True
            transport.abort()
            self.finished.set_result(None)
            return
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        self._server.opened(self)
        loop = asyncio.get_running_loop()
        self._idle_since = loop.time()
        self._idle_timer = loop.call_later(self._server.idle_timeout_s, self._check_idle)
        refusal = None
        if self._tls:
            refusal = self._take_certificate_principal(transport.get_extra_info("ssl_object"))
        authentication = self._server.authentication
        if self.listener.protocol.sasl and authentication is not None:
            self._gate = SaslGate(authentication, self.listener.name, self.host, self._server.metrics)
            self._frames.max_frame_bytes = authentication.max_receive_bytes
        self._task = asyncio.create_task(self._serve(refusal))

    def _take_certificate_principal(self, ssl_object: ssl.SSLObject | None) -> str | None:
        """The principal of a verified client certificate (None: no certificate, ANONYMOUS); returns why
        the connection is refused, if it is."""
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        if not der:
            return None
        subject = peer_subject(der)
        name = self._server.principal_mapper.map(subject)
        if name is None:
            return f"no ssl.principal.mapping.rules rule applies to client certificate {subject!r}"
        self._principal = user_principal(name)
        log.info("TLS client %s from %s on listener %s", self._principal, self.peer, self.listener.name)
        return None

    def get_buffer(self, sizehint: int) -> memoryview:
        if self._alone:
            return self._frames.get_buffer()  # past the bound already, to finish this request
        memory = self._server.request_memory
        return self._frames.get_buffer(max_growth=max(memory.limit - memory.used, 0))

    def buffer_updated(self, nbytes: int) -> None:
        if self._bad_prefix is not None or self._closing:
            return  # the connection closes once the frames before the bad prefix are answered
        try:
            frames = self._frames.received(nbytes)
        except FrameSizeError as exc:
            frames, self._bad_prefix = exc.frames, exc
        now = time.perf_counter()
        for frame in frames:
            self._queue.append(frame)
            self._arrivals.append(now)
            self._queued_bytes += len(frame)
        if self._queued_bytes > QUEUE_PAUSE_BYTES:
            self._paused_for_queue = True
        self._hold_memory()
        memory = self._server.request_memory
        if frames and self._alone:
            self._alone = False  # its request is complete: it will be answered, and free room
            memory.completed(self)
        if memory.exhausted and not self._alone and not self._paused_for_memory and not self._lost:
            self._paused_for_memory = True
            self._update_reading()
            memory.wait(self)  # may resume this connection at once (the bound is exceeded by others)
        else:
            self._update_reading()
        self._wakeup.set()

    @property
    def receiving_bytes(self) -> int:
        return self._held_receiving

    def memory_available(self, *, alone: bool) -> None:
        self._paused_for_memory = False
        self._alone = alone
        self._update_reading()

    def _hold_memory(self) -> None:
        """Tell request_memory how many bytes this connection holds now."""
        complete = self._queued_bytes + self._handling_bytes
        receiving = 0 if self._closing else self._frames.buffered_bytes
        if complete != self._held_complete or receiving != self._held_receiving:
            self._server.request_memory.update(
                complete - self._held_complete, receiving - self._held_receiving
            )
            self._held_complete, self._held_receiving = complete, receiving

    def _update_reading(self) -> None:
        paused = self._paused_for_queue or self._paused_for_memory
        if paused == self._reading_paused or self._transport is None:
            return
        self._reading_paused = paused
        if paused:
            self._transport.pause_reading()
        else:
            self._transport.resume_reading()

    def eof_received(self) -> bool:
        self._eof = True
        self._wakeup.set()
        if self._long_poll and self._task is not None:
            self._task.cancel()  # the client has left: nobody will read this Fetch's answer
        # Keep the transport: requests received before the EOF are still answered. TLS has no half-close
        # (asyncio closes an SSL transport at EOF whatever this returns, and warns if it is True).
        return not self._tls

    def _check_idle(self) -> None:
        loop = asyncio.get_running_loop()
        timeout = self._server.idle_timeout_s
        if self._idle_since is not None and loop.time() - self._idle_since >= timeout:
            self._timed_out = True
            self._wakeup.set()
            return
        since = loop.time() if self._idle_since is None else self._idle_since
        self._idle_timer = loop.call_at(since + timeout, self._check_idle)

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        if self._idle_timer is not None:
            self._idle_timer.cancel()
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

    async def _serve(self, refusal: str | None) -> None:
        reason: str | None = None
        detail = ""
        peer = self.peer if isinstance(self.peer, tuple) else ("", -1)
        enter_session(ClientSession(str(peer[0]), int(peer[1]), self._principal, self.listener.name))
        try:
            if refusal is not None:
                raise AuthenticationEndedError(refusal)
            if self._gate is not None:
                await self._authenticate(self._gate)
            while True:
                frame = await self._next_frame()
                if frame is None:
                    break
                self._idle_since = None
                self._long_poll = frame.nbytes >= 2 and frame[0] == 0 and frame[1] == ApiKey.FETCH
                self._server.metrics.request_queue.observe(time.perf_counter() - self._arrived)
                reply, throttle_ms = await self._server.respond(frame)
                self._long_poll = False
                await self._write(reply)
                self._answered()
                if throttle_ms:
                    await self._mute(throttle_ms / 1000)
                self._idle_since = asyncio.get_running_loop().time()
                # Waiting for the next request must not pin this one and its answer (a Fetch answer may
                # be 55 MiB): an idle connection holds neither.
                del frame, reply
            if self._bad_prefix is not None:
                reason = "frame-size"
                detail = f"length prefix {self._bad_prefix.size} (limit {self._bad_prefix.limit})"
        except CloseConnectionError as exc:
            reason, detail = "bad-request", str(exc)
        except AuthenticationEndedError as exc:
            reason, detail = "authentication", str(exc)
            if exc.reply:
                await self._write(exc.reply)
                await self._peer_close(CLOSE_AFTER_REFUSAL_S)
        except _AuthenticationTimeoutError:
            reason = "authentication-timeout"
            detail = f"no login within {self._server.authentication_timeout_s:g} s"
        except TimeoutError:
            log.debug("closing idle connection from %s", self.peer)
        except asyncio.CancelledError:
            pass
        except Exception:  # a bug in a handler: this connection ends, the broker carries on
            log.exception("closing connection from %s after an internal error", self.peer)
            reason = "internal-error"
        finally:
            if self._idle_timer is not None:
                self._idle_timer.cancel()
            self._server.request_memory.forget(self)
            self._closing = True  # it holds nothing more
            self._queued_bytes = self._handling_bytes = 0
            self._hold_memory()
            self._server.closed(self, reason, detail)
            if self._transport is not None:
                if self._unsent:
                    self._send_unsent()
                self._transport.close()
            if not self.finished.done():
                self.finished.set_result(None)

    async def _authenticate(self, gate: SaslGate) -> None:
        """Answer frames through the gate until the login succeeded; then the session carries the user
        and frames may be as large as socket.request.max.bytes."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._server.authentication_timeout_s
        while not gate.authenticated:
            try:
                frame = await self._next_frame(deadline)
            except TimeoutError:
                raise _AuthenticationTimeoutError from None
            if frame is None:
                return
            await self._write(await gate.handle(frame, self._server.handle))
            self._answered()
        assert gate.principal is not None
        enter_session(dataclasses.replace(current_session(), principal=gate.principal))
        self._frames.max_frame_bytes = self._server.max_frame_bytes
        self._idle_since = loop.time()

    async def _mute(self, seconds: float) -> None:
        """KIP-219: read nothing from a throttled client for its throttle time (its answer already went).
        The client backs off by itself; one that does not finds its requests waiting in the socket."""
        transport = self._transport
        if transport is None:
            return
        if not self._reading_paused:
            transport.pause_reading()
        await asyncio.sleep(seconds)
        if not self._reading_paused and not transport.is_closing():
            transport.resume_reading()

    async def _peer_close(self, within_s: float) -> None:
        """Give the client a moment to read a refusal and close first: kafka-python drops an answer that
        arrives in the same read as the end of the connection."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within_s):
                while not (self._eof or self._lost):
                    self._wakeup.clear()
                    await self._wakeup.wait()

    async def _write(self, reply: list[Chunk] | None) -> None:
        if not reply or self._lost:
            return
        assert self._transport is not None
        if not self._tls:
            self._unsent.extend(reply)
            self._unsent_bytes += sum(map(len, reply))
            if self._queue and self._unsent_bytes < UNSENT_MAX_BYTES:
                # More requests are already here and are answered in this same turn of the loop (or it
                # yields): their answers go out together, in one send() at the loop's next turn.
                if not self._send_scheduled:
                    self._send_scheduled = True
                    asyncio.get_running_loop().call_soon(self._send_unsent)
                return
            self._send_unsent()
        else:
            # Encrypt no further ahead of the socket than the high-water mark: the TLS layer's buffer keeps
            # its largest size for the life of the connection, and a Fetch answer may be fetch.max.bytes.
            for chunk in tls_write_pieces(reply):
                if self._transport.is_closing():
                    return
                self._transport.write(chunk)
                if self._writable is not None and not self._writable.done():
                    await self._writable
        if self._writable is not None and not self._writable.done():
            await self._writable

    def _send_unsent(self) -> None:
        self._send_scheduled = False
        unsent, self._unsent, self._unsent_bytes = self._unsent, [], 0
        if self._transport is None or self._transport.is_closing():
            return
        for chunk in plain_write_pieces(unsent):
            self._transport.write(chunk)

    async def _next_frame(self, deadline: float | None = None) -> memoryview | None:
        """The next complete request, or None once the client is gone or sent a bad prefix."""
        while not self._queue:
            if self._eof or self._lost or self._bad_prefix is not None:
                return None
            if self._timed_out:
                raise TimeoutError
            self._wakeup.clear()
            if deadline is None:
                await self._wakeup.wait()
                continue
            timeout = min(self._server.idle_timeout_s, deadline - asyncio.get_running_loop().time())
            async with asyncio.timeout(timeout):
                await self._wakeup.wait()
        frame = self._queue.popleft()
        self._arrived = self._arrivals.popleft()
        self._queued_bytes -= len(frame)
        self._handling_bytes = len(frame)  # held until answered
        if self._paused_for_queue and self._queued_bytes <= QUEUE_PAUSE_BYTES // 2:
            self._paused_for_queue = False
            self._update_reading()
        return frame

    def _answered(self) -> None:
        """The request being handled is answered: its bytes go back to request_memory."""
        self._handling_bytes = 0
        self._hold_memory()


class _AuthenticationTimeoutError(Exception):
    """A SASL client did not log in within authentication.timeout.ms."""


def plain_write_pieces(chunks: list[Chunk]) -> list[Chunk]:
    """One response's chunks as the writes to hand a plain transport: each write is a send() when the
    socket is keeping up, and on loopback a send costs about as much as handling a small request, so a
    response's small chunks (header, a few batches, trailer) go out joined as one; record blobs of
    ``PLAIN_WRITE_JOIN_BYTES`` or more go as they are (joining would copy them)."""
    if len(chunks) < 2:
        return chunks
    out: list[Chunk] = []
    run: list[Chunk] = []
    for chunk in chunks:
        if len(chunk) < PLAIN_WRITE_JOIN_BYTES:
            run.append(chunk)
            continue
        if run:
            out.append(b"".join(run) if len(run) > 1 else run[0])
            run = []
        out.append(chunk)
    if run:
        out.append(b"".join(run) if len(run) > 1 else run[0])
    return out


def tls_write_pieces(chunks: list[Chunk]) -> list[Chunk]:
    """One response's chunks as the writes to hand a TLS transport. Runs of small chunks are joined: each
    write is encrypted into at least one TLS record, with its own overhead. Chunks above
    ``TLS_WRITE_SLICE_BYTES`` (record blobs of a Fetch) are cut into views of that size: each slice is
    encrypted and sent while it is in cache (5-10% cheaper per byte than 4 MiB at once, in
    benchmarks/tls_costs.py), and between slices ``_write`` can wait for the socket, so the TLS layer's
    buffer, which keeps its largest size for the life of the connection, stays near the high-water mark
    instead of growing to a whole answer."""
    out: list[Chunk] = []
    run: list[Chunk] = []
    size = 0
    for chunk in chunks:
        n = len(chunk)
        if n < TLS_WRITE_JOIN_BYTES:
            run.append(chunk)
            size += n
            if size >= TLS_WRITE_JOIN_BYTES:
                out.append(b"".join(run))
                run, size = [], 0
            continue
        if run:
            out.append(b"".join(run) if len(run) > 1 else run[0])
            run, size = [], 0
        if n <= TLS_WRITE_SLICE_BYTES:
            out.append(chunk)
            continue
        view = as_byte_view(chunk)
        out.extend(view[i : i + TLS_WRITE_SLICE_BYTES] for i in range(0, n, TLS_WRITE_SLICE_BYTES))
    if run:
        out.append(b"".join(run) if len(run) > 1 else run[0])
    return out
