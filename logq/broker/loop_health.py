"""What keeps the event loop from answering requests: its stalls and the garbage collector's pauses.

Every request is answered by one event loop thread, so anything that holds it (a long handler, a C call
that keeps the GIL, a garbage collection over a large heap) delays every connection at once: it is what a
latency tail is made of. Both are measured all the time and exported (``logq/broker/metrics.py``):

- a tick every ``TICK_S`` on the loop, and how late it ran (a stall is a late tick);
- each garbage collection's duration, through ``gc.callbacks`` (a collection runs on whichever thread
  triggered it, and every Python thread waits for it).

The longest of each over the last ``WINDOW_S`` is kept for the gauges an operator watches.
"""

from __future__ import annotations

import asyncio
import collections
import gc
import threading
import time
from collections.abc import Callable

TICK_S = 0.01
WINDOW_S = 60.0
NOTABLE_S = 0.001  # shorter delays are not kept for the window's longest


class WindowMax:
    """The largest value noted in the last ``window_s`` seconds (0.0 when none); noted on the event loop,
    read by the metrics endpoint's thread."""

    def __init__(self, window_s: float = WINDOW_S) -> None:
        self._window_s = window_s
        self._values: collections.deque[tuple[float, float]] = collections.deque()
        self._lock = threading.Lock()

    def note(self, value: float, now: float | None = None) -> None:
        if value < NOTABLE_S:
            return
        now = time.monotonic() if now is None else now
        with self._lock:
            self._values.append((now, value))
            self._trim(now)

    def longest(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._trim(now)
            return max((value for _, value in self._values), default=0.0)

    def _trim(self, now: float) -> None:
        while self._values and self._values[0][0] < now - self._window_s:
            self._values.popleft()


class LoopHealth:
    """Watches one event loop and the process's garbage collections; ``observe_*`` feed the metrics."""

    def __init__(
        self,
        observe_stall: Callable[[float], None] | None = None,
        observe_gc: Callable[[int, float], None] | None = None,
    ) -> None:
        self.stalls = WindowMax()
        self.gc_pauses = WindowMax()
        self._observe_stall = observe_stall
        self._observe_gc = observe_gc  # (generation, seconds)
        self._gc_started = 0.0
        # Filled by the collector's callback, drained on the loop: the callback may run while any lock is
        # held by its thread (a metric's included), so it takes none and only appends (atomic under the GIL).
        self._gc_done: list[tuple[int, float]] = []

    async def watch_loop(self) -> None:
        """Tick until cancelled; each tick's lateness is a stall of the loop."""
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + TICK_S
            await asyncio.sleep(TICK_S)
            late = max(0.0, loop.time() - due)
            self.stalls.note(late)
            if self._observe_stall is not None:
                self._observe_stall(late)
            if self._gc_done:
                self._drain_gc()

    def _drain_gc(self) -> None:
        done, self._gc_done = self._gc_done, []
        for generation, pause in done:
            self.gc_pauses.note(pause)
            if self._observe_gc is not None:
                self._observe_gc(generation, pause)

    def watch_gc(self) -> None:
        gc.callbacks.append(self._on_gc)

    def unwatch_gc(self) -> None:
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            self._gc_done.append((info.get("generation", -1), time.perf_counter() - self._gc_started))
