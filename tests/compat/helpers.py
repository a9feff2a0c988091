"""Shared pieces of the compatibility tests: the messages every client sends, the checks on what it reads
back, and a raw Fetch that shows how the broker stored the batches."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from logq import batch as rb
from logq.protocol import messages as m
from tests.wire_client import WireClient

N_MESSAGES = 10_000
PARTITIONS = 3
CODECS = ("none", "gzip", "zstd")
CODEC_BITS = {"none": rb.CODEC_NONE, "gzip": rb.CODEC_GZIP, "zstd": rb.CODEC_ZSTD}
# Every wait in these tests is bounded by this (seconds): nothing may hang CI.
DEADLINE_S = 60.0
# Compressible filler, so a compressed batch is clearly smaller and clients do compress it.
PADDING = b" payload" * 8
# Consumers fetch at most this much per partition (clients default to 1 MiB), so reading a queue takes
# many fetches, and batches larger than the limit must still come back whole (KIP-74).
FETCH_PARTITION_BYTES = 16_384
FETCH_BYTES = 65_536


@dataclass(frozen=True)
class Sent:
    """One message as produced; ``timestamp`` None = set by the client, checked separately."""

    seq: int
    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...]
    timestamp: int | None


@dataclass(frozen=True)
class Received:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]
    timestamp: int


def now_ms() -> int:
    return int(time.time() * 1000)


def make_messages(variant: str, count: int = N_MESSAGES) -> list[Sent]:
    """Keys, values with a sequence number, per-message headers (one binary) and explicit CreateTime
    timestamps one ms apart, so offsets_for_times has a distinct answer in every partition."""
    base = now_ms() - 600_000
    return [
        Sent(
            seq=i,
            key=b"key-%06d" % i,
            value=encode_value(variant, i),
            headers=(("seq", b"%d" % i), ("variant", variant.encode()), ("bin", bytes([i % 256, 0, 255]))),
            timestamp=base + i,
        )
        for i in range(count)
    ]


def encode_value(variant: str, seq: int) -> bytes:
    return b"%s|%06d|%s" % (variant.encode(), seq, PADDING)


def seq_of(value: bytes | None) -> int:
    assert value is not None
    return int(value.split(b"|")[1])


def check_round_trip(
    received: Sequence[Received], sent: Sequence[Sent], partitions: int = PARTITIONS
) -> dict[int, list[Received]]:
    """Everything sent was read back exactly once, intact, and in order within each partition (offsets
    0..n-1 with increasing sequence numbers). Returns the records by partition, in offset order."""
    by_seq = {s.seq: s for s in sent}
    seqs = [seq_of(r.value) for r in received]
    assert len(seqs) == len(set(seqs)), f"{len(seqs) - len(set(seqs))} duplicates read back"
    missing = set(by_seq) - set(seqs)
    assert not missing, f"{len(missing)} of {len(sent)} messages not read back, e.g. {sorted(missing)[:5]}"
    assert len(received) == len(sent)
    by_partition: dict[int, list[Received]] = {p: [] for p in range(partitions)}
    for r in received:
        by_partition[r.partition].append(r)
    for p, records in by_partition.items():
        assert records, f"partition {p} got nothing: the keys should spread over all partitions"
        assert [r.offset for r in records] == list(range(len(records))), f"partition {p}: offsets"
        order = [seq_of(r.value) for r in records]
        assert order == sorted(order), f"partition {p}: records out of production order"
    for r in received:
        s = by_seq[seq_of(r.value)]
        assert (r.key, r.value, r.headers) == (s.key, s.value, s.headers), f"message {s.seq} differs"
        if s.timestamp is not None:
            assert r.timestamp == s.timestamp, f"message {s.seq}: timestamp {r.timestamp} != {s.timestamp}"
    return by_partition


def check_read_from(
    received: Sequence[Received], by_partition: dict[int, list[Received]], start: dict[int, int]
) -> None:
    """Reading from ``start`` (an offset per partition, usually inside a compressed batch, which the
    broker returns whole for the client to skip into) gives exactly the records from there on."""
    got = {p: [r for r in received if r.partition == p] for p in by_partition}
    assert got == {p: records[start[p] :] for p, records in by_partition.items()}


def first_offsets_at_or_after(by_partition: dict[int, list[Received]], ts: int) -> dict[int, int | None]:
    """What ListOffsets(ts) must answer per partition: the first offset whose timestamp is >= ts."""
    return {
        p: next((r.offset for r in records if r.timestamp >= ts), None) for p, records in by_partition.items()
    }


def stored_codecs(bootstrap: str, queue: str, partitions: int = PARTITIONS) -> Counter[int]:
    """Records per compression codec as the broker stores them: raw Fetch v11, reading the codec bits of
    each batch's attributes (byte 21) without decompressing anything."""
    codecs: Counter[int] = Counter()
    with WireClient(bootstrap) as client:
        for partition in range(partitions):
            offset, high_watermark = 0, 1
            while offset < high_watermark:
                wanted = m.FetchPartition(
                    partition=partition, fetch_offset=offset, partition_max_bytes=1 << 20
                )
                request = m.FetchRequest(
                    max_wait_ms=0,
                    min_bytes=1,
                    max_bytes=1 << 20,
                    topics=[m.FetchTopic(topic=queue, partitions=[wanted])],
                )
                got = client.call(request, 11).responses[0].partitions[0]
                assert got.error_code == 0
                high_watermark = got.high_watermark
                data = bytes(got.records or b"")
                pos, start = 0, offset
                while len(data) - pos >= rb.HEADER_SIZE:
                    header = rb.parse_header(data, pos)
                    if pos + header.size > len(data):  # a partial batch at the end of the response
                        break
                    codecs[header.attributes & rb.CODEC_MASK] += header.records_count
                    offset, pos = header.last_offset + 1, pos + header.size
                assert offset > start or offset >= high_watermark, "a fetch made no progress"
    return codecs


def check_codec(codecs: Counter[int], variant: str) -> None:
    """The batches use the producer's codec. librdkafka sends a batch uncompressed when compressing would
    not save bytes (docs/protocol.md, "Clients' quirks"), so a few tiny batches may be codec 0, but not most
    records."""
    expected = CODEC_BITS[variant]
    total = sum(codecs.values())
    assert set(codecs) <= {expected, rb.CODEC_NONE}, f"codecs {dict(codecs)} for {variant}"
    assert codecs[expected] >= 0.9 * total, f"codecs {dict(codecs)} for {variant}"
