"""The write health of one data directory, shared by its partition logs: fine, full, or offline.

Two kinds of storage failure, with different outcomes (docs/architecture.md, "A full disk, a failed
fsync"):

- **Full.** No space (ENOSPC, EDQUOT) for a segment write or a new segment file. The write is cut back,
  so the log is exactly what it was: that append fails with DiskFullError, and the next one simply tries
  again. The directory counts as full until an append succeeds; appends resume by themselves once space
  is freed. Meanwhile, with less than ``INDEX_HEADROOM_BYTES`` free, index writes wait in memory (a
  failed one would stop RocksDB for good): flushes still fsync the segments, so acknowledgements go on
  as long as appends fit (e.g. into blocks the segment reserved earlier).
- **Offline.** A failure whose effect on the disk is unknown: a failed fsync (the kernel may have dropped
  the pages it could not write, and a later fsync can report success over the hole), a failed index
  write (RocksDB refuses every write after a failed one), a write that could not be cut back, a failed
  truncation or rename. From then on nothing is appended, flushed or truncated in the directory and no
  durable offset moves, so nothing that might not be on disk is ever acknowledged. Only a restart brings
  it back: recovery rebuilds every log from what the disk holds.

Each transition is logged once, at ERROR, naming the directory and its free space (a directory hovering
at full logs at most once a minute); the counters feed the broker's metrics.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from collections import Counter
from pathlib import Path

from logq.errors import DiskFullError, LogDirOfflineError

log = logging.getLogger(__name__)

# no_space: an append refused (the directory stays online); the others take the directory offline
ERROR_KINDS = ("no_space", "fsync", "write", "index")
_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
# Below this much free space the index's (RocksDB) writes wait in memory: RocksDB refuses every write
# after a failed one, and they are a few KiB at a time.
INDEX_HEADROOM_BYTES = 1 << 20
_RELOG_FULL_S = 60.0


def is_disk_full(exc: BaseException) -> bool:
    """Whether a failed write failed for want of space (and nothing else)."""
    return isinstance(exc, OSError) and exc.errno in _FULL_ERRNOS


class StorageHealth:
    """Thread-safe. ``full`` and ``offline`` are plain attributes so that the append path reads them
    without a lock; transitions take the lock, so each is logged once."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.full = False  # the last append failed for want of space; cleared by the next that succeeds
        self.offline = False  # for good: only a restart brings the directory back
        self.offline_cause = ""
        self.index_headroom = INDEX_HEADROOM_BYTES
        self.errors: Counter[str] = Counter()  # by kind, one of ERROR_KINDS
        self._lock = threading.Lock()
        self._full_logged_at = -_RELOG_FULL_S
        self._full_logged = False  # this episode of full was logged: so is its end

    def free_bytes(self) -> int:
        """Bytes available to the broker on the directory's filesystem; -1 if it cannot be asked."""
        try:
            st = os.statvfs(self.directory)
        except OSError:
            return -1
        return st.f_bavail * st.f_frsize

    def index_writes_wait(self) -> bool:
        """Whether the disk is too full for index writes. They are derived data: the durability of the
        segments never waits for them, and a restart recovers whatever they would have recorded."""
        return 0 <= self.free_bytes() < self.index_headroom

    def _free_text(self) -> str:
        free = self.free_bytes()
        return "unknown" if free < 0 else f"{free} bytes"

    def no_space(self, what: str, exc: BaseException) -> DiskFullError:
        """Record an append refused for want of space (the write was cut back); returns the error to raise."""
        now = time.monotonic()
        with self._lock:
            self.errors["no_space"] += 1
            loud = not self.full and now - self._full_logged_at >= _RELOG_FULL_S
            if not self.full:
                self._full_logged = loud
            self.full = True
            if loud:
                self._full_logged_at = now
        free = self._free_text()
        if loud:
            log.error(
                "data directory %s is full (%s free): %s failed: %s. Produce requests answer "
                "KAFKA_STORAGE_ERROR until there is space again; then appends resume by themselves. "
                "Nothing written before is lost",
                self.directory, free, what, exc,
            )  # fmt: skip
        return DiskFullError(f"no space left in data directory {self.directory} ({free} free): {what}")

    def appended(self) -> None:
        """An append succeeded after the directory was full: there is space again."""
        with self._lock:
            was_logged = self.full and self._full_logged
            self.full = False
        if was_logged:
            free = self._free_text()
            log.warning("data directory %s has space again (%s free): appends resumed", self.directory, free)

    def fail(self, kind: str, what: str, exc: BaseException) -> LogDirOfflineError:
        """Take the directory offline after a failure of ``kind`` (fsync, write, index); returns the error
        to raise."""
        with self._lock:
            self.errors[kind] += 1
            first = not self.offline
            if first:
                self.offline_cause = f"{what} failed: {exc}"
                self.offline = True
        if first:
            log.error(
                "data directory %s is OFFLINE (%s free): %s. Data not yet fsynced may not be on disk, so "
                "nothing more is written or acknowledged here: produce answers KAFKA_STORAGE_ERROR and "
                "reads stop at the last fsynced offset. Fix the cause (free space, check the disk), then "
                "restart the broker: recovery keeps every whole batch the disk holds",
                self.directory, self._free_text(), self.offline_cause,
            )  # fmt: skip
        return self.offline_error()

    def offline_error(self) -> LogDirOfflineError:
        return LogDirOfflineError(
            f"data directory {self.directory} is offline ({self.offline_cause}); restart the broker once "
            "the disk is fixed"
        )
