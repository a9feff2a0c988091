"""Dynamic broker settings: the log defaults that may change while brokers run, their checks, and how a
queue's effective log settings follow from every level (Kafka's precedence).

A setting of a queue's logs is looked up, first found wins, in: the queue's own overrides
(``QueueMetadata.settings``), the dynamic settings of this broker (resource name = broker id), the
cluster-wide dynamic defaults (resource name ""), the broker's configuration file, the built-in default.
The dynamic levels live in the coordinator, so every broker sees the same ones.

Only settings read again on every use are dynamic: per-log values a ``PartitionLog`` reads on each
append, roll or retention run, and the periods of the flush and retention tasks. Settings fixed when a
log or the broker starts (``index.interval.bytes``, ``log.preallocate.bytes``, ``log.fsync.before.ack``,
the cleaner's buffer, listeners, ...) need a restart.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from logq.config import QUEUE_ALIASES, LogConfig, parse_settings, settings_of
from logq.errors import InvalidConfigError
from logq.queues import QUEUE_SETTINGS, validate_queue_settings

# Changeable without a restart, on the broker resource (logq's configuration-file names).
DYNAMIC_BROKER_SETTINGS = frozenset(
    {
        "retention.ms",
        "retention.bytes",
        "segment.bytes",
        "segment.ms",
        "max.message.bytes",
        "cleanup.policy",
        "compression.type",
        "message.timestamp.type",
        "delete.retention.ms",
        "min.compaction.lag.ms",
        "max.compaction.lag.ms",
        "min.cleanable.dirty.ratio",
        "log.flush.interval.ms",
        "retention.check.interval.ms",
        "file.delete.delay.ms",
        "log.cleaner.backoff.ms",
    }
)

# Kafka's broker-level names of these settings, so that a Kafka user is told logq's name.
KAFKA_BROKER_NAMES = {
    "log.retention.ms": "retention.ms",
    "log.retention.bytes": "retention.bytes",
    "log.segment.bytes": "segment.bytes",
    "log.roll.ms": "segment.ms",
    "message.max.bytes": "max.message.bytes",
    "log.cleanup.policy": "cleanup.policy",
    "log.message.timestamp.type": "message.timestamp.type",
    "log.cleaner.delete.retention.ms": "delete.retention.ms",
    "log.cleaner.min.compaction.lag.ms": "min.compaction.lag.ms",
    "log.cleaner.max.compaction.lag.ms": "max.compaction.lag.ms",
    "log.cleaner.min.cleanable.ratio": "min.cleanable.dirty.ratio",
    "log.retention.check.interval.ms": "retention.check.interval.ms",
    "log.segment.delete.delay.ms": "file.delete.delay.ms",
}

# List settings, the only ones IncrementalAlterConfigs may APPEND to or SUBTRACT from.
LIST_SETTINGS = frozenset({"cleanup.policy"})

_EMPTY: Mapping[str, str] = MappingProxyType({})


class ConfigSource(enum.IntEnum):
    """Kafka's DescribeConfigsResponse.ConfigSource: where a setting's value comes from."""

    DYNAMIC_TOPIC_CONFIG = 1  # the queue's own override
    DYNAMIC_BROKER_CONFIG = 2  # this broker's dynamic setting
    DYNAMIC_DEFAULT_BROKER_CONFIG = 3  # the cluster-wide dynamic default
    STATIC_BROKER_CONFIG = 4  # the broker's configuration file (or flags)
    DEFAULT_CONFIG = 5  # built in


@dataclass(frozen=True, slots=True)
class DynamicBrokerSettings:
    """The dynamic settings stored in the coordinator: cluster-wide, and per broker id."""

    cluster_default: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    per_broker: Mapping[int, Mapping[str, str]] = field(default_factory=lambda: MappingProxyType({}))

    def of_broker(self, broker_id: int) -> Mapping[str, str]:
        return self.per_broker.get(broker_id, _EMPTY)

    def for_broker(self, broker_id: int) -> dict[str, str]:
        """What applies on ``broker_id``: its own settings over the cluster-wide ones."""
        return {**self.cluster_default, **self.of_broker(broker_id)}

    def replaced(self, broker_id: int | None, settings: Mapping[str, str]) -> DynamicBrokerSettings:
        """A copy with one level's settings replaced (None: the cluster-wide level)."""
        frozen = MappingProxyType(dict(settings))
        if broker_id is None:
            return DynamicBrokerSettings(frozen, self.per_broker)
        per_broker = {b: s for b, s in self.per_broker.items() if b != broker_id}
        if settings:
            per_broker[broker_id] = frozen
        return DynamicBrokerSettings(self.cluster_default, MappingProxyType(per_broker))


def validate_broker_settings(
    settings: Mapping[str, str | None], static_keys: Collection[str]
) -> dict[str, str]:
    """Check dynamic broker settings (``static_keys``: every key of the configuration file); returns them
    normalised. INVALID_CONFIG naming the key for a key that needs a restart, an unknown key, a bad value."""
    out: dict[str, str] = {}
    for key, value in settings.items():
        if key not in DYNAMIC_BROKER_SETTINGS:
            if key in static_keys:
                raise InvalidConfigError(
                    f"setting {key!r} cannot be changed without a restart (dynamic: "
                    f"{', '.join(sorted(DYNAMIC_BROKER_SETTINGS))})"
                )
            hint = f" (logq's name for it: {KAFKA_BROKER_NAMES[key]})" if key in KAFKA_BROKER_NAMES else ""
            raise InvalidConfigError(f"unknown broker setting {key!r}{hint}")
        if value is None:
            raise InvalidConfigError(f"setting {key!r} needs a value")
        out[key] = _checked_broker_value(key, value)
    return out


def _checked_broker_value(key: str, value: str) -> str:
    if key in QUEUE_SETTINGS:  # the same checks as on a queue
        return validate_queue_settings({key: value})[key]
    try:
        parsed = parse_settings({key: value})[key.removeprefix("log.").replace(".", "_")]
    except ValueError as e:
        raise InvalidConfigError(str(e)) from None
    least = 0 if key == "file.delete.delay.ms" else 1  # a period of 0 would spin
    if parsed < least:
        raise InvalidConfigError(f"setting {key!r} must be at least {least}")
    return str(parsed)


def broker_log_defaults(static: LogConfig, dynamic: DynamicBrokerSettings, broker_id: int) -> LogConfig:
    """The log defaults in force on ``broker_id``: the configuration file's, with the dynamic ones over."""
    return static.with_overrides(dynamic.for_broker(broker_id))


def setting_chain(
    key: str,
    *,
    static: LogConfig,
    dynamic: DynamicBrokerSettings,
    broker_id: int | None,
    queue_settings: Mapping[str, str] | None = None,
) -> list[tuple[ConfigSource, str]]:
    """Every level that gives ``key`` a value, in Kafka's order (the first one is in force); the built-in
    default is always last. ``broker_id`` None skips the per-broker level (the cluster-wide resource)."""
    chain: list[tuple[ConfigSource, str]] = []
    if queue_settings is not None and key in queue_settings:
        chain.append((ConfigSource.DYNAMIC_TOPIC_CONFIG, queue_settings[key]))
    broker_key = QUEUE_ALIASES.get(key, key)  # flush.ms on a queue is log.flush.interval.ms on a broker
    if broker_id is not None and broker_key in dynamic.of_broker(broker_id):
        chain.append((ConfigSource.DYNAMIC_BROKER_CONFIG, dynamic.of_broker(broker_id)[broker_key]))
    if broker_key in dynamic.cluster_default:
        chain.append((ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG, dynamic.cluster_default[broker_key]))
    built_in = _text(settings_of(LogConfig()).get(broker_key))
    configured = _text(settings_of(static).get(broker_key))
    if configured != built_in:
        chain.append((ConfigSource.STATIC_BROKER_CONFIG, configured))
    chain.append((ConfigSource.DEFAULT_CONFIG, built_in))
    return chain


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)
