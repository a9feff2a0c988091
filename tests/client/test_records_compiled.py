"""The compiled record codec (logq/client/_records.c) against the pure-Python one (logq/client/records.py):
byte-identical batches out of the builders, and the same records, or the same error with the same message,
out of the decoders, for any input. Fetched data is untrusted: truncated, corrupted and hand-made
records sections (varints of up to 10 bytes, lengths that lie, counts that lie) must never crash the
process, only raise what the Python decoder raises.

The compiled codec is built by ``pip install`` (setup.py); these tests skip without it, except under CI,
where they fail (a skip there would hide a broken build)."""

from __future__ import annotations

import gc
import os
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any, NamedTuple

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from logq import batch as rb
from logq import codec
from logq.client import records
from logq.client.producer_futures import Completion, RecordFuture
from logq.client.records import (
    PYTHON_CODEC,
    BatchBuilder,
    ConsumerRecord,
    DecodeRecords,
    RecordCodec,
    encode_headers,
)

ROOT = Path(__file__).resolve().parents[2]
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
BASE_TS = 1_700_000_000_000


def compiled_codec() -> RecordCodec:
    if records.COMPILED_CODEC is None:
        if os.environ.get("CI"):
            pytest.fail("the compiled record codec was not built (pip install -e . runs setup.py)")
        pytest.skip("the compiled record codec is not built here (no C compiler at install time?)")
    return records.COMPILED_CODEC


@pytest.fixture(scope="module")
def compiled() -> RecordCodec:
    return compiled_codec()


def codec_in_use(env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-c", "from logq.client import records; print(records.CODEC.name)"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=ROOT,
    )
    return done.stdout.strip()


def test_the_compiled_codec_is_built_and_chosen_unless_python_is_forced(compiled: RecordCodec) -> None:
    without = {k: v for k, v in os.environ.items() if k != records.PURE_PYTHON_ENV}
    assert codec_in_use({**without}) == "c" or os.environ.get(records.PURE_PYTHON_ENV) == "1"
    assert codec_in_use({records.PURE_PYTHON_ENV: "1"}) == "python"
    assert codec_in_use({records.PURE_PYTHON_ENV: "0"}) == "c"
    assert compiled.name == "c"
    assert isinstance(compiled.new_builder(0, 100), BatchBuilder)


# --- the builders -----------------------------------------------------------------------------------

blobs = st.one_of(
    st.none(),
    st.binary(max_size=200),
    st.binary(max_size=200).map(bytearray),
    st.binary(max_size=200).map(memoryview),
    st.binary(min_size=8000, max_size=20_000),  # 3-byte length prefixes
)
header_lists = st.lists(st.tuples(st.text(max_size=10), st.none() | st.binary(max_size=50)), max_size=3)
deltas = st.one_of(
    st.integers(-100_000, 100_000),
    st.sampled_from([0, 1, -1, 63, 64, -64, -65, 8191, 8192, 16383, 16384, -8192, -8193]),
    st.integers(INT64_MIN, INT64_MAX),  # far from the first record: outside 64 bits, OverflowError
)
appends = st.lists(st.tuples(blobs, blobs, header_lists, deltas), min_size=1, max_size=60)


def attempt(fn: Callable[..., Any], *args: Any) -> Any:
    """What ``fn(*args)`` returns, or the type of what it raised."""
    try:
        return fn(*args)
    except Exception as exc:
        return type(exc)


def builder_state(b: BatchBuilder) -> tuple[int, int, int, int, int, bytes]:
    return (b.base_timestamp, b.max_timestamp, b.count, b.size_limit, b.size, b.section())


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    appends,
    st.sampled_from([BASE_TS, 0, -1, INT64_MIN, INT64_MAX]) | st.integers(INT64_MIN, INT64_MAX),
    st.sampled_from([0, 100, 1000, 1 << 14, 1 << 17, 1 << 30]),
    st.sampled_from([rb.CODEC_NONE, rb.CODEC_ZSTD]),
)
def test_builders_give_byte_identical_batches(
    compiled: RecordCodec, ops: list[tuple[Any, ...]], base_ts: int, size_limit: int, codec_id: int
) -> None:
    python, c = PYTHON_CODEC.new_builder(base_ts, size_limit), compiled.new_builder(base_ts, size_limit)
    for key, value, headers, delta in ops:
        encoded = encode_headers(headers)
        results = [attempt(b.append, key, value, encoded, base_ts + delta) for b in (python, c)]
        assert results[0] == results[1]
        assert builder_state(python) == builder_state(c)
    if python.count:
        assert python.build(codec_id, 7, 1, 5) == c.build(codec_id, 7, 1, 5)


def test_builders_agree_past_16384_records_and_on_bad_arguments(compiled: RecordCodec) -> None:
    python, c = PYTHON_CODEC.new_builder(BASE_TS, 1 << 30), compiled.new_builder(BASE_TS, 1 << 30)
    for i in range(20_000):  # offset deltas of 3 bytes
        assert python.append(None, b"%d" % i, b"\x00", BASE_TS + i % 7) == i
        assert c.append(None, b"%d" % i, b"\x00", BASE_TS + i % 7) == i
    assert python.build() == c.build()
    bad: list[tuple[Any, ...]] = [
        ("key", b"v", b"\x00", BASE_TS),  # a str key
        (None, 5, b"\x00", BASE_TS),
        (None, b"v", None, BASE_TS),  # headers not encoded
        (None, b"v", b"\x00", float(BASE_TS)),
        (None, b"v", b"\x00", None),
        (None, b"v", b"\x00", 1 << 63),
        (None, b"v", b"\x00", BASE_TS - (1 << 63) - 1),  # a delta beyond 64 bits
    ]
    for args in bad:
        errors = [attempt(b.append, *args) for b in (python, c)]
        assert errors[0] == errors[1]
        assert errors[0] in (TypeError, OverflowError), args
    assert builder_state(python) == builder_state(c)
    for base in (1 << 63, INT64_MIN - 1):
        errors = [attempt(f, base, 100) for f in (PYTHON_CODEC.new_builder, compiled.new_builder)]
        assert errors == [OverflowError, OverflowError]


# --- the decoders -----------------------------------------------------------------------------------


def outcome(decode: DecodeRecords, section: bytes, fields: tuple[int, int, int, int, int]) -> Any:
    """The records (with the types of their fields) or the error (type and message) of one decode."""
    count, base_offset, base_ts, scale, from_offset = fields
    out: list[ConsumerRecord] = []
    try:
        decode(section, count, base_offset, base_ts, scale, "q", 4, from_offset, out)
    except Exception as exc:
        return type(exc), str(exc)
    return [(type(r), [type(f) for f in r], tuple(r)) for r in out]


def same_outcome(compiled: RecordCodec, section: bytes, fields: tuple[int, int, int, int, int]) -> Any:
    expected = outcome(PYTHON_CODEC.decode_records, section, fields)
    assert outcome(compiled.decode_records, section, fields) == expected
    return expected


def zigzag_varint(value: int, padding: int = 0) -> bytes:
    """A varint of up to 70 bits, as a damaged or hostile batch may carry, optionally not minimal."""
    raw = value * 2 if value >= 0 else -value * 2 - 1
    groups = []
    while True:
        groups.append(raw & 0x7F)
        raw >>= 7
        if not raw:
            break
    groups += [0] * padding
    return bytes([g | 0x80 for g in groups[:-1]] + [groups[-1]])


varint_values = st.one_of(
    st.integers(-70, 70),
    st.integers(-(1 << 20), 1 << 20),
    st.integers(INT64_MIN, INT64_MAX),
    st.integers(-(1 << 69), (1 << 69) - 1),
)


@st.composite
def varints(draw: st.DrawFn, values: st.SearchStrategy[int] = varint_values) -> bytes:
    value = draw(values)
    encoded = zigzag_varint(value)
    return zigzag_varint(value, draw(st.integers(0, max(0, 10 - len(encoded)))))


@st.composite
def hand_made_records(draw: st.DrawFn) -> bytes:
    """One record field by field: mostly well-formed with any deltas (to 70 bits, so offsets and
    timestamps past int64), sometimes with a null header name or a length that lies."""

    def field(nullable: bool = True) -> bytes:
        data = draw(st.binary(max_size=12))
        kind = draw(st.sampled_from(["ok"] * 6 + ["null", "lie"]))
        if kind == "null" and nullable:
            return zigzag_varint(draw(st.integers(-5, -1)))
        if kind == "lie":
            return draw(varints()) + data
        return zigzag_varint(len(data)) + data

    headers = draw(st.integers(0, 3))
    lie = draw(st.integers(0, 9)) == 0
    body = (
        bytes([draw(st.integers(0, 255))])
        + draw(varints())  # timestamp delta
        + draw(varints())  # offset delta
        + field()
        + field()
        + (draw(varints()) if lie else zigzag_varint(headers, draw(st.integers(0, 1))))
        + b"".join(field(nullable=draw(st.integers(0, 9)) == 0) + field() for _ in range(headers))
    )
    if draw(st.integers(0, 9)):
        return zigzag_varint(len(body)) + body
    return draw(varints()) + body


offsets = st.sampled_from([0, 1, 1 << 40, INT64_MAX, INT64_MIN]) | st.integers(INT64_MIN, INT64_MAX)
decode_fields = st.tuples(
    st.integers(-2, 8) | st.sampled_from([(1 << 31) - 1, -(1 << 31)]),  # records count
    offsets,  # base offset
    offsets,  # base timestamp
    st.sampled_from([0, 1]),  # 0: log-append time
    offsets | st.integers(-5, 30),  # from offset
)


@settings(max_examples=400, deadline=None)
@given(st.lists(hand_made_records(), max_size=5), st.integers(-1, 1), decode_fields)
def test_decoders_agree_on_hand_made_sections(
    compiled: RecordCodec, recs: list[bytes], extra_count: int, fields: tuple[int, int, int, int, int]
) -> None:
    same_outcome(compiled, b"".join(recs), (len(recs) + extra_count, *fields[1:]))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), decode_fields)
def test_decoders_agree_on_random_bytes(
    compiled: RecordCodec, section: bytes, fields: tuple[int, int, int, int, int]
) -> None:
    same_outcome(compiled, section, fields)


valid_records = st.lists(
    st.tuples(st.none() | st.binary(max_size=40), st.none() | st.binary(max_size=300), header_lists, deltas),
    min_size=1,
    max_size=40,
)


def python_section(recs: list[tuple[Any, ...]]) -> bytes:
    """The records section of ``recs`` (deltas within 2**62 of BASE_TS), as the Python builder makes it."""
    builder = PYTHON_CODEC.new_builder(BASE_TS, 1 << 30)
    for key, value, headers, delta in recs:
        builder.append(key, value, encode_headers(headers), BASE_TS + delta)
    return builder.section()


def encodable(recs: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return [r for r in recs if abs(r[3]) < (1 << 62)]


mutations = st.lists(
    st.tuples(
        st.sampled_from(["flip", "cut", "insert", "delete", "varint"]),
        st.floats(0, 1),  # where, as a fraction of the section
        st.binary(min_size=1, max_size=10) | varints(),
    ),
    min_size=1,
    max_size=4,
)


def damage(section: bytes, changes: list[tuple[str, float, bytes]]) -> bytes:
    data = bytearray(section)
    for kind, where, extra in changes:
        at = min(int(where * len(data)), max(len(data) - 1, 0))
        if kind == "flip" and data:
            data[at] ^= extra[0] or 0xFF
        elif kind == "cut":
            del data[at:]
        elif kind in ("insert", "varint"):
            data[at:at] = extra
        elif kind == "delete":
            del data[at : at + len(extra)]
    return bytes(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_records, mutations, st.integers(-1, 2), decode_fields)
def test_decoders_agree_on_damaged_sections(
    compiled: RecordCodec,
    recs: list[tuple[Any, ...]],
    changes: list[tuple[str, float, bytes]],
    extra_count: int,
    fields: tuple[int, int, int, int, int],
) -> None:
    recs = encodable(recs)
    assume(recs)
    section = damage(python_section(recs), changes)
    same_outcome(compiled, section, (len(recs) + extra_count, *fields[1:]))


# --- whole fetches: batches with headers, compression, CRCs ------------------------------------------


def batch_at(section_records: list[tuple[Any, ...]], base_offset: int, codec_id: int) -> bytes:
    builder = PYTHON_CODEC.new_builder(BASE_TS, 1 << 30)
    for key, value, headers, delta in section_records:
        builder.append(key, value, encode_headers(headers), BASE_TS + delta)
    batch = bytearray(builder.build(codec_id))
    struct.pack_into(">q", batch, 0, base_offset)
    return bytes(batch)


def rebuilt(
    batch: bytes, section: bytes, *, count: int | None = None, attributes: int | None = None
) -> bytes:
    """``batch`` with another records section (compressed as the batch says), count or attributes, and
    the length and CRC that make it pass every check but the records' own."""
    header = rb.parse_header(batch)
    attributes = header.attributes if attributes is None else attributes
    body = bytearray(batch[rb.CRC_START : rb.HEADER_SIZE])
    struct.pack_into(">h", body, 0, attributes)
    if count is not None:
        struct.pack_into(">i", body, 36, count)
    body += codec.compress(attributes & rb.CODEC_MASK, section)
    head = bytearray(batch[: rb.CRC_START])
    struct.pack_into(">i", head, 8, len(body) + 9)
    struct.pack_into(">I", head, 17, rb.checksum(body))
    return bytes(head + body)


class Fetch(NamedTuple):
    data: bytes
    from_offset: int
    end_offset: int | None  # the next offset, for an undamaged fetch with every batch whole


@st.composite
def fetches(draw: st.DrawFn) -> Fetch:
    """One to three batches (compressed or not) as a Fetch answer carries them; maybe one of them with a
    damaged records section, a lying count or log-append time behind a valid CRC; maybe cut short."""
    batch_records = st.lists(
        st.tuples(
            st.none() | st.binary(max_size=20),
            st.none() | st.binary(max_size=200),
            header_lists,
            st.integers(-100_000, 100_000),
        ),
        min_size=1,
        max_size=30,
    )
    codecs = st.sampled_from([rb.CODEC_NONE, rb.CODEC_ZSTD, rb.CODEC_GZIP])
    first_offset = draw(st.integers(0, 1 << 40))
    parts = []
    offset = first_offset
    for recs, codec_id in draw(st.lists(st.tuples(batch_records, codecs), min_size=1, max_size=3)):
        parts.append(batch_at(recs, offset, codec_id))
        offset += len(recs)
    damaged = draw(st.booleans())
    if damaged:
        index = draw(st.integers(0, len(parts) - 1))
        header = rb.parse_header(parts[index])
        section = codec.decompress(header.attributes & rb.CODEC_MASK, parts[index][rb.HEADER_SIZE :])
        log_append_time = rb.ATTR_LOG_APPEND_TIME if draw(st.booleans()) else 0
        parts[index] = rebuilt(
            parts[index],
            damage(section, draw(mutations)),
            count=draw(st.none() | st.integers(-3, 50)),
            attributes=header.attributes | log_append_time,
        )
    data = b"".join(parts)
    kept = draw(st.sampled_from([1.0, 1.0, 0.5, 0.9]) | st.floats(0.5, 1.0))
    cut = data[: max(rb.HEADER_SIZE, int(len(data) * kept))]  # the broker may cut the last batch
    whole = not damaged and cut == data
    return Fetch(cut, first_offset + draw(st.integers(0, 10) | st.integers(0, 80)), offset if whole else None)


def fetch_outcome(decoder: RecordCodec, data: bytes, from_offset: int) -> Any:
    try:
        fetched = decoder.decode_fetched(data, "q", 2, from_offset)
    except Exception as exc:
        return type(exc), str(exc)
    return [tuple(r) for r in fetched.records], fetched.next_offset


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fetches())
def test_decode_fetched_agrees_on_whole_and_damaged_fetches(compiled: RecordCodec, fetch: Fetch) -> None:
    expected = fetch_outcome(PYTHON_CODEC, fetch.data, fetch.from_offset)
    assert fetch_outcome(compiled, fetch.data, fetch.from_offset) == expected
    if fetch.end_offset is not None:
        assert expected[1] == max(fetch.end_offset, fetch.from_offset)


@settings(max_examples=60, deadline=None)
@given(valid_records, st.integers(0, 1 << 40))
def test_decoders_give_the_records_that_were_built(
    compiled: RecordCodec, recs: list[tuple[Any, ...]], base_offset: int
) -> None:
    recs = encodable(recs)
    assume(recs)
    section = python_section(recs)
    got = same_outcome(compiled, section, (len(recs), base_offset, BASE_TS, 1, 0))
    assert [r[2][2:] for r in got] == [
        (base_offset + i, BASE_TS + delta, key, value, tuple(headers))
        for i, (key, value, headers, delta) in enumerate(recs)
    ]


def test_compiled_records_are_left_out_of_the_cyclic_gc(compiled: RecordCodec) -> None:
    # They can be in no cycle, and the collector never untracks a tuple subclass by itself: tracked,
    # every record still alive would be walked again at each collection (most of a consumer's time).
    builder = compiled.new_builder(BASE_TS, 1 << 20)
    builder.append(b"k", b"v", encode_headers([("h", b"1"), ("n", None)]), BASE_TS)
    builder.append(None, None, b"\x00", BASE_TS)
    got = compiled.decode_fetched(builder.build(), "q", 0, 0).records
    assert [gc.is_tracked(r) for r in got] == [False, False]
    assert not any(gc.is_tracked(h) for h in (got[0].headers, *got[0].headers))


def test_now_ms_and_future_fields_of_the_compiled_module(compiled: RecordCodec) -> None:
    module = records.COMPILED_MODULE
    if module is None:  # this process was forced to the pure-Python codec
        pytest.skip(f"{records.PURE_PYTHON_ENV}=1")
    before = time.time_ns() // 1_000_000
    now = module.now_ms()
    assert before <= now <= time.time_ns() // 1_000_000
    assert RecordFuture.__mro__[1] is module.FutureFields
    # A future can be in a cycle (its completion keeps it while a done callback waits): collectable.
    freed = threading.Event()

    class Callback:
        def __call__(self, future: RecordFuture) -> None:
            pass

        def __del__(self) -> None:
            freed.set()

    completion = Completion(SimpleNamespace(), "q", 0)
    future = RecordFuture(completion, 3, now)
    assert (future._c, future._delta, future._ts) == (completion, 3, now)
    completion._callbacks = [(Callback(), future)]
    del completion, future
    gc.collect()
    assert freed.is_set()
