"""Failed logins slow the next ones from the same address: a delay, never a lockout.

Each failed authentication from an address is answered only after ``base * 2^(n-1)`` seconds (n: the
failures from that address in the last ``window_s``; at most ``max_delay_s``), and the next
attempt from it waits the current delay before its handshake is answered. A success from the address
clears its count. Nothing is keyed by user name, so an attacker cannot slow down a real user's logins
from elsewhere. The table is bounded: the oldest addresses are forgotten first.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable

WINDOW_S = 60.0
MAX_FACTOR = 32
MAX_ADDRESSES = 10_000


class FailedLoginThrottle:
    def __init__(
        self,
        base_delay_s: float,
        max_delay_s: float | None = None,
        *,
        window_s: float = WINDOW_S,
        max_addresses: int = MAX_ADDRESSES,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_delay_s = base_delay_s
        self._window_s = window_s
        self._max_delay_s = (
            base_delay_s * MAX_FACTOR if max_delay_s is None else max(max_delay_s, base_delay_s)
        )
        self._max_addresses = max_addresses
        self._now = now
        # address -> (failures in the window, time of the last one); oldest first
        self._failures: collections.OrderedDict[str, tuple[int, float]] = collections.OrderedDict()

    def _count(self, address: str) -> int:
        entry = self._failures.get(address)
        if entry is None:
            return 0
        count, last = entry
        if self._now() - last > self._window_s:
            del self._failures[address]
            return 0
        return count

    def _delay(self, count: int) -> float:
        return 0.0 if count == 0 else min(self.base_delay_s * 2 ** min(count - 1, 32), self._max_delay_s)

    def before_attempt(self, address: str) -> float:
        """How long a new authentication from ``address`` waits before it is answered."""
        return self._delay(self._count(address))

    def failed(self, address: str) -> float:
        """Record a failure; how long to wait before answering it."""
        count = self._count(address) + 1
        self._failures[address] = (count, self._now())
        self._failures.move_to_end(address)
        while len(self._failures) > self._max_addresses:
            self._failures.popitem(last=False)
        return self._delay(count)

    def succeeded(self, address: str) -> None:
        self._failures.pop(address, None)
