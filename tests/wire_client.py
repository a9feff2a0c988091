"""A tiny blocking Kafka-protocol client over a real socket, built on logq.protocol, for broker tests
that need to send exact (or deliberately broken) requests."""

from __future__ import annotations

import socket
import struct
from typing import Any, TypeVar

from logq.protocol import encode_request
from logq.protocol.apis import spec_for_request
from logq.protocol.client import decode_response_as
from logq.protocol.messages import ProduceRequest

T = TypeVar("T")


class WireClient:
    def __init__(self, bootstrap: str, timeout: float = 10.0, source: str | None = None) -> None:
        """``source``: the local address to connect from (another 127.x address of the loopback)."""
        host, port = bootstrap.rsplit(":", 1)
        self.sock = socket.create_connection(
            (host, int(port)), timeout=timeout, source_address=(source, 0) if source else None
        )
        self._correlation = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> WireClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, body: Any, version: int, client_id: str | None = "wire-test") -> int:
        self._correlation += 1
        self.sock.sendall(encode_request(body, version, self._correlation, client_id))
        return self._correlation

    def call(self, body: Any, version: int) -> Any:
        """Send a request and return the decoded response body (None for acks=0 Produce)."""
        correlation = self.send(body, version)
        if isinstance(body, ProduceRequest) and body.acks == 0:
            return None
        return self.receive(body, version, correlation)

    def receive(self, body: Any, version: int, correlation: int) -> Any:
        frame = self.read_frame()
        got, response = decode_response_as(frame, spec_for_request(type(body)).response_type, version)
        assert got == correlation, f"correlation id {got}, expected {correlation}"
        return response

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_frame(self) -> bytes:
        size = struct.unpack(">i", self._read_exactly(4))[0]
        return self._read_exactly(size)

    def _read_exactly(self, n: int) -> bytes:
        out = bytearray()
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise ConnectionError("the broker closed the connection")
            out += chunk
        return bytes(out)

    def is_closed_by_peer(self, timeout: float = 5.0) -> bool:
        """True if the broker closes the connection (EOF or reset) within ``timeout``."""
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False
