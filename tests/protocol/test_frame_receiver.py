"""FrameReceiver: frames received in place (asyncio.BufferedProtocol), split anywhere, large ones in a
buffer of their own, limits checked before allocation, no allocation of a size prefix's claim."""

from __future__ import annotations

import itertools
import struct
import tracemalloc

import pytest
from hypothesis import given
from hypothesis import strategies as st

from logq.protocol import DEFAULT_MAX_FRAME_BYTES, FrameSizeError
from logq.protocol.frames import FRAME_GROWTH, SCRATCH_BYTES, SMALL_SCRATCH_BYTES, FrameReceiver

from .strategies import examples

SCRATCH = 64  # small scratch buffers, so that "larger than the scratch" is cheap to reach


def _wire(*payloads: bytes) -> bytes:
    return b"".join(struct.pack(">i", len(p)) + p for p in payloads)


def _receive(receiver: FrameReceiver, data: bytes) -> list[memoryview]:
    """What a transport does with ``data``: copy into each buffer it is given, as much as fits."""
    frames: list[memoryview] = []
    view = memoryview(data)
    while view.nbytes:
        buffer = receiver.get_buffer()
        assert buffer.nbytes > 0
        n = min(buffer.nbytes, view.nbytes)
        buffer[:n] = view[:n]
        frames += receiver.received(n)
        view = view[n:]
    return frames


def _feed(receiver: FrameReceiver, pieces: list[bytes]) -> list[memoryview]:
    return [frame for piece in pieces for frame in _receive(receiver, piece)]


SMALL = [b"a", b"hello world", b"\x00\x00\x00\x05"]
LARGE = bytes(range(256)) * 3  # larger than SCRATCH
PAYLOADS = [*SMALL, LARGE, b"tail", LARGE[:100]]


def test_defaults() -> None:
    receiver = FrameReceiver()
    assert receiver.max_frame_bytes == DEFAULT_MAX_FRAME_BYTES
    assert receiver.scratch_bytes == SCRATCH_BYTES == 256 * 1024
    assert receiver.small_scratch_bytes == SMALL_SCRATCH_BYTES == 16 * 1024
    assert receiver.pending_bytes == 0


@pytest.mark.parametrize("small", [SCRATCH, 16])
def test_split_at_every_byte_position(small: int) -> None:
    wire = _wire(*PAYLOADS)
    for cut in range(len(wire) + 1):
        receiver = FrameReceiver(scratch_bytes=SCRATCH, small_scratch_bytes=small)
        frames = _feed(receiver, [wire[:cut], wire[cut:]])
        assert [bytes(f) for f in frames] == PAYLOADS, f"split at {cut}"
        assert receiver.pending_bytes == 0


def test_one_byte_at_a_time() -> None:
    wire = _wire(*PAYLOADS)
    receiver = FrameReceiver(scratch_bytes=SCRATCH)
    frames = _feed(receiver, [wire[i : i + 1] for i in range(len(wire))])
    assert [bytes(f) for f in frames] == PAYLOADS


@examples(100)
@given(
    payloads=st.lists(st.binary(min_size=1, max_size=300), max_size=8),
    cuts=st.lists(st.integers(0, 3000), max_size=12),
    scratch=st.sampled_from([8, 9, 16, 64, 333, 4096]),
    small=st.sampled_from([8, 13, 64, 4096]),
)
def test_any_split_and_scratch_size_reassembles(
    payloads: list[bytes], cuts: list[int], scratch: int, small: int
) -> None:
    wire = _wire(*payloads)
    points = sorted({0, len(wire), *(c for c in cuts if c < len(wire))})
    receiver = FrameReceiver(scratch_bytes=scratch, small_scratch_bytes=small)
    frames = _feed(receiver, [wire[a:b] for a, b in itertools.pairwise(points)])
    # compared at the end: a frame handed out is never overwritten by what is received after it
    assert [bytes(f) for f in frames] == payloads
    assert receiver.pending_bytes == 0


def test_frames_in_the_scratch_are_views_and_never_overwritten() -> None:
    receiver = FrameReceiver(scratch_bytes=SCRATCH)
    first = _receive(receiver, _wire(b"abc", b"defg") + _wire(b"partial")[:6])
    assert [bytes(f) for f in first] == [b"abc", b"defg"]
    assert first[0].obj is first[1].obj  # both views of one scratch, no copy
    assert receiver.pending_bytes == 6
    later = _receive(receiver, _wire(b"partial")[6:] + _wire(b"x" * 40))
    assert [bytes(f) for f in later] == [b"partial", b"x" * 40]
    assert later[0].obj is not first[0].obj  # the old scratch belongs to its frames now
    assert [bytes(f) for f in first] == [b"abc", b"defg"]


def test_a_scratch_is_small_after_a_read_that_left_room_and_large_after_one_that_filled_it() -> None:
    receiver = FrameReceiver(scratch_bytes=1024, small_scratch_bytes=64)
    assert receiver.get_buffer().nbytes == 64  # one request at a time: a small buffer each
    assert [bytes(f) for f in _receive(receiver, _wire(b"ping"))] == [b"ping"]
    assert receiver.get_buffer().nbytes == 64
    stream = _wire(*[b"s" * 28] * 2)  # exactly fills the small scratch: more is on its way
    assert len(_receive(receiver, stream)) == 2
    assert receiver.get_buffer().nbytes == 1024
    # a frame too big for a small scratch (but not for a large one) moves to a scratch that holds it
    receiver = FrameReceiver(scratch_bytes=1024, small_scratch_bytes=64)
    medium = b"m" * 500
    assert _receive(receiver, _wire(medium)[:30]) == []
    assert receiver.get_buffer().nbytes >= 504 - 30
    assert [bytes(f) for f in _receive(receiver, _wire(medium)[30:])] == [medium]


def test_a_large_frame_is_received_into_its_own_buffer() -> None:
    payload = bytes(range(256)) * 40  # 10,240 bytes
    wire = _wire(payload)
    receiver = FrameReceiver(scratch_bytes=SCRATCH)
    assert _receive(receiver, wire[: len(wire) // 2]) == []  # more than 1/FRAME_GROWTH of it
    buffer = receiver.get_buffer()
    assert buffer.nbytes == len(wire) - len(wire) // 2  # exactly the rest of the frame, nothing more
    buffer[:] = wire[len(wire) // 2 :]
    (frame,) = receiver.received(buffer.nbytes)
    assert frame.obj is buffer.obj  # handed out in the buffer it was received into
    assert bytes(frame) == payload


def test_a_large_frame_after_small_ones_in_the_same_read() -> None:
    payload = b"L" * 5000
    wire = _wire(b"s1", b"s2", payload, b"s3")
    receiver = FrameReceiver(scratch_bytes=SCRATCH)
    frames = _feed(receiver, [wire[:40], wire[40:3000], wire[3000:]])
    assert [bytes(f) for f in frames] == [b"s1", b"s2", payload, b"s3"]


def test_a_size_prefix_alone_allocates_only_scratch_sized_buffers() -> None:
    claim = 90 * 1024 * 1024
    receiver = FrameReceiver()
    tracemalloc.start()
    try:
        _receive(receiver, struct.pack(">i", claim) + b"x" * 1000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # the scratch the bytes landed in, and a scratch-sized start of the frame's own buffer: not 90 MiB
    assert peak < 3 * SCRATCH_BYTES
    assert receiver.pending_bytes == 1004


def test_a_large_frame_grows_with_what_arrives() -> None:
    size = 1_000_000
    receiver = FrameReceiver(scratch_bytes=1024)
    _receive(receiver, struct.pack(">i", size) + b"y" * 1000)
    sent = 1000
    while sent < size:
        buffer = receiver.get_buffer()
        capacity = sent + buffer.nbytes
        # never more than FRAME_GROWTH times what has arrived (or a scratch's worth)
        assert capacity <= max(FRAME_GROWTH * sent, 1024)
        n = min(buffer.nbytes, size - sent, 7000)
        buffer[:n] = b"y" * n
        frames = receiver.received(n)
        sent += n
    assert [bytes(f) for f in frames] == [b"y" * size]


@pytest.mark.parametrize("size", [0, -1, -(2**31), 2**31 - 1, DEFAULT_MAX_FRAME_BYTES + 1])
def test_bad_size_prefix_raises_before_allocating(size: int) -> None:
    receiver = FrameReceiver()
    receiver.get_buffer()  # the scratch itself is not the claim
    tracemalloc.start()
    try:
        with pytest.raises(FrameSizeError) as info:
            _receive(receiver, struct.pack(">i", size))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.value.size == size
    assert peak < 64 * 1024


def test_bad_prefix_split_across_reads_and_after_good_frames() -> None:
    receiver = FrameReceiver(max_frame_bytes=1000, scratch_bytes=SCRATCH)
    wire = _wire(b"ok1", b"ok2") + struct.pack(">i", 1001)
    assert [bytes(f) for f in _receive(receiver, wire[:-1])] == [b"ok1", b"ok2"]
    with pytest.raises(FrameSizeError) as info:
        _receive(receiver, wire[-1:])
    assert info.value.frames == []
    receiver = FrameReceiver(max_frame_bytes=1000, scratch_bytes=SCRATCH)
    with pytest.raises(FrameSizeError) as info:
        _receive(receiver, wire)
    assert [bytes(f) for f in info.value.frames] == [b"ok1", b"ok2"]


def test_the_limit_is_inclusive_and_may_change_between_frames() -> None:
    receiver = FrameReceiver(max_frame_bytes=10, scratch_bytes=SCRATCH)
    assert [bytes(f) for f in _receive(receiver, _wire(b"x" * 10))] == [b"x" * 10]
    receiver.max_frame_bytes = 100  # as after a SASL login
    assert [bytes(f) for f in _receive(receiver, _wire(b"y" * 100))] == [b"y" * 100]
    with pytest.raises(FrameSizeError):
        _receive(receiver, struct.pack(">i", 101))


def test_nothing_received_returns_nothing() -> None:
    receiver = FrameReceiver(scratch_bytes=SCRATCH)
    receiver.get_buffer()
    assert receiver.received(0) == []
    assert receiver.pending_bytes == 0


@pytest.mark.parametrize(("limit", "scratch", "small"), [(0, 64, 64), (-1, 64, 64), (10, 7, 64), (10, 64, 7)])
def test_invalid_settings_rejected(limit: int, scratch: int, small: int) -> None:
    with pytest.raises(ValueError, match="must"):
        FrameReceiver(max_frame_bytes=limit, scratch_bytes=scratch, small_scratch_bytes=small)


def test_a_full_frame_buffer_grows_only_when_more_is_read_and_within_max_growth() -> None:
    size = 1_000_000
    receiver = FrameReceiver(scratch_bytes=1024)
    _receive(receiver, struct.pack(">i", size) + b"z" * 1000)
    buffer = receiver.get_buffer()
    buffer[:] = b"z" * buffer.nbytes
    have = 1000 + buffer.nbytes
    assert receiver.received(buffer.nbytes) == []
    # A connection that stops reading now holds what it received, no buffer grown ahead of it.
    assert receiver.buffered_bytes == have
    # Reading on with little room left: the buffer grows by a scratch's worth, not FRAME_GROWTH times.
    assert receiver.get_buffer(max_growth=10).nbytes == 1024
    assert receiver.buffered_bytes == have + 1024
