"""RetentionJob: applies the retention policy to every partition, as a periodic background task."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from logq.clock import Clock
from logq.errors import StorageError
from logq.retention.policy import select_deletable
from logq.segments.log import PartitionLog

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RetentionStats:
    runs: int
    segments_deleted: int
    bytes_deleted: int


class RetentionJob:
    """Each run: roll idle active segments older than segment.ms (so they can age out), delete what
    the policy selects (one log line per segment, with the reason), and unlink deleted files whose
    file.delete.delay.ms has passed."""

    def __init__(self, logs: Callable[[], Iterable[PartitionLog]], clock: Clock, interval_ms: int) -> None:
        self._logs = logs
        self._clock = clock
        self._interval_ms = interval_ms
        self._interval_changed = asyncio.Event()
        self._runs = 0
        self._segments_deleted = 0
        self._bytes_deleted = 0

    def run_once(self) -> int:
        """One pass over every partition; returns the number of segments deleted. Blocking."""
        deleted = 0
        for partition_log in self._logs():
            try:
                deleted += self._apply(partition_log)
            except (StorageError, OSError) as exc:  # a log closed or deleted under us, a failing disk
                log.debug("retention skipped %s: %s", partition_log.name, exc)
        self._runs += 1
        return deleted

    def _apply(self, partition_log: PartitionLog) -> int:
        config = partition_log.config
        try:
            partition_log.roll_if_aged()
        except StorageError as exc:  # e.g. a full disk, where deleting old segments is what frees space
            log.debug("retention could not roll %s: %s", partition_log.name, exc)
        deleted = 0
        with partition_log.maintenance:  # never while the log cleaner rewrites these segments
            deletions = select_deletable(
                partition_log.segment_infos(),
                now_ms=self._clock.time_ms(),
                retention_ms=config.retention_ms,
                retention_bytes=config.retention_bytes,
                high_watermark=partition_log.high_watermark,
                log_start_offset=partition_log.log_start_offset,
                cleanup_policy=config.cleanup_policy,
            )
            for deletion in deletions:
                if partition_log.delete_oldest_segments(1, deletion.reason) != 1:
                    break
                deleted += 1
                self._segments_deleted += 1
                self._bytes_deleted += deletion.size
        partition_log.purge_deleted()
        return deleted

    def set_interval(self, interval_ms: int) -> None:
        """A new retention.check.interval.ms (a dynamic broker setting): the wait going on is cut short
        when the new period has already passed."""
        if interval_ms != self._interval_ms:
            self._interval_ms = interval_ms
            self._interval_changed.set()

    async def run(self) -> None:
        """Run every retention.check.interval.ms (with 10% jitter) until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            jitter = random.uniform(0.9, 1.1)
            while (remaining := started + self._interval_ms / 1000 * jitter - loop.time()) > 0:
                # a timer, not asyncio.wait_for, which may swallow a cancellation (Python 3.11)
                self._interval_changed.clear()
                timer = loop.call_later(remaining, self._interval_changed.set)
                try:
                    await self._interval_changed.wait()
                finally:
                    timer.cancel()
            await asyncio.to_thread(self.run_once)

    def statistics(self) -> RetentionStats:
        return RetentionStats(self._runs, self._segments_deleted, self._bytes_deleted)
