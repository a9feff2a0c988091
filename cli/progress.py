"""A progress line for long produces and consumes: one line on stderr, rewritten in place, only when
stderr is a terminal (pipes and files never see it)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import IO

SHOW_AFTER_S = 1.0  # short runs print nothing extra
EVERY_S = 0.5
_CLEAR = "\r\x1b[K"  # carriage return, then erase to the end of the line


class ProgressLine:
    """``render()`` (called from a thread of its own, so a command blocked reading its input still shows
    progress) every half second, from the first second on, until ``stop()``, which clears the line."""

    def __init__(self, render: Callable[[], str], *, enabled: bool, stream: IO[str] | None = None) -> None:
        self._render = render
        self._stream = stream or sys.stderr
        self.enabled = enabled
        self._stopped = threading.Event()
        self._shown = False
        self._thread: threading.Thread | None = None

    def start(self) -> ProgressLine:
        if self.enabled:
            self._thread = threading.Thread(target=self._run, name="logq-progress", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        if self._stopped.wait(SHOW_AFTER_S):
            return
        while not self._stopped.is_set():
            self._stream.write(_CLEAR + self._render())
            self._stream.flush()
            self._shown = True
            self._stopped.wait(EVERY_S)

    def stop(self) -> None:
        """Stop and clear the line (idempotent)."""
        self._stopped.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._shown:
            self._stream.write(_CLEAR)
            self._stream.flush()
            self._shown = False

    def __enter__(self) -> ProgressLine:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def stderr_is_terminal() -> bool:
    return sys.stderr.isatty()


def output_is_terminal() -> bool:
    return sys.stdout.isatty()
