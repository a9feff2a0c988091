"""The broker-wide bound on requests read but not yet answered (``queued.max.request.bytes``), as
Kafka's memory pool: a connection takes the bytes of each request it receives and gives them back once
the request is answered. A connection about to receive a request while the pool is used up stops
reading from its socket and waits here; it is resumed, in the order connections came, as answers give
bytes back.

A large request reserves its whole size as soon as its size prefix is known, and only while the pool is
not used up: so it may take the pool past its limit (by at most one request), which lets a request
larger than the limit be served rather than wait forever, and once it has started it is never paused
half-received (requests paused half-way, each holding part of the pool, could wait on each other for
good). Pure bookkeeping: the connections pause and resume their transports themselves.
"""

from __future__ import annotations

from typing import Protocol


class Waiter(Protocol):
    def memory_available(self) -> None:
        """The pool has room again: take what is needed and resume reading."""


class RequestMemory:
    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"queued.max.request.bytes must be at least 1, not {limit}")
        self.limit = limit
        self.used = 0
        self._waiting: dict[Waiter, None] = {}  # insertion-ordered: first come, first resumed

    @property
    def exhausted(self) -> bool:
        return self.used >= self.limit

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def take(self, nbytes: int) -> None:
        self.used += nbytes

    def give_back(self, nbytes: int) -> None:
        self.used -= nbytes
        while self._waiting and not self.exhausted:
            waiter = next(iter(self._waiting))
            del self._waiting[waiter]
            waiter.memory_available()

    def wait(self, waiter: Waiter) -> None:
        self._waiting[waiter] = None

    def forget(self, waiter: Waiter) -> None:
        self._waiting.pop(waiter, None)
