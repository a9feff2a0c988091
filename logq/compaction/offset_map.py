"""OffsetMap: key -> offset of its latest record in the dirty section, in bounded memory (Kafka's
SkimpyOffsetMap).

A key is stored as a fixed-size digest (16 bytes of BLAKE2b, as Kafka stores an MD5), so long keys cost
no more than short ones. The number of entries is capped from ``log.cleaner.dedupe.buffer.size`` the way
Kafka counts it: 24 bytes per entry (digest + offset) at a load factor of 0.9. (A Python dict spends
several times that per entry; the cap is what keeps it bounded.) When the map is full the cleaner cleans
only up to where it covers, and the rest waits for the next pass.
"""

from __future__ import annotations

import hashlib

DIGEST_BYTES = 16
ENTRY_BYTES = DIGEST_BYTES + 8
LOAD_FACTOR = 0.9


def digest(key: bytes) -> bytes:
    return hashlib.blake2b(key, digest_size=DIGEST_BYTES).digest()


class OffsetMap:
    def __init__(self, buffer_bytes: int) -> None:
        self.capacity = max(1, int(buffer_bytes // ENTRY_BYTES * LOAD_FACTOR))
        self._offsets: dict[bytes, int] = {}

    def __len__(self) -> int:
        return len(self._offsets)

    def room(self) -> int:
        """How many more keys fit."""
        return self.capacity - len(self._offsets)

    def put(self, key: bytes, offset: int) -> None:
        """Record ``offset`` as the latest of ``key`` (offsets are put in increasing order). The caller
        checks ``room()`` first: a new key beyond the capacity raises OverflowError."""
        hashed = digest(key)
        if hashed not in self._offsets and len(self._offsets) >= self.capacity:
            raise OverflowError(f"the offset map is full ({self.capacity} keys)")
        self._offsets[hashed] = offset

    def latest(self, key: bytes) -> int | None:
        """The latest offset of ``key`` in the mapped section, or None if the key is not in it."""
        return self._offsets.get(digest(key))

    def clear(self) -> None:
        self._offsets.clear()
