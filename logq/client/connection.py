"""One asyncio connection to a broker: requests are pipelined, and answers are matched to them in order.

A broker answers the requests of a connection in the order it received them, so the answer at the head
of the wire belongs to the oldest request still waiting; a correlation id that does not match means the
stream is out of sync, and the connection fails every waiting request and closes (as aiokafka's
``conn.py`` does). acks=0 Produce gets no answer and is not queued for one.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import os
import socket
import ssl
from dataclasses import dataclass
from typing import Any

from logq.client.security import SecuritySettings, authenticate
from logq.error_codes import ErrorCode
from logq.errors import AuthenticationError, BrokerUnavailableError
from logq.protocol import FrameBuffer, encode_request_chunks, expects_response
from logq.protocol.apis import API_SPECS, ApiKey, spec_for_request
from logq.protocol.client import decode_response_as
from logq.protocol.messages import ApiVersionsRequest

READ_SIZE = 1 << 20
NOT_KAFKA = "not a Kafka/logq broker?"
HINT_SECURITY = " (does this listener want TLS or SASL? see security_protocol, docs/security.md)"


class BrokerConnectionError(BrokerUnavailableError, ConnectionError):
    """The connection to a broker failed or was closed; the message names the broker, ``reason`` says
    what happened without naming it (for messages that name it once already)."""

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason or message


@dataclass(slots=True)
class _Waiting:
    correlation_id: int
    response_type: type[Any]
    version: int
    future: asyncio.Future[Any]


class BrokerConnection:
    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, address: str, client_id: str
    ):
        self.address = address
        self.client_id = client_id
        self.versions: dict[int, tuple[int, int]] = {}  # api key -> the broker's (min, max)
        self._reader = reader
        self._writer = writer
        self._waiting: collections.deque[_Waiting] = collections.deque()
        self._ids = itertools.count(1)
        self._closed: BaseException | None = None
        self.plaintext = True  # no TLS and no SASL: a broker that closes may want them
        # KIP-219: after an answer with throttle_time_ms, send nothing more until that time has passed
        # (the broker is not reading this connection meanwhile). Every request waits on the same future,
        # so they still go out in the order they were made.
        self.throttled_until = 0.0  # loop time
        self._throttle_gate: asyncio.Future[None] | None = None
        self._throttle_timer: asyncio.TimerHandle | None = None
        self._task = asyncio.create_task(self._read_loop(), name=f"logq-conn-{address}")

    @classmethod
    async def open(
        cls,
        host: str,
        port: int,
        *,
        client_id: str = "logq",
        timeout_s: float = 10.0,
        security: SecuritySettings | None = None,
    ) -> BrokerConnection:
        """Connect (TLS, if ``security`` says so), learn the broker's API versions (ApiVersions v2,
        falling back to v0: docs/protocol.md, "ApiVersions negotiation"), then log in (SASL) if ``security``
        says so.
        AuthenticationError when the TLS handshake or the login is refused."""
        context = security.ssl_context() if security is not None else None
        try:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for drops a connection that completes
            # just as the caller is cancelled, and its socket is left open.
            async with asyncio.timeout(timeout_s):
                reader, writer = await asyncio.open_connection(
                    host, port, ssl=context, server_hostname=host if context else None
                )
        except TimeoutError:
            reason = f"no connection within {timeout_s:g} s"
            raise BrokerConnectionError(f"cannot connect to {host}:{port}: {reason}", reason=reason) from None
        except ssl.SSLError as exc:
            raise AuthenticationError(
                f"TLS handshake with {host}:{port} failed: {_tls_failure(exc)}"
            ) from None
        except OSError as exc:
            reason = _connect_failure(exc)
            raise BrokerConnectionError(f"cannot connect to {host}:{port}: {reason}", reason=reason) from None
        connection = cls(reader, writer, f"{host}:{port}", client_id)
        connection.plaintext = security is None or security.security_protocol == "PLAINTEXT"
        try:
            answer = await connection.request(ApiVersionsRequest(), 2, timeout_s=timeout_s)
            if answer.error_code == ErrorCode.UNSUPPORTED_VERSION:
                answer = await connection.request(ApiVersionsRequest(), 0, timeout_s=timeout_s)
            if security is not None and security.uses_sasl:

                async def send(body: Any, version: int) -> Any:
                    return await connection.request(body, version, timeout_s=timeout_s)

                await authenticate(security, send, f"{host}:{port}")
        except TimeoutError:
            await connection.close()
            reason = f"no answer to ApiVersions within {timeout_s:g} s ({NOT_KAFKA})"
            raise BrokerConnectionError(f"{host}:{port}: {reason}", reason=reason) from None
        except BaseException:
            await connection.close()
            raise
        connection.versions = {k.api_key: (k.min_version, k.max_version) for k in answer.api_keys}
        return connection

    def version_for(self, api_key: ApiKey) -> int:
        """The highest version both sides speak; BrokerConnectionError if there is none."""
        ours = API_SPECS[api_key]
        low, high = self.versions.get(api_key, (1, 0))
        version = min(high, ours.max_version)
        if version < max(low, ours.min_version):
            raise BrokerConnectionError(
                f"{self.address} does not serve {api_key.name} in a version logq speaks"
            )
        return version

    async def request(self, body: Any, version: int, *, timeout_s: float | None = 30.0) -> Any:
        """Send ``body`` at ``version``; the decoded answer, or None for acks=0 Produce."""
        gate = self._throttle_gate
        if gate is not None:
            await asyncio.shield(gate)  # a cancelled request must not open the gate for the others
        if self._closed is not None:
            raise BrokerConnectionError(f"connection to {self.address} is closed: {self._closed}")
        correlation_id = next(self._ids)
        spec = spec_for_request(type(body))
        self._writer.writelines(encode_request_chunks(body, version, correlation_id, self.client_id))
        if not expects_response(body):
            await self._drain()
            return None
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiting(correlation_id, spec.response_type, version, future))
        await self._drain()
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout_s)
        except TimeoutError:
            # The answer may still come: the connection is out of step with us now, so give it up.
            reason = f"no answer within {timeout_s:g} s"
            self._fail(BrokerConnectionError(f"{self.address}: {reason}", reason=reason))
            raise

    async def _drain(self) -> None:
        try:
            await self._writer.drain()
        except OSError as exc:  # reset or broken pipe: the connection is gone for every request
            reason = _connect_failure(exc)
            error = BrokerConnectionError(f"{self.address}: {reason}", reason=reason)
            self._fail(error)
            raise error from None

    async def _read_loop(self) -> None:
        frames = FrameBuffer()
        answered = False
        try:
            while True:
                data = await self._reader.read(READ_SIZE)
                if not data:
                    reason = "it closed the connection" + (HINT_SECURITY if self.plaintext else "")
                    raise BrokerConnectionError(f"{self.address}: {reason}", reason=reason)
                if not answered:
                    answered = True
                    _check_first_bytes(self.address, data)
                for frame in frames.feed(data):
                    if not self._waiting:
                        raise BrokerConnectionError(f"{self.address} sent an answer nobody asked for")
                    head = self._waiting.popleft()
                    correlation_id, body = decode_response_as(frame, head.response_type, head.version)
                    if correlation_id != head.correlation_id:
                        expected = head.correlation_id
                        raise BrokerConnectionError(
                            f"{self.address} answered correlation id {correlation_id}, expected {expected}"
                        )
                    throttle_ms = getattr(body, "throttle_time_ms", 0)
                    if throttle_ms > 0:
                        self._throttle(throttle_ms)
                    if not head.future.done():
                        head.future.set_result(body)
        except asyncio.CancelledError:
            self._fail(BrokerConnectionError("closed"))
        except Exception as exc:  # any failure ends the connection for every waiting request
            if not isinstance(exc, BrokerConnectionError):
                reason = str(exc) if self.versions else f"{exc} ({NOT_KAFKA})"
                exc = BrokerConnectionError(f"{self.address}: {reason}", reason=reason)
            self._fail(exc)

    def _throttle(self, throttle_ms: int) -> None:
        loop = asyncio.get_running_loop()
        until = loop.time() + throttle_ms / 1000
        if until <= self.throttled_until:
            return
        self.throttled_until = until
        if self._throttle_gate is None:
            self._throttle_gate = loop.create_future()
        if self._throttle_timer is not None:
            self._throttle_timer.cancel()
        self._throttle_timer = loop.call_at(until, self._open_gate)

    def _open_gate(self) -> None:
        gate, self._throttle_gate = self._throttle_gate, None
        if gate is not None and not gate.done():
            gate.set_result(None)

    def _fail(self, exc: BaseException) -> None:
        if self._throttle_timer is not None:
            self._throttle_timer.cancel()
        self._open_gate()  # waiting requests find the connection closed
        if self._closed is None:
            self._closed = exc
        while self._waiting:
            waiting = self._waiting.popleft()
            if not waiting.future.done():
                waiting.future.set_exception(exc)
                waiting.future.exception()  # its waiter may be gone (cancelled or timed out): no warning
        self._writer.close()

    @property
    def closed(self) -> bool:
        return self._closed is not None

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._fail(BrokerConnectionError("closed"))
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()


def _connect_failure(exc: OSError) -> str:
    """What a failed connect or send means, in words (asyncio's own text repeats the address)."""
    if isinstance(exc, socket.gaierror):
        return f"unknown host ({exc.strerror})"
    if exc.errno is not None and exc.errno > 0:
        return os.strerror(exc.errno).lower()
    return str(exc)


def _tls_failure(exc: ssl.SSLError) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"the broker's certificate could not be verified ({exc.verify_message}): check ssl_cafile"
    return exc.reason or str(exc)


def _check_first_bytes(address: str, data: bytes) -> None:
    """A peer that answers the first request in HTTP (a metrics or web port given as a broker) would
    otherwise show up as a nonsensical frame size."""
    head = data.lstrip()[:5]
    if head.startswith((b"HTTP/", b"<")):
        reason = f"it answered in HTTP, not the Kafka protocol ({NOT_KAFKA})"
        raise BrokerConnectionError(f"{address}: {reason}", reason=reason)
