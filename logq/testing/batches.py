"""Batch factories for tests and benchmarks."""

from __future__ import annotations

from logq import batch as rb
from logq import codec


def make_batch(
    count: int = 3,
    *,
    value_size: int = 16,
    timestamp: int = 1_000,
    producer_id: int = rb.NO_PRODUCER_ID,
    producer_epoch: int = -1,
    sequence: int = rb.NO_SEQUENCE,
    compression: int = rb.CODEC_NONE,
    tag: int = 0,
) -> bytes:
    """A batch of ``count`` records (keys ``k<i>``, values that embed ``tag``, timestamps ``timestamp + i``),
    as a producer would send it."""
    fill = max(value_size - 12, 0)
    records = [
        rb.Record(
            value=f"{tag:06d}:{i:05d}".encode() + b"x" * fill,
            key=f"k{i}".encode(),
            timestamp=timestamp + i,
        )
        for i in range(count)
    ]
    if compression == rb.CODEC_NONE:
        return rb.build_batch(
            records,
            base_timestamp=timestamp,
            producer_id=producer_id,
            producer_epoch=producer_epoch,
            base_sequence=sequence,
        )
    raw, _, _ = rb.encode_records(records, timestamp)
    return rb.build_batch(
        records,
        base_timestamp=timestamp,
        producer_id=producer_id,
        producer_epoch=producer_epoch,
        base_sequence=sequence,
        attributes=compression,
        compressed_records=codec.compress(compression, raw),
    )
