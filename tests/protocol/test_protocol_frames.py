"""FrameBuffer: reassembly, limits checked before allocation, pending partial input."""

from __future__ import annotations

import itertools
import struct
import tracemalloc

import pytest
from hypothesis import given
from hypothesis import strategies as st

from logq.protocol import DEFAULT_MAX_FRAME_BYTES, FrameBuffer, FrameSizeError

from .strategies import examples


def _wire(*payloads: bytes) -> bytes:
    return b"".join(struct.pack(">i", len(p)) + p for p in payloads)


PAYLOADS = [b"a", b"hello world", bytes(range(256)) * 3, b"\x00\x00\x00\x05"]


def test_default_limit_is_100_mib() -> None:
    assert DEFAULT_MAX_FRAME_BYTES == 100 * 1024 * 1024
    assert FrameBuffer().max_frame_bytes == DEFAULT_MAX_FRAME_BYTES


@pytest.mark.parametrize("as_type", [bytes, bytearray, memoryview])
def test_one_byte_at_a_time(as_type: type) -> None:
    wire = _wire(*PAYLOADS)
    buf = FrameBuffer()
    frames = []
    for i in range(len(wire)):
        frames += buf.feed(as_type(wire[i : i + 1]))
    assert [bytes(f) for f in frames] == PAYLOADS
    assert buf.pending_bytes == 0


def test_many_frames_in_one_feed() -> None:
    buf = FrameBuffer()
    payloads = [bytes([i]) * i for i in range(1, 200)]
    assert [bytes(f) for f in buf.feed(_wire(*payloads))] == payloads
    assert buf.pending_bytes == 0


def test_pending_partial_then_many_frames() -> None:
    wire = _wire(*PAYLOADS, b"tail")
    buf = FrameBuffer()
    assert buf.feed(wire[:3]) == []
    frames = buf.feed(wire[3:-2])
    assert [bytes(f) for f in frames] == PAYLOADS
    assert buf.pending_bytes == 6
    assert [bytes(f) for f in buf.feed(wire[-2:])] == [b"tail"]


def test_truncated_input_stays_pending() -> None:
    buf = FrameBuffer()
    wire = _wire(b"x" * 100)
    assert buf.feed(wire[:2]) == []
    assert buf.feed(wire[2:50]) == []
    assert buf.pending_bytes == 50
    assert [bytes(f) for f in buf.feed(wire[50:])] == [b"x" * 100]


def test_frames_from_bytes_are_zero_copy_views() -> None:
    wire = _wire(b"abc", b"defg")
    for data in (wire, memoryview(wire)):
        frames = FrameBuffer().feed(data)
        assert [bytes(f) for f in frames] == [b"abc", b"defg"]
        assert all(f.obj is wire for f in frames)


def test_frames_do_not_alias_a_reusable_input_buffer() -> None:
    scratch = bytearray(_wire(b"abc"))
    (frame,) = FrameBuffer().feed(scratch)
    scratch[4:7] = b"zzz"
    assert bytes(frame) == b"abc"


@examples(50)
@given(
    payloads=st.lists(st.binary(min_size=1, max_size=40), max_size=8),
    cuts=st.lists(st.integers(0, 400), max_size=10),
    as_bytes=st.booleans(),
)
def test_any_split_reassembles(payloads: list[bytes], cuts: list[int], as_bytes: bool) -> None:
    wire = _wire(*payloads)
    points = sorted({0, len(wire), *(c for c in cuts if c < len(wire))})
    buf = FrameBuffer()
    frames = []
    for a, b in itertools.pairwise(points):
        piece = wire[a:b]
        frames += buf.feed(piece if as_bytes else bytearray(piece))
    assert [bytes(f) for f in frames] == payloads
    assert buf.pending_bytes == 0


@pytest.mark.parametrize("size", [0, -1, -(2**31), 2**31 - 1, DEFAULT_MAX_FRAME_BYTES + 1])
def test_bad_size_prefix_raises_before_allocating(size: int) -> None:
    buf = FrameBuffer()
    tracemalloc.start()
    try:
        with pytest.raises(FrameSizeError) as info:
            buf.feed(struct.pack(">i", size))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.value.size == size
    assert peak < 64 * 1024


def test_limit_is_inclusive() -> None:
    buf = FrameBuffer(max_frame_bytes=10)
    assert buf.feed(_wire(b"x" * 10)) == [memoryview(b"x" * 10)]
    with pytest.raises(FrameSizeError):
        buf.feed(struct.pack(">i", 11))


def test_bad_prefix_split_across_feeds() -> None:
    buf = FrameBuffer(max_frame_bytes=1000)
    prefix = struct.pack(">i", 1001)
    assert buf.feed(prefix[:3]) == []
    with pytest.raises(FrameSizeError):
        buf.feed(prefix[3:])


def test_frames_before_a_bad_prefix_are_reported() -> None:
    buf = FrameBuffer(max_frame_bytes=1000)
    with pytest.raises(FrameSizeError) as info:
        buf.feed(_wire(b"ok1", b"ok2") + struct.pack(">i", -5))
    assert [bytes(f) for f in info.value.frames] == [b"ok1", b"ok2"]


def test_invalid_limit_rejected() -> None:
    with pytest.raises(ValueError, match="positive"):
        FrameBuffer(max_frame_bytes=0)
