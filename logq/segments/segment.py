"""One segment file: a run of whole batches starting at ``base_offset``.

Not thread-safe: its PartitionLog serialises appends, truncation and rolls under the log's lock.
``pread``/``fsync`` on the open descriptor are safe to call from other threads, which is what lets the
log fsync outside its lock while appends go on.

A loaded segment opens its file on first use, not when it is loaded: a broker with 10,000 idle
partitions would otherwise hold 10,000 descriptors (and open them all before serving).
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from logq import batch as rb
from logq.errors import StorageError
from logq.segments import files, space

READ_CHUNK = 1 << 20
READ_HINTS = 32  # read ends remembered per segment: about the readers of a partition at once
FIRST_HEADERS_CHUNK = 16 << 10  # index.interval.bytes (4 KiB by default) and then some
# A stored batch may be larger than today's max.message.bytes (the setting can shrink), but a length
# beyond this is garbage, not data: stop the scan there.
MAX_STORED_BATCH = 1 << 28
# Taken only to open a descriptor on first use (a flush outside the log's lock may race an append).
_OPENING = threading.Lock()


class Segment:
    def __init__(
        self, directory: Path, base_offset: int, *, create: bool = False, size: int | None = None
    ) -> None:
        """``create``: a new, empty file (opened at once: it is about to be appended to). Otherwise the
        existing file, opened on first use; ``size`` spares a stat when the caller knows it."""
        self.base_offset = base_offset
        self.path = directory / files.segment_name(base_offset)
        self._fd: int | None = None
        if create:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
            self.size = 0
        else:
            self.size = os.stat(self.path).st_size if size is None else size
        self.next_offset = base_offset  # the offset after the last batch; set by the log once known
        self.last_append_ms = -1  # broker time of the newest batch (-1: unknown)
        self.first_append_ms = -1  # broker time of the first batch appended in this process (segment.ms)
        self.synced_size = self.size if not create else 0
        self.truncations = 0  # how often it was cut back (the log cleaner checks its input is unchanged)
        self.closed = False
        # Blocks are allocated up to here (``space.reserve``); past ``size`` only while this segment is
        # active, given back when it rolls or closes. -1: the filesystem cannot reserve.
        self._reserved_end = self.size
        # The ends of the last reads (offset -> position there): a consumer reading forward skips the index,
        # also when several consumers or followers read this segment in turn.
        self._hints: dict[int, int] = {}

    @property
    def fd(self) -> int:
        """The file's descriptor, opened on first use."""
        fd = self._fd
        return fd if fd is not None else self._open()

    def _open(self) -> int:
        with _OPENING:
            if self._fd is None:
                if self.closed:
                    raise StorageError(f"{self.path} is closed")
                try:
                    self._fd = os.open(self.path, os.O_RDWR)
                except OSError as exc:
                    raise StorageError(f"cannot open {self.path}: {exc}") from exc
            return self._fd

    def append(self, prefix: bytes, rest: memoryview, reserve: int = 0) -> int:
        """Write one batch (its patched 16-byte prefix, then the rest) at the end; returns its position.

        ``reserve``: when the batch does not fit in the blocks already allocated, allocate blocks ahead
        first: as many bytes as the segment holds (so a quiet partition reserves little), at most
        ``reserve``, at least the batch. A failed write is cut back to where it started, so no partial
        batch is ever left behind, and its OSError is raised (ENOSPC: the disk is full); StorageError
        if even the cut-back failed (the end of the file is then unknown).
        """
        position = self.size
        total = len(prefix) + len(rest)
        if position + total > self._reserved_end >= 0 and reserve > 0:
            self._reserve(position, max(total, min(reserve, position)))
        try:
            written = os.pwritev(self.fd, [prefix, rest], position)
            if written != total:
                self._write_rest(position, [prefix, rest], written)
        except OSError as exc:
            if not self._cut_back(position):
                raise StorageError(
                    f"cannot append to {self.path} ({exc}), nor cut it back to {position} bytes"
                ) from exc
            raise
        self.size = position + total
        return position

    def _write_rest(self, position: int, buffers: list[bytes | memoryview], written: int) -> None:
        """Finish a short write. A disk that fills up midway writes what fits and returns the count; the
        next write then fails with the reason (ENOSPC)."""
        while True:
            rest: list[bytes | memoryview] = []
            for buffer in buffers:
                if written >= len(buffer):
                    written -= len(buffer)
                    position += len(buffer)
                else:
                    rest.append(memoryview(buffer)[written:])
                    position += written
                    written = 0
            if not rest:
                return
            buffers = rest
            written = os.pwritev(self.fd, buffers, position)
            if written == 0:
                raise OSError(errno.EIO, f"a write of {sum(len(b) for b in buffers)} bytes wrote nothing")

    def _reserve(self, position: int, length: int) -> None:
        try:
            supported = space.reserve(self.fd, position, length)
        except OSError:
            # e.g. a full disk: the write says whether the batch fits. Counted as reserved, so that
            # blocks allocated in part are given back as a reservation is (cut-back, roll, close).
            supported = True
        self._reserved_end = position + length if supported else -1  # -1: never here

    def release_reserved(self) -> None:
        """Give back blocks reserved past the end (the segment takes no more appends, or is closing)."""
        if self._reserved_end > self.size:
            with contextlib.suppress(OSError):  # only space is at stake; the next truncate retries
                space.release(self.fd, self.size)
            self._reserved_end = self.size

    def _cut_back(self, size: int) -> bool:
        try:
            os.ftruncate(self.fd, size)
        except OSError:
            return False
        self._reserved_end = min(self._reserved_end, size)
        return True

    def read(self, position: int, length: int) -> bytes:
        return os.pread(self.fd, length, position)

    def remember(self, offset: int, position: int) -> None:
        hints = self._hints
        hints.pop(offset, None)  # re-inserted as the newest
        if len(hints) >= READ_HINTS:
            del hints[next(iter(hints))]  # the oldest
        hints[offset] = position

    def hint(self, offset: int) -> int | None:
        return self._hints.get(offset)

    def flush(self) -> None:
        size = self.size
        os.fdatasync(self.fd)
        self.synced_size = max(self.synced_size, size)

    def truncate(self, size: int) -> None:
        os.ftruncate(self.fd, size)  # also frees any blocks reserved past the end
        self.truncations += 1
        self.size = size
        self._reserved_end = min(self._reserved_end, size)
        self.synced_size = min(self.synced_size, size)
        self._hints.clear()

    def mark_deleted(self) -> Path:
        """Rename to ``.deleted``; an open descriptor stays open so readers in the middle keep their bytes."""
        target = self.path.with_suffix(files.DELETED_SUFFIX)
        os.replace(self.path, target)
        self.path = target
        return target

    def close(self) -> None:
        if not self.closed:
            self.release_reserved()
            self.closed = True
            if self._fd is not None:
                os.close(self._fd)

    def scan(
        self, position: int, expected_offset: int, *, gaps: bool = False
    ) -> tuple[list[tuple[int, rb.BatchHeader]], int, str | None]:
        """Validate batches from ``position`` to the end of the file, as recovery does.

        Returns ((position, header) of each valid batch, end of the valid bytes, why the scan stopped
        early or None). A batch is valid when its whole length is present, it passes
        ``batch.validate`` (magic, CRC-32C, counts) and its base offset continues the previous one (or,
        with ``gaps``, a log the cleaner has been through, is past it).
        """
        found: list[tuple[int, rb.BatchHeader]] = []
        pos = position
        next_offset = expected_offset
        while pos < self.size:
            if self.size - pos < rb.HEADER_SIZE:
                return found, pos, f"{self.size - pos} trailing bytes are shorter than a batch header"
            base, size = rb.read_prefix(self.read(pos, rb.LOG_OVERHEAD))
            if size < rb.HEADER_SIZE or size > MAX_STORED_BATCH:
                return found, pos, f"the batch at position {pos} has an impossible length {size}"
            if pos + size > self.size:
                return (
                    found,
                    pos,
                    f"the batch at position {pos} is cut short ({self.size - pos} of {size} bytes)",
                )
            if base < next_offset or (base != next_offset and not gaps):  # gaps: the log cleaner's
                return (
                    found,
                    pos,
                    f"the batch at position {pos} has base offset {base}, expected {next_offset} or more",
                )
            try:
                header = rb.validate(self.read(pos, size), stored=True)
            except rb.BatchError as exc:
                return found, pos, f"the batch at position {pos} is corrupt: {exc}"
            found.append((pos, header))
            next_offset = header.last_offset + 1
            pos += size
        return found, pos, None

    def headers(self, position: int = 0) -> Iterator[tuple[int, rb.BatchHeader]]:
        """(position, header) of every batch from ``position`` (a batch start) to the end of the segment,
        read a chunk at a time (it stops at a tail too short to hold a batch header).

        Headers are parsed as they are asked for, and the first chunk is small and each next one larger: a
        lookup from an index entry wants a few headers near ``position`` (parsing a whole 1 MiB chunk of
        100 B batches cost a Fetch 7 ms), a recovery scan wants them all."""
        chunk_bytes = FIRST_HEADERS_CHUNK
        while position < self.size:
            chunk = self.read(position, min(chunk_bytes, self.size - position))
            pos = 0
            while len(chunk) - pos >= rb.HEADER_SIZE:
                header = rb.parse_header(chunk, pos)
                if header.size < rb.HEADER_SIZE:
                    raise StorageError(f"{self.path}: impossible batch length at position {position + pos}")
                yield position + pos, header
                pos += header.size
            if pos == 0:
                return
            position += pos
            chunk_bytes = min(chunk_bytes * 4, READ_CHUNK)
