"""Queue names and per-queue settings: the validation every path that creates a queue shares."""

from __future__ import annotations

import re
from collections.abc import Mapping

from logq.config import QUEUE_ALIASES, LogConfig, field_name, parse_settings, settings_of
from logq.errors import InvalidConfigError, InvalidQueueNameError

MAX_NAME_LENGTH = 249
_NAME = re.compile(r"^[a-zA-Z0-9._-]+$")
INTERNAL_PREFIX = "__"

DEFAULT_MIN_INSYNC_REPLICAS = 1  # with fewer than 3 replicas; not a log setting, so not in LogConfig
MIN_INSYNC_REPLICAS_FROM_3 = 2  # the default once a queue has 3 or more replicas

# Settings a queue may override (the rest are broker-wide).
QUEUE_SETTINGS = frozenset(
    {
        "retention.ms",
        "retention.bytes",
        "segment.bytes",
        "segment.ms",
        "max.message.bytes",
        "min.insync.replicas",
        "cleanup.policy",
        "compression.type",
        "message.timestamp.type",
        "delete.retention.ms",
        "min.compaction.lag.ms",
        "max.compaction.lag.ms",
        "min.cleanable.dirty.ratio",
        "flush.ms",  # the queue's log.flush.interval.ms
        "file.delete.delay.ms",
    }
)

# Kafka queue settings logq refuses on purpose, with the reason a user is told.
REFUSED_SETTINGS = {
    "unclean.leader.election.enable": "logq never elects a replica outside the ISR: it would lose "
    "acknowledged records (docs/reliability.md)",
}


def validate_queue_name(name: str) -> None:
    """Kafka's topic rules: 1-249 characters of [a-zA-Z0-9._-], and not "." or ".."."""
    if not name:
        raise InvalidQueueNameError("queue name is empty")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidQueueNameError(
            f"queue name is {len(name)} characters long; the limit is {MAX_NAME_LENGTH}"
        )
    if name in (".", ".."):
        raise InvalidQueueNameError(f"queue name {name!r} is not allowed")
    if not _NAME.match(name):
        raise InvalidQueueNameError(f"queue name {name!r} may only contain letters, digits, '.', '_' and '-'")


def collides(a: str, b: str) -> bool:
    """'.' and '_' collide in metric names, so Kafka refuses queues that differ only by them."""
    return a != b and a.replace(".", "_") == b.replace(".", "_")


def validate_queue_settings(settings: Mapping[str, str | None]) -> dict[str, str]:
    """Check per-queue overrides; returns them with their values as (normalised) strings."""
    out: dict[str, str] = {}
    for key, value in settings.items():
        if key in REFUSED_SETTINGS:
            raise InvalidConfigError(f"setting {key!r} is not supported: {REFUSED_SETTINGS[key]}")
        if key not in QUEUE_SETTINGS:
            raise InvalidConfigError(
                f"setting {key!r} cannot be set on a queue (allowed: {', '.join(sorted(QUEUE_SETTINGS))})"
            )
        if value is None:
            raise InvalidConfigError(f"setting {key!r} needs a value")
        out[key] = _checked_value(key, value)
    return out


def _checked_value(key: str, value: str) -> str:
    if key == "min.insync.replicas":  # not a log setting
        parsed: object = _integer(key, value)
        if int(value) < 1:
            raise InvalidConfigError("min.insync.replicas must be at least 1")
        return str(parsed)
    try:
        parsed = parse_settings({key: value})[field_name(key)]
    except ValueError as e:
        raise InvalidConfigError(str(e)) from None
    if isinstance(parsed, int) and not isinstance(parsed, bool):
        if key in ("segment.bytes", "max.message.bytes", "segment.ms", "flush.ms") and parsed < 1:
            raise InvalidConfigError(f"setting {key!r} must be positive")
        if key in ("retention.ms", "retention.bytes") and parsed < -1:
            raise InvalidConfigError(f"setting {key!r} must be -1 (unlimited) or more")
        if (
            key
            in (
                "delete.retention.ms",
                "min.compaction.lag.ms",
                "max.compaction.lag.ms",
                "file.delete.delay.ms",
            )
            and parsed < 0
        ):
            raise InvalidConfigError(f"setting {key!r} must be 0 or more")
        if key == "max.compaction.lag.ms" and parsed < 1:
            raise InvalidConfigError(f"setting {key!r} must be positive")
    return str(parsed)


def _integer(key: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise InvalidConfigError(f"setting {key!r} must be an integer, not {value!r}") from None


def log_config_for(defaults: LogConfig, settings: Mapping[str, str]) -> LogConfig:
    """The log settings of a queue: the broker defaults with the queue's overrides applied."""
    return defaults.with_overrides({k: v for k, v in settings.items() if k != "min.insync.replicas"})


def min_insync_replicas(settings: Mapping[str, str], replication_factor: int) -> int:
    """The queue's min.insync.replicas: its own setting, else 2 with 3 or more replicas (one broker may
    fail and acks=all still means two copies), else 1."""
    explicit = settings.get("min.insync.replicas")
    if explicit is not None:
        return int(explicit)
    return MIN_INSYNC_REPLICAS_FROM_3 if replication_factor >= 3 else DEFAULT_MIN_INSYNC_REPLICAS


def queue_setting_values(
    config: LogConfig, settings: Mapping[str, str] | None = None, replication_factor: int = 1
) -> dict[str, str]:
    """Every per-queue setting by name, as a string: the log settings from ``config`` (a queue's effective
    log config, or the broker defaults) and min.insync.replicas from ``settings`` (a queue's overrides)
    and its replication factor."""
    logs = settings_of(config)
    values = {
        key: str(logs[QUEUE_ALIASES.get(key, key)]) for key in QUEUE_SETTINGS if key != "min.insync.replicas"
    }
    values["min.insync.replicas"] = str(min_insync_replicas(settings or {}, replication_factor))
    return dict(sorted(values.items()))
