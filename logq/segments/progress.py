"""Progress lines for the long jobs of a data directory (loading it, creating many partitions), so that a
broker busy with 10,000 partitions says what it is doing instead of going quiet for minutes."""

from __future__ import annotations

import logging
import time

PROGRESS_EVERY_S = 5.0


class Progress:
    """``step(done)`` logs "<doing>: <done> of <total> partitions (<s> s)" at most every ``every_s``
    seconds, until the last; ``elapsed`` is what the caller's last line reports."""

    def __init__(
        self, log: logging.Logger, doing: str, total: int, *, every_s: float = PROGRESS_EVERY_S
    ) -> None:
        self._log = log
        self._doing = doing
        self._total = total
        self._every_s = every_s
        self._started = time.monotonic()
        self._next_line = self._started + every_s

    def step(self, done: int) -> None:
        now = time.monotonic()
        if now >= self._next_line and done < self._total:  # the caller's last line reports the end
            self._next_line = now + self._every_s
            self._log.info(
                "%s: %d of %d partitions (%.1f s)", self._doing, done, self._total, now - self._started
            )

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._started
