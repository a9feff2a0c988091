"""Handlers of the describe APIs that admin tools use: DescribeLogDirs (kafka-log-dirs.sh: bytes on disk
per partition) and DescribeConfigs (kafka-configs.sh --describe: a queue's settings, or the broker's).

Both only read: the coordinator's metadata, the hosted logs' sizes and the broker's settings. Problems with
one resource become that resource's error code; nothing a client sends makes a handler raise. With an
authorizer, DescribeLogDirs needs DESCRIBE on the cluster (else an empty answer: v0-1 have no error field),
and DescribeConfigs DESCRIBE_CONFIGS on the queue or on the cluster (for the broker).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

from logq.broker.authorization import RequestAuthorizer
from logq.broker.config import BrokerConfig
from logq.broker.handlers import Handler
from logq.broker.metrics import BrokerMetrics
from logq.broker.replica_manager import ReplicaManager
from logq.coordinator import Coordinator, QueueMetadata
from logq.dynamic_settings import DYNAMIC_BROKER_SETTINGS, ConfigSource, setting_chain
from logq.error_codes import ErrorCode
from logq.errors import LogqError, RequestRefusedError
from logq.protocol import RequestHeader
from logq.protocol import messages as m
from logq.queues import min_insync_replicas, queue_setting_values, validate_queue_name
from logq.security.acl import CLUSTER_NAME, AclOperation
from logq.security.acl import ResourceType as AclResourceType


class ResourceType(enum.IntEnum):
    """Kafka's ConfigResource.Type (the ones logq describes)."""

    TOPIC = 2
    BROKER = 4


class ConfigType(enum.IntEnum):
    """Kafka's DescribeConfigsResponse.ConfigType (v3+)."""

    BOOLEAN = 1
    STRING = 2
    INT = 3
    LONG = 5
    DOUBLE = 6
    LIST = 7


# Settings that are Java ints in Kafka; every other integer setting is a long.
_INT_SETTINGS = frozenset(
    {
        "broker.id",
        "num.partitions",
        "socket.request.max.bytes",
        "fetch.max.bytes",
        "offsets.topic.num.partitions",
        "group.initial.rebalance.delay.ms",
        "group.min.session.timeout.ms",
        "group.max.session.timeout.ms",
        "segment.bytes",
        "max.message.bytes",
        "index.interval.bytes",
        "min.insync.replicas",
    }
)
_BOOLEAN_SETTINGS = frozenset(
    {
        "auto.create.queues",
        "delete.queue.enable",
        "log.fsync.before.ack",
        "authorizer.enable",
        "allow.everyone.if.no.acl.found",
    }
)
_STRING_SETTINGS = frozenset(
    {
        "listen",
        "advertised.listener",
        "metrics.listen",
        "data.dir",
        "super.users",
        "compression.type",
        "message.timestamp.type",
    }
)
_DOUBLE_SETTINGS = frozenset({"min.cleanable.dirty.ratio"})
_LIST_SETTINGS = frozenset({"cleanup.policy"})

_QUEUE_DOCS = {
    "retention.ms": "Delete a segment once its newest data is older than this (ms, broker append time); "
    "-1 keeps data forever.",
    "retention.bytes": "Delete the oldest segments while the partition stays at or above this size without "
    "them (bytes); -1 means no limit.",
    "segment.bytes": "Roll the active segment when the next batch would take it past this size (bytes).",
    "segment.ms": "Roll a non-empty active segment whose first batch is older than this (ms).",
    "max.message.bytes": "The largest record batch a producer may send (bytes).",
    "min.insync.replicas": "Replicas that must have a batch before acks=all is answered.",
    "cleanup.policy": "delete: remove old segments by retention; compact: keep the latest record of each "
    "key; compact,delete: both.",
    "compression.type": "producer keeps batches as sent; a codec name makes the broker recompress batches "
    "in another codec.",
    "message.timestamp.type": "CreateTime keeps the producer's timestamps; LogAppendTime stamps batches "
    "with the broker's clock.",
    "delete.retention.ms": "How long a compacted queue keeps a tombstone once the cleaner reached it (ms).",
    "min.compaction.lag.ms": "A record is never compacted before it is this old (ms).",
    "max.compaction.lag.ms": "A record is compacted within about this long, however clean the log (ms).",
    "min.cleanable.dirty.ratio": "Clean a compacted partition once this share of its log is dirty.",
    "flush.ms": "fsync this queue's new data in the background at least this often (ms); acks=all "
    "waits for its own fsync anyway.",
    "file.delete.delay.ms": "How long a deleted or replaced segment file lingers before it is unlinked (ms).",
}


class DescribeHandlers:
    def __init__(
        self,
        config: BrokerConfig,
        coordinator: Coordinator,
        replicas: ReplicaManager,
        metrics: BrokerMetrics,
        auth: RequestAuthorizer | None = None,
    ) -> None:
        self._auth = auth or RequestAuthorizer()
        self._config = config
        self._coordinator = coordinator
        self._replicas = replicas
        self._metrics = metrics
        self._log_dir = str(config.data_dir.absolute())
        self._broker_defaults = BrokerConfig().settings()
        self.by_type: dict[type, Handler] = {
            m.DescribeLogDirsRequest: self.describe_log_dirs,
            m.DescribeConfigsRequest: self.describe_configs,
        }

    def _count_errors(self, api: str, codes: Iterable[int]) -> None:
        for code in codes:
            if code:
                self._metrics.errors.labels(api, str(code)).inc()

    # --- DescribeLogDirs ----------------------------------------------------------------------------

    async def describe_log_dirs(
        self, header: RequestHeader, req: m.DescribeLogDirsRequest
    ) -> m.DescribeLogDirsResponse:
        """One log dir (the data directory). Per requested partition that this broker hosts, its size on
        disk; unknown queues and partitions are simply absent, as in Kafka. Null asks for everything."""
        if not self._auth.allows_cluster(AclOperation.DESCRIBE):
            return m.DescribeLogDirsResponse(results=[])
        queues = self._coordinator.queues()
        wanted: dict[str, set[int] | None] = {}
        if req.topics is None:
            wanted = dict.fromkeys(sorted(queues))
        else:
            for topic in req.topics:
                partitions = wanted.setdefault(topic.topic, set())
                if partitions is not None:
                    partitions.update(topic.partitions)
        topics = []
        for name, partitions in wanted.items():
            meta = queues.get(name)
            if meta is None:
                continue
            count = len(meta.partitions)
            indexes = range(count) if partitions is None else sorted(p for p in partitions if 0 <= p < count)
            described = []
            for index in indexes:
                partition = self._replicas.partition(name, index)
                plog = partition.log if partition is not None else None
                if plog is None:
                    continue
                described.append(
                    m.DescribeLogDirsPartition(
                        partition_index=index,
                        partition_size=plog.size_bytes,
                        offset_lag=max(0, plog.log_end_offset - plog.high_watermark),
                        is_future_key=False,
                    )
                )
            if described:
                topics.append(m.DescribeLogDirsTopic(name=name, partitions=described))
        result = m.DescribeLogDirsResult(error_code=ErrorCode.NONE, log_dir=self._log_dir, topics=topics)
        return m.DescribeLogDirsResponse(results=[result])

    # --- DescribeConfigs ----------------------------------------------------------------------------

    async def describe_configs(
        self, header: RequestHeader, req: m.DescribeConfigsRequest
    ) -> m.DescribeConfigsResponse:
        docs = header.api_version >= 3 and req.include_documentation
        synonyms = header.api_version >= 1 and req.include_synonyms
        results = [self._describe(resource, docs, synonyms) for resource in req.resources]
        self._count_errors("DescribeConfigs", (r.error_code for r in results))
        return m.DescribeConfigsResponse(results=results)

    def _describe(
        self, resource: m.DescribeConfigsResource, docs: bool, synonyms: bool
    ) -> m.DescribeConfigsResult:
        name = resource.resource_name
        try:
            self._check_allowed(resource)
            if resource.resource_type == ResourceType.TOPIC:
                validate_queue_name(name)
                meta = self._coordinator.queues().get(name)
                if meta is None:
                    raise RequestRefusedError(
                        f"queue {name!r} does not exist", code=ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                    )
                entries = self._queue_entries(meta, docs, synonyms)
            elif resource.resource_type == ResourceType.BROKER:
                me = str(self._coordinator.broker_id)
                if name == "":  # the cluster-wide dynamic defaults (only those set, as Kafka)
                    entries = self._cluster_default_entries(synonyms)
                elif name == me:
                    entries = self._broker_entries(synonyms)
                else:
                    raise RequestRefusedError(
                        f"unexpected broker id {name!r}: this is broker {me}", code=ErrorCode.INVALID_REQUEST
                    )
            else:
                raise RequestRefusedError(
                    f"resource type {resource.resource_type} is not supported (2 = topic, 4 = broker)",
                    code=ErrorCode.INVALID_REQUEST,
                )
        except LogqError as exc:
            return m.DescribeConfigsResult(
                error_code=exc.code,
                error_message=str(exc),
                resource_type=resource.resource_type,
                resource_name=name,
                configs=[],
            )
        keys = resource.configuration_keys
        if keys:  # null or empty: every key (as Kafka)
            wanted = set(keys)
            entries = [e for e in entries if e.name in wanted]
        return m.DescribeConfigsResult(
            error_code=ErrorCode.NONE,
            resource_type=resource.resource_type,
            resource_name=name,
            configs=entries,
        )

    def _check_allowed(self, resource: m.DescribeConfigsResource) -> None:
        """DESCRIBE_CONFIGS on the queue, or on the cluster for a broker, before anything is looked up."""
        auth, name, op = self._auth, resource.resource_name, AclOperation.DESCRIBE_CONFIGS
        if resource.resource_type == ResourceType.TOPIC and not auth.allows(op, AclResourceType.TOPIC, name):
            raise RequestRefusedError(
                auth.refusal(op, AclResourceType.TOPIC, name), code=ErrorCode.TOPIC_AUTHORIZATION_FAILED
            )
        if resource.resource_type == ResourceType.BROKER and not auth.allows_cluster(op):
            raise RequestRefusedError(
                auth.refusal(op, AclResourceType.CLUSTER, CLUSTER_NAME),
                code=ErrorCode.CLUSTER_AUTHORIZATION_FAILED,
            )

    def _queue_entries(
        self, meta: QueueMetadata, docs: bool, synonyms: bool
    ) -> list[m.DescribeConfigsResourceResult]:
        """Every queue setting with the value the queue's logs use on this broker, and where it comes
        from: the queue's override, this broker's or the cluster-wide dynamic setting, the configuration
        file, the default (``logq.dynamic_settings.setting_chain``, Kafka's order)."""
        config = self._replicas.log_config(meta)  # with __consumer_offsets' forced retention
        values = queue_setting_values(config, meta.settings, meta.replication_factor)
        dynamic = self._coordinator.broker_settings()
        entries = []
        for key, value in values.items():
            chain: list[tuple[ConfigSource, str | None]]
            if key == "min.insync.replicas":  # not a broker setting; its default follows the replicas
                derived = str(min_insync_replicas({}, meta.replication_factor))
                chain = [(ConfigSource.DEFAULT_CONFIG, derived)]
                if key in meta.settings:
                    chain.insert(0, (ConfigSource.DYNAMIC_TOPIC_CONFIG, value))
            else:
                chain = list(
                    setting_chain(
                        key,
                        static=self._config.log,
                        dynamic=dynamic,
                        broker_id=self._coordinator.broker_id,
                        queue_settings=meta.settings,
                    )
                )
                if value != chain[0][1]:  # forced, as __consumer_offsets' retention is
                    chain.insert(0, (ConfigSource.DYNAMIC_TOPIC_CONFIG, value))
            entries.append(
                _entry(
                    key,
                    value,
                    chain[0][0],
                    read_only=False,
                    documentation=_QUEUE_DOCS.get(key) if docs else None,
                    synonyms=chain if synonyms else [],
                )
            )
        return entries

    def _broker_entries(self, synonyms: bool) -> list[m.DescribeConfigsResourceResult]:
        """The broker's settings: the dynamic ones with their value in force and its source, the rest
        read-only, from the configuration file or the default."""
        dynamic = self._coordinator.broker_settings()
        entries = []
        for key, value in sorted(self._config.settings().items()):
            chain: list[tuple[ConfigSource, str | None]]
            if key in DYNAMIC_BROKER_SETTINGS:
                chain = list(
                    setting_chain(
                        key, static=self._config.log, dynamic=dynamic, broker_id=self._coordinator.broker_id
                    )
                )
            else:
                static = value != self._broker_defaults.get(key)
                chain = [
                    (ConfigSource.STATIC_BROKER_CONFIG if static else ConfigSource.DEFAULT_CONFIG, value)
                ]
            source, shown = chain[0]
            entries.append(
                _entry(
                    key,
                    shown,
                    source,
                    read_only=key not in DYNAMIC_BROKER_SETTINGS,
                    documentation=None,
                    synonyms=chain if synonyms else [],
                )
            )
        return entries

    def _cluster_default_entries(self, synonyms: bool) -> list[m.DescribeConfigsResourceResult]:
        source = ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG
        return [
            _entry(
                key,
                value,
                source,
                read_only=False,
                documentation=None,
                synonyms=[(source, value)] if synonyms else [],
            )
            for key, value in sorted(self._coordinator.broker_settings().cluster_default.items())
        ]


def _entry(
    key: str,
    value: str | None,
    source: ConfigSource,
    *,
    read_only: bool,
    documentation: str | None,
    synonyms: list[tuple[ConfigSource, str | None]],
) -> m.DescribeConfigsResourceResult:
    return m.DescribeConfigsResourceResult(
        name=key,
        value=value,
        read_only=read_only,
        is_default=source == ConfigSource.DEFAULT_CONFIG,  # v0
        config_source=source,  # v1+
        is_sensitive=False,
        synonyms=[m.DescribeConfigsSynonym(name=key, value=v, source=s) for s, v in synonyms],
        config_type=_config_type(key),
        documentation=documentation,
    )


def _config_type(key: str) -> ConfigType:
    if key in _BOOLEAN_SETTINGS:
        return ConfigType.BOOLEAN
    if key in _STRING_SETTINGS:
        return ConfigType.STRING
    if key in _DOUBLE_SETTINGS:
        return ConfigType.DOUBLE
    if key in _LIST_SETTINGS:
        return ConfigType.LIST
    return ConfigType.INT if key in _INT_SETTINGS else ConfigType.LONG
