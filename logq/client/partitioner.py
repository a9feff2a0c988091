"""Kafka's default key partitioner: murmur2 of the key bytes, made positive, modulo the partition count.

Bit for bit the Java client's ``Utils.murmur2`` and ``toPositive`` (and librdkafka's ``murmur2_random``
for non-null keys), so that the same key lands in the same partition whichever client produced it.
"""

from __future__ import annotations

_M = 0x5BD1E995
_SEED = 0x9747B28C
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Murmur2 (32-bit, Kafka's seed) of ``data``, as a signed 32-bit integer like Java's."""
    length = len(data)
    h = (_SEED ^ length) & _MASK
    body = length - (length & 3)
    for i in range(0, body, 4):
        k = data[i] | data[i + 1] << 8 | data[i + 2] << 16 | data[i + 3] << 24
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    rest = length & 3
    if rest == 3:
        h ^= data[body + 2] << 16
    if rest >= 2:
        h ^= data[body + 1] << 8
    if rest >= 1:
        h ^= data[body]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def partition_for_key(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner picks for a non-null key."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions
