"""Typed settings. Names follow Kafka's dotted keys; ``from_mapping`` accepts those keys."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MIB = 1 << 20
GIB = 1 << 30
DAY_MS = 24 * 3600 * 1000
LONG_MAX = 2**63 - 1


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
    cleanup_policy: str = "delete"  # cleanup.policy: delete | compact | compact,delete
    compression_type: str = "producer"  # compression.type: producer keeps batches as sent, else a codec
    message_timestamp_type: str = "CreateTime"  # message.timestamp.type: CreateTime | LogAppendTime
    delete_retention_ms: int = DAY_MS  # delete.retention.ms: how long a compacted queue keeps tombstones
    min_compaction_lag_ms: int = 0  # min.compaction.lag.ms: a record stays uncompacted at least this long
    max_compaction_lag_ms: int = LONG_MAX  # max.compaction.lag.ms: ... and at most this long
    min_cleanable_dirty_ratio: float = 0.5  # min.cleanable.dirty.ratio: clean when this much is dirty
    cleaner_dedupe_buffer_size: int = 128 * MIB  # log.cleaner.dedupe.buffer.size: the cleaner's key map
    cleaner_backoff_ms: int = 15_000  # log.cleaner.backoff.ms: the cleaner sleeps this long when idle

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
_FIELDS["log.cleaner.dedupe.buffer.size"] = _FIELDS.pop("cleaner.dedupe.buffer.size")
_FIELDS["log.cleaner.backoff.ms"] = _FIELDS.pop("cleaner.backoff.ms")

# The values a text setting may take (Kafka's names); compression codec names are checked by the broker,
# which knows the codecs it can write.
CLEANUP_POLICIES = ("delete", "compact", "compact,delete")
COMPRESSION_TYPES = ("producer", "uncompressed", "gzip", "snappy", "lz4", "zstd")
TIMESTAMP_TYPES = ("CreateTime", "LogAppendTime")
_CHOICES = {
    "cleanup.policy": CLEANUP_POLICIES,
    "compression.type": COMPRESSION_TYPES,
    "message.timestamp.type": TIMESTAMP_TYPES,
}


def settings_of(config: LogConfig) -> dict[str, Any]:
    """Kafka-style key -> value of every setting of ``config`` (the inverse of ``from_mapping``)."""
    return {key: getattr(config, field.name) for key, field in _FIELDS.items()}


# A queue's name for a setting whose broker-wide key differs (Kafka's topic-level names).
QUEUE_ALIASES = {"flush.ms": "log.flush.interval.ms"}


def field_name(key: str) -> str:
    """The LogConfig field of a Kafka-style key (a queue alias too); KeyError when there is none."""
    return _FIELDS[QUEUE_ALIASES.get(key, key)].name


def parse_settings(values: Mapping[str, Any]) -> dict[str, Any]:
    """Kafka-style keys -> LogConfig field values, type-checked; unknown keys raise ValueError."""
    kwargs: dict[str, Any] = {}
    for key, raw in values.items():
        field = _FIELDS.get(QUEUE_ALIASES.get(key, key))
        if field is None:
            raise ValueError(f"unknown setting {key!r}")
        kwargs[field.name] = _coerce(key, raw, field.type)
    return kwargs


def _coerce(key: str, raw: Any, type_name: Any) -> Any:
    if type_name in (str, "str"):
        return _choice(key, raw)
    if type_name in (float, "float"):
        return _ratio(key, raw)
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


def _choice(key: str, raw: Any) -> str:
    text = str(raw).strip()
    if key == "cleanup.policy":  # a list in Kafka: "delete,compact" is "compact,delete"
        text = ",".join(sorted({part.strip() for part in text.split(",")}))
    choices = _CHOICES[key]
    if text not in choices:
        raise ValueError(f"setting {key!r} must be one of {', '.join(choices)}, not {raw!r}")
    return text


def _ratio(key: str, raw: Any) -> float:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ValueError(f"setting {key!r} must be a number, not {raw!r}") from None
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"setting {key!r} must be between 0 and 1, not {raw!r}")
    return value
