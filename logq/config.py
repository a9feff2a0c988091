"""Typed settings. Names follow Kafka's dotted keys; ``from_mapping`` accepts those keys."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MIB = 1 << 20
GIB = 1 << 30
DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True, slots=True)
class LogConfig:
    """Per-partition log settings (a queue may override them at creation)."""

    segment_bytes: int = GIB  # segment.bytes: roll when the active segment would grow past this
    segment_ms: int = 7 * DAY_MS  # segment.ms: roll a non-empty active segment older than this
    retention_ms: int = 7 * DAY_MS  # retention.ms: -1 keeps data forever
    retention_bytes: int = -1  # retention.bytes: -1 means no size limit
    max_message_bytes: int = 1048588  # max.message.bytes: the largest batch accepted (Kafka's default)
    index_interval_bytes: int = 4096  # index.interval.bytes: bytes between two offset-index entries
    flush_interval_ms: int = 1000  # log.flush.interval.ms: background fsync period
    file_delete_delay_ms: int = 60_000  # file.delete.delay.ms: a deleted segment's file lingers this long
    retention_check_interval_ms: int = 300_000  # retention.check.interval.ms
    fsync_before_ack: bool = True  # log.fsync.before.ack: acks=all waits for fsync
    preallocate_bytes: int = 4 * MIB  # log.preallocate.bytes: disk blocks reserved ahead of appends; 0: none

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> LogConfig:
        """Build from Kafka-style keys (``segment.bytes``); unknown keys raise ValueError naming them."""
        return cls(**parse_settings(values))

    def with_overrides(self, values: Mapping[str, Any]) -> LogConfig:
        """A copy with some Kafka-style keys replaced (per-queue overrides of the broker defaults)."""
        return dataclasses.replace(self, **parse_settings(values))


# Kafka-style key -> field; the broker-wide keys carry Kafka's "log." prefix.
_FIELDS = {f.name.replace("_", "."): f for f in dataclasses.fields(LogConfig)}
_FIELDS["log.flush.interval.ms"] = _FIELDS.pop("flush.interval.ms")
_FIELDS["log.fsync.before.ack"] = _FIELDS.pop("fsync.before.ack")
_FIELDS["log.preallocate.bytes"] = _FIELDS.pop("preallocate.bytes")


def settings_of(config: LogConfig) -> dict[str, Any]:
    """Kafka-style key -> value of every setting of ``config`` (the inverse of ``from_mapping``)."""
    return {key: getattr(config, field.name) for key, field in _FIELDS.items()}


def parse_settings(values: Mapping[str, Any]) -> dict[str, Any]:
    """Kafka-style keys -> LogConfig field values, type-checked; unknown keys raise ValueError."""
    kwargs: dict[str, Any] = {}
    for key, raw in values.items():
        field = _FIELDS.get(key)
        if field is None:
            raise ValueError(f"unknown setting {key!r}")
        kwargs[field.name] = _coerce(key, raw, field.type)
    return kwargs


def _coerce(key: str, raw: Any, type_name: Any) -> Any:
    if type_name in (bool, "bool"):
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.lower() in ("true", "false"):
            return raw.lower() == "true"
        raise ValueError(f"setting {key!r} must be true or false, not {raw!r}")
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise ValueError(f"setting {key!r} must be an integer, not {raw!r}") from None
    if isinstance(raw, bool):
        raise ValueError(f"setting {key!r} must be an integer, not {raw!r}")
    return value
