"""SIGTERM treated as Ctrl-C (SIGINT) by the long-running commands (consume, produce, perf): what `kill`,
systemd or Kubernetes send must also let a consumer commit and leave its group, and a producer deliver
what it holds, instead of ending the process mid-way.

The first signal only asks the command to stop: it stops at its next safe point (between two polls,
between two messages), so no KeyboardInterrupt lands in the middle of appending a record to a batch or
printing a message. In ``interruptible(wait)`` (a wait that would not end on its own, such as reading the
next input line) the first signal raises KeyboardInterrupt; a second signal raises it anywhere, as a
second Ctrl-C stops a command that takes too long to stop.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import TypeVar

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
T = TypeVar("T")


class StopRequest:
    """``requested`` once a stop signal came (``signal_name`` says which)."""

    def __init__(self) -> None:
        self.requested = False
        self.signal_name = ""
        self._raising = False

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        again = self.requested
        self.requested = True
        self.signal_name = self.signal_name or signal.Signals(signum).name
        if again or self._raising:
            raise KeyboardInterrupt

    def interruptible(self, wait: Callable[[], T]) -> T:
        """``wait()``, which the first signal interrupts too (KeyboardInterrupt; at once if it came just
        before). A plain call, not a context manager: it runs once per input line."""
        self._raising = True
        try:
            if self.requested:
                raise KeyboardInterrupt
            return wait()
        finally:
            self._raising = False


@contextlib.contextmanager
def stop_on_signals() -> Iterator[StopRequest]:
    """SIGINT and SIGTERM handled alike while inside (see the module's documentation); the previous
    handlers come back on exit. Outside the main thread (where Python cannot install handlers) the
    signals keep their handlers and ``requested`` stays False."""
    stop = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = {sig: signal.signal(sig, stop._handle) for sig in STOP_SIGNALS}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
