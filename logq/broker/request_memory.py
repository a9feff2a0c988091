"""The broker-wide bound on requests read but not yet answered (``queued.max.request.bytes``), as
Kafka's memory pool: each connection says how many bytes it holds, complete requests (queued or being
handled) and the buffer of the one it is receiving. While the total is at the bound, a connection that
receives more stops reading from its socket and waits here; waiters are resumed, in the order they
came, as answered requests give bytes back.

The bytes held are what was received, not what a size prefix claims: a client that sends a prefix and
stops holds nothing much (reserving the claimed size up front would let a few such clients stall
everyone). The price is that the bound can be reached by requests that are all half-received, with
nothing being answered that would free room: then the first waiter is let through alone until its
request is complete (it can then be answered), which also serves a request larger than the bound.
Pure bookkeeping: the connections pause and resume their transports themselves.
"""

from __future__ import annotations

from typing import Protocol


class Waiter(Protocol):
    @property
    def receiving_bytes(self) -> int:
        """Bytes of the request this connection is receiving (0 between requests)."""

    def memory_available(self, *, alone: bool) -> None:
        """Resume reading; ``alone``: past the bound, until the request being received is complete
        (then call ``RequestMemory.completed``)."""


class RequestMemory:
    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"queued.max.request.bytes must be at least 1, not {limit}")
        self.limit = limit
        self.complete = 0  # bytes of complete requests, queued or being handled
        self.receiving = 0  # bytes of the buffers of requests being received
        self._waiting: dict[Waiter, None] = {}  # insertion-ordered: first come, first resumed
        self._alone: Waiter | None = None  # let through past the bound

    @property
    def used(self) -> int:
        return self.complete + self.receiving

    @property
    def exhausted(self) -> bool:
        return self.used >= self.limit

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def update(self, complete: int, receiving: int) -> None:
        """A connection's holdings changed by these (signed) amounts."""
        self.complete += complete
        self.receiving += receiving
        if complete < 0 or receiving < 0:
            self._resume()

    def wait(self, waiter: Waiter) -> None:
        self._waiting[waiter] = None
        self._resume()

    def completed(self, waiter: Waiter) -> None:
        """The waiter let through alone has received its request (or left)."""
        if self._alone is waiter:
            self._alone = None
            self._resume()

    def forget(self, waiter: Waiter) -> None:
        """A connection closed."""
        self._waiting.pop(waiter, None)
        self.completed(waiter)

    def _resume(self) -> None:
        while self._waiting and not self.exhausted:
            self._next_waiter().memory_available(alone=False)
        if self._waiting and self.complete == 0 and self._alone is None:
            # Everything held is half-received and nothing being answered will free room: the first
            # waiter in the middle of a request finishes it. (None is: those half-received requests are
            # on connections that will wait here as soon as they receive more.)
            half_received = next((w for w in self._waiting if w.receiving_bytes), None)
            if half_received is not None:
                del self._waiting[half_received]
                self._alone = half_received
                half_received.memory_available(alone=True)

    def _next_waiter(self) -> Waiter:
        waiter = next(iter(self._waiting))
        del self._waiting[waiter]
        return waiter
