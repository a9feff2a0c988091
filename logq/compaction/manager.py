"""LogCleaner: the cleaner thread (after Kafka's LogCleaner and LogCleanerManager).

One thread, started and stopped by the broker, so cleaning never runs on the event loop; the CPU work
of a pass (mapping keys, rewriting records: ``cleaner.run_pass``) runs in one worker process, so that
it never holds the broker's GIL either (a busy Python thread delays every other thread of its process
by up to the GIL's switch interval at each syscall, which stalled the event loop by 100 ms and more).
Each round it looks at every hosted log whose cleanup.policy includes compact (its config read
afresh: a setting changed at run time is in force at the next round), cleans the filthiest one that is
due (dirty ratio at least min.cleanable.dirty.ratio, a record older than max.compaction.lag.ms, or
tombstones past their delete horizon), and sleeps log.cleaner.backoff.ms when none is. A log is
cleaned only while its ``maintenance`` lock is free, so never while the retention job deletes from it;
the log's own lock is taken only for the swap. Every replica cleans its own copy, as in Kafka.

``LOGQ_CLEANER_CRASH_AT=<step>`` (tests only) kills the broker with SIGKILL at a step of the swap:
``cleaned`` (the cleaned file is written), ``swap`` (renamed to ``.swap``), ``old-deleted``,
``renamed``, ``done`` (see ``PartitionLog.replace_segments``).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable, Iterable

from logq.clock import Clock
from logq.compaction.cleaner import (
    CleanerStats,
    CleanResult,
    DirtySection,
    PassOutput,
    PassPlan,
    clean_log,
    dirty_section,
)
from logq.compaction.worker import CleaningStoppedError, WorkerProcess
from logq.config import LogConfig
from logq.errors import LogqError
from logq.segments.log import PartitionLog

log = logging.getLogger(__name__)

CRASH_AT_ENV = "LOGQ_CLEANER_CRASH_AT"


def crash_point_from_environment() -> Callable[[str], None]:
    wanted = os.environ.get(CRASH_AT_ENV, "")

    def crash_point(step: str) -> None:
        if step == wanted:
            log.warning("%s=%s: killing the broker at this step of a swap", CRASH_AT_ENV, step)
            for handler in logging.getLogger().handlers:
                handler.flush()
            os.kill(os.getpid(), signal.SIGKILL)

    return crash_point


class LogCleaner:
    def __init__(
        self,
        logs: Callable[[], Iterable[PartitionLog]],
        clock: Clock,
        config: LogConfig,
        *,
        run: Callable[[PassPlan], PassOutput] | None = None,
    ) -> None:
        """``run``: how a pass's file work is done (default: in the worker process; tests may pass
        ``cleaner.run_pass`` to do it in this thread)."""
        self._logs = logs
        self._clock = clock
        self._backoff_s = config.cleaner_backoff_ms / 1000
        self._buffer_bytes = config.cleaner_dedupe_buffer_size
        self._stopping = threading.Event()
        self._worker = WorkerProcess(self._stopping.is_set) if run is None else None
        self._run_pass = run if run is not None else self._worker_run
        self._crash_point = crash_point_from_environment()
        self._thread: threading.Thread | None = None
        self._passes = 0
        self._bytes_read = 0
        self._bytes_reclaimed = 0
        self._max_dirty_ratio = 0.0
        # per log: the earliest delete horizon of the tombstones its last pass left (a pass is due then)
        self._horizons: dict[str, int] = {}

    def set_backoff_ms(self, backoff_ms: int) -> None:
        """log.cleaner.backoff.ms changed (a dynamic broker setting): the next idle wait uses it."""
        self._backoff_s = backoff_ms / 1000

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="log-cleaner", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread; a pass under way is abandoned between two batches (before its next swap).
        Blocking: the broker calls it off the event loop."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
        if self._worker is not None:
            self._worker.close()

    def _worker_run(self, plan: PassPlan) -> PassOutput:
        assert self._worker is not None
        return self._worker.run(plan)

    def statistics(self) -> CleanerStats:
        return CleanerStats(self._passes, self._bytes_read, self._bytes_reclaimed, self._max_dirty_ratio)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                result = self.run_once()
            except CleaningStoppedError:
                return
            except Exception:  # the thread must outlive one bad log; the next round tries again
                log.exception("log cleaner round failed")
                result = None
            if result is None:
                self._stopping.wait(self._backoff_s)

    def run_once(self) -> CleanResult | None:
        """Clean the filthiest log that is due, if any. Blocking."""
        now = self._clock.time_ms()
        due: list[tuple[float, PartitionLog]] = []
        max_ratio = 0.0
        for plog in self._logs():
            section = self._section(plog, now)
            if section is not None:
                max_ratio = max(max_ratio, section.ratio)
                if section.due(plog.config, tombstones_expired=self._expired(plog, now)):
                    due.append((section.ratio, plog))
        self._max_dirty_ratio = max_ratio
        for _, plog in sorted(due, key=lambda pair: -pair[0]):
            if not plog.maintenance.acquire(blocking=False):  # retention is deleting from it
                continue
            try:
                result = self._clean(plog)
            finally:
                plog.maintenance.release()
            if result is not None:
                return result
        return None

    def _expired(self, plog: PartitionLog, now: int) -> bool:
        return 0 <= self._horizons.get(plog.name, -1) <= now

    def _section(self, plog: PartitionLog, now: int) -> DirtySection | None:
        if plog.closed:
            return None
        try:
            return dirty_section(plog, now)
        except (LogqError, OSError) as exc:  # closed or deleted under us
            log.debug("log cleaner skipped %s: %s", plog.name, exc)
            return None

    def _clean(self, plog: PartitionLog) -> CleanResult | None:
        now = self._clock.time_ms()
        section = self._section(plog, now)  # again, now that retention is kept away
        if section is None or not section.due(plog.config, tombstones_expired=self._expired(plog, now)):
            return None
        try:
            result = clean_log(
                plog, section, run=self._run_pass, buffer_bytes=self._buffer_bytes,
                crash_point=self._crash_point, now_ms=now,
            )  # fmt: skip
        except (LogqError, OSError) as exc:
            log.warning("log cleaner could not clean %s: %s", plog.name, exc)
            return None
        if result is None:
            return None
        self._horizons[plog.name] = result.delete_horizon
        self._passes += 1
        self._bytes_read += result.bytes_read
        self._bytes_reclaimed += result.bytes_before - result.bytes_after
        log.info(
            "cleaned %s: offsets %d-%d, %d segments of %d bytes -> %d segments of %d bytes "
            "in %.3f s (%.1f MB/s read)",
            result.partition, section.segments[0].base_offset, result.cleaned_to - 1,
            result.segments_before, result.bytes_before, result.segments_after, result.bytes_after,
            result.seconds, result.bytes_read / 1e6 / max(result.seconds, 1e-6),
        )  # fmt: skip
        return result
