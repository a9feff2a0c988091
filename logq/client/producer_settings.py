"""The producer's setting tables and the checks of its numeric settings (Kafka's producer configs of the
same names: ``linger_ms`` = linger.ms ...)."""

from __future__ import annotations

from logq import batch as rb

__all__ = ["ACKS", "CODECS", "MAX_IDEMPOTENT_IN_FLIGHT", "MIN_REQUEST_SIZE", "check_number", "parse_acks"]

CODECS = {"none": rb.CODEC_NONE, "gzip": rb.CODEC_GZIP, "zstd": rb.CODEC_ZSTD}
ACKS = {0: 0, 1: 1, -1: -1, "all": -1, "0": 0, "1": 1, "-1": -1}
MAX_IDEMPOTENT_IN_FLIGHT = 5  # the broker remembers the last 5 batches of each producer (protocol.md §5)
MIN_REQUEST_SIZE = 128


def check_number(name: str, value: object, low: float, *, integer: bool = True) -> None:
    """ValueError unless ``value`` is an int (or, unless ``integer``, a float) of at least ``low``."""
    kinds: tuple[type, ...] = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or value < low:  # type: ignore[operator]
        kind = "an integer" if integer else "a number"
        raise ValueError(f"{name} must be {kind} >= {low:g}, not {value!r}")


def parse_acks(acks: object) -> int:
    """The wire value of an ``acks`` setting (0, 1, -1 or 'all', also as strings)."""
    if isinstance(acks, bool) or not isinstance(acks, int | str) or acks not in ACKS:
        raise ValueError(f"acks must be 0, 1, -1 or 'all', not {acks!r}")
    return ACKS[acks]
