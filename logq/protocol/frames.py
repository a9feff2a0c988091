"""Reassembly of size-prefixed frames from a byte stream, without I/O: ``FrameBuffer`` is fed what was
received (a client's stream reader); ``FrameReceiver`` says where the next bytes should be received,
for an ``asyncio.BufferedProtocol`` (the broker's connections)."""

from __future__ import annotations

import struct
from typing import Final

from logq.protocol.errors import FrameSizeError
from logq.protocol.primitives import Buffer, as_byte_view

DEFAULT_MAX_FRAME_BYTES: Final = 100 * 1024 * 1024

_SIZE: Final = struct.Struct(">i")


class FrameBuffer:
    """Feed received bytes, get back complete frames (without their int32 size prefix).

    A size prefix that is zero, negative or above ``max_frame_bytes`` raises :class:`FrameSizeError` as
    soon as its 4 bytes arrive, before any buffer for the frame is allocated; the connection must then be
    closed. Work per :meth:`feed` is O(bytes fed): a partial frame grows in one ``bytearray`` and is never
    rescanned.

    Frames are ``memoryview`` objects. A frame lying wholly inside a ``bytes`` argument (or a view of one)
    is a zero-copy view of it; any other frame is copied exactly once, into a buffer then handed out.
    """

    __slots__ = ("_buf", "_need", "max_frame_bytes")

    def __init__(self, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        if max_frame_bytes <= 0:
            raise ValueError("max_frame_bytes must be positive")
        self.max_frame_bytes = max_frame_bytes
        self._buf = bytearray()
        # Total pending bytes (prefix included) needed before the current frame is complete.
        self._need = 4

    @property
    def pending_bytes(self) -> int:
        """Bytes received but not yet returned as part of a complete frame."""
        return len(self._buf)

    def _check(self, size: int, frames: list[memoryview]) -> None:
        if size <= 0 or size > self.max_frame_bytes:
            raise FrameSizeError(size, self.max_frame_bytes, frames)

    def feed(self, data: Buffer) -> list[memoryview]:
        """Add received bytes; return every frame they complete, in order."""
        frames: list[memoryview] = []
        view = as_byte_view(data)
        if self._buf:
            view = self._fill(view, frames)
            if self._buf:
                return frames  # all of ``data`` went into the pending frame
        # Views of immutable ``bytes`` are safe to hand out; a bytearray may be reused by the caller.
        view = self._split(view, frames, copy=not isinstance(view.obj, bytes))
        if view.nbytes:
            self._buf += view
            self._need = 4 + _SIZE.unpack_from(view, 0)[0] if view.nbytes >= 4 else 4
        return frames

    def _fill(self, view: memoryview, frames: list[memoryview]) -> memoryview:
        """Complete the pending frame from the front of ``view``; return what is left of ``view``."""
        while view.nbytes:
            take = min(self._need - len(self._buf), view.nbytes)
            self._buf += view[:take]
            view = view[take:]
            if len(self._buf) < self._need:
                break
            if self._need == 4:
                size = _SIZE.unpack_from(self._buf, 0)[0]
                self._check(size, frames)
                self._need = 4 + size
                continue
            # Hand the filled buffer itself out as the frame: no second copy.
            frames.append(memoryview(self._buf)[4:])
            self._buf = bytearray()
            self._need = 4
            break
        return view

    def _split(self, view: memoryview, frames: list[memoryview], *, copy: bool) -> memoryview:
        """Take complete frames off the front of ``view``; return the unconsumed rest."""
        pos, end = 0, view.nbytes
        while end - pos >= 4:
            size = _SIZE.unpack_from(view, pos)[0]
            self._check(size, frames)
            if end - pos - 4 < size:
                break
            frame = view[pos + 4 : pos + 4 + size]
            frames.append(memoryview(bytes(frame)) if copy else frame)
            pos += 4 + size
        return view[pos:]


SCRATCH_BYTES: Final = 256 * 1024  # the most read into a scratch at a time: asyncio's own read size
# A scratch after a read that left room in the last one: a zeroed 256 KiB buffer for each small request
# (a Fetch, a heartbeat) would cost more than the request.
SMALL_SCRATCH_BYTES: Final = 16 * 1024
# A large frame's buffer is at most this many times the bytes of it received so far: a client must send
# a quarter of what its size prefix claims before the whole is allocated.
FRAME_GROWTH: Final = 4


class FrameReceiver:
    """Frames received in place, for an ``asyncio.BufferedProtocol``: ``get_buffer()`` is where the next
    received bytes should land, ``received(n)`` says how many did and returns the frames they complete.

    Bytes land in a scratch buffer; frames lying wholly in it are handed out as zero-copy views, after
    which the scratch is never written again: a fresh one takes the unfinished tail, which is all that
    is ever copied, and without a tail none is held (an idle connection costs no buffer). A scratch is
    ``scratch_bytes`` after a read that filled the last one (a stream of requests), else
    ``small_scratch_bytes`` (one request at a time).

    A frame larger than ``scratch_bytes`` gets a buffer of its own, and the rest of it is received
    straight into that: the kernel (or, under TLS, the decryption) writes its bytes where the frame is
    handed out. That buffer is the frame's exact size once a quarter of it has arrived
    (``FRAME_GROWTH``); before, it grows with what arrives (by copying), so a size prefix alone never
    allocates what it claims.

    A size prefix that is zero, negative or above ``max_frame_bytes`` raises :class:`FrameSizeError` (with
    the complete frames before it) before anything is allocated for it; the connection must then close.
    """

    __slots__ = (
        "_end",
        "_filled",
        "_frame",
        "_frame_size",
        "_next_scratch",
        "_scratch",
        "_start",
        "max_frame_bytes",
        "scratch_bytes",
        "small_scratch_bytes",
    )

    def __init__(
        self,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        scratch_bytes: int = SCRATCH_BYTES,
        small_scratch_bytes: int = SMALL_SCRATCH_BYTES,
    ) -> None:
        if max_frame_bytes <= 0:
            raise ValueError("max_frame_bytes must be positive")
        if min(scratch_bytes, small_scratch_bytes) < 8:
            raise ValueError("a scratch must hold at least a size prefix and a few bytes")
        self.max_frame_bytes = max_frame_bytes
        self.scratch_bytes = scratch_bytes
        self.small_scratch_bytes = min(small_scratch_bytes, scratch_bytes)
        self._next_scratch = self.small_scratch_bytes  # the size of the next scratch allocated
        self._scratch: bytearray | None = None
        self._start = 0  # the scratch's bytes not yet handed out: [_start, _end)
        self._end = 0
        self._frame: bytearray | None = None  # a large frame being received in place
        self._frame_size = 0
        self._filled = 0  # bytes of ``_frame`` received so far

    @property
    def pending_bytes(self) -> int:
        """Bytes received but not yet returned as part of a complete frame (size prefixes included)."""
        if self._frame is not None:
            return 4 + self._filled
        return self._end - self._start

    @property
    def buffered_bytes(self) -> int:
        """Memory held for the frame being received: its own buffer (which grows ahead of what has
        arrived, ``FRAME_GROWTH``), or its bytes so far in the scratch."""
        if self._frame is not None:
            return len(self._frame)
        return self._end - self._start

    def get_buffer(self, max_growth: int | None = None) -> memoryview:
        """Where the next received bytes go (never empty); valid until the next ``received``.

        A large frame's full buffer grows here, when more is to be read, not as soon as it fills: a
        connection that stops reading holds only what it received. ``max_growth`` caps that growth (at
        least a scratch's worth): the room a broker-wide bound has left."""
        if self._frame is not None:
            if self._filled == len(self._frame):
                self._frame = self._frame_buffer(memoryview(self._frame), max_growth)
            return memoryview(self._frame)[self._filled :]
        if self._scratch is None:
            self._scratch = bytearray(self._next_scratch)
        return memoryview(self._scratch)[self._end :]

    def received(self, nbytes: int) -> list[memoryview]:
        """``nbytes`` were written at the start of the last ``get_buffer()``: every frame they complete."""
        if nbytes <= 0:
            return []
        if self._frame is not None:
            self._filled += nbytes
            if self._filled == self._frame_size:
                frame, self._frame, self._filled = self._frame, None, 0
                return [memoryview(frame)]
            return []
        assert self._scratch is not None
        self._end += nbytes
        filled = self._end == len(self._scratch)  # more is probably on its way
        self._next_scratch = self.scratch_bytes if filled else self.small_scratch_bytes
        frames: list[memoryview] = []
        self._take_frames(frames)
        return frames

    def _frame_buffer(self, received: memoryview, max_growth: int | None = None) -> bytearray:
        """A buffer for the large frame being received, holding ``received`` (its bytes so far)."""
        have = received.nbytes
        size = min(self._frame_size, max(FRAME_GROWTH * have, self.scratch_bytes))
        if max_growth is not None:
            size = min(size, have + max(max_growth, self.scratch_bytes))
        buffer = bytearray(size)
        buffer[:have] = received
        return buffer

    def _take_frames(self, frames: list[memoryview]) -> None:
        assert self._scratch is not None
        view = memoryview(self._scratch)
        start, end = self._start, self._end
        size = 0
        while end - start >= 4:
            size = _SIZE.unpack_from(view, start)[0]
            if size <= 0 or size > self.max_frame_bytes:
                # The frames already handed out keep this scratch; nothing more is read into it.
                self._scratch, self._start, self._end = None, 0, 0
                raise FrameSizeError(size, self.max_frame_bytes, frames)
            if end - start - 4 < size:
                break
            frames.append(view[start + 4 : start + 4 + size])
            start += 4 + size
        rest = end - start
        need = 4 + size if rest >= 4 else 4  # what the unfinished frame needs of a scratch
        if need > self.scratch_bytes:
            # Too large for a scratch: its own buffer, the rest of it received straight into it.
            self._frame_size = size
            self._frame = self._frame_buffer(view[start + 4 : end])
            self._filled = rest - 4
            rest = 0
        elif start == 0 and rest and need <= len(view):
            self._end = end  # an unfinished frame, nothing handed out: this scratch keeps filling
            return
        # Done with this scratch: frames handed out as views of it own it now. The unfinished tail (if
        # any) moves to a fresh one; without one, none is held until more bytes come.
        self._scratch, self._start, self._end = None, 0, rest
        if rest:
            self._scratch = bytearray(max(need, self._next_scratch))
            self._scratch[:rest] = view[start:end]
