"""Reassembly of size-prefixed frames from a byte stream (no I/O: the caller feeds what it received)."""

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
