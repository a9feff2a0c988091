"""Prometheus metrics of a broker (usage data: per API, per queue, per client id).

One registry per broker, so tests can run several brokers in one process. Per-partition gauges (log end
offset, size) are computed when scraped, never on the hot path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from logq.compaction import CleanerStats
from logq.segments import PartitionLog
from logq.segments.health import ERROR_KINDS, StorageHealth

if TYPE_CHECKING:
    from logq.broker.lag import PartitionLag
    from logq.broker.loop_health import LoopHealth
    from logq.broker.replication import ReplicationStatus

STALL_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
M = TypeVar("M", Counter, Histogram)

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class BrokerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        r = self.registry
        self.requests = Counter("logq_requests", "Requests handled", ["api"], registry=r)
        self.latency = Histogram(
            "logq_request_latency_seconds",
            "Time to handle a request",
            ["api"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.request_queue = Histogram(
            "logq_request_queue_seconds",
            "Time a complete request waited before its handling began (behind the connection's earlier "
            "requests, or for the event loop)",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.loop_lag = Histogram(
            "logq_event_loop_lag_seconds",
            "How late the event loop ran a tick due every 10 ms: the time it was held by other work",
            buckets=STALL_BUCKETS,
            registry=r,
        )
        self.gc_pause = Histogram(
            "logq_gc_pause_seconds",
            "Garbage collections, by generation: every Python thread waits for them",
            ["generation"],
            buckets=STALL_BUCKETS,
            registry=r,
        )
        self.errors = Counter(
            "logq_errors", "Error codes returned, by API and code", ["api", "code"], registry=r
        )
        self.bytes_in = Counter("logq_bytes_in", "Record bytes produced", ["queue", "client_id"], registry=r)
        self.records_in = Counter("logq_records_in", "Records produced", ["queue", "client_id"], registry=r)
        self.bytes_out = Counter("logq_bytes_out", "Record bytes fetched", ["queue", "client_id"], registry=r)
        self.connections = Gauge("logq_connections", "Open client connections", registry=r)
        self.connections_closed = Counter(
            "logq_connections_closed_for_errors",
            "Connections closed because of bad input",
            ["reason"],
            registry=r,
        )
        # Overload protection (logq/broker/connection_limits.py, logq/broker/request_memory.py).
        self.connections_refused = Counter(
            "logq_connections_refused",
            "Connections closed right after accept for being over a limit, by reason (max-connections, "
            "max-connections-per-ip, creation-rate)",
            ["reason"],
            registry=r,
        )
        self.queued_request_bytes = Gauge(
            "logq_queued_request_bytes",
            "Bytes of requests read (or being read) but not yet answered: bounded by "
            "queued.max.request.bytes",
            registry=r,
        )
        self.reading_paused_connections = Gauge(
            "logq_reading_paused_connections",
            "Connections not read from until queued.max.request.bytes has room",
            registry=r,
        )

        self.authentications = Counter(
            "logq_authentications",
            "SASL logins by listener, mechanism and outcome (success, failure, unsupported-mechanism)",
            ["listener", "mechanism", "outcome"],
            registry=r,
        )
        # Client quotas (logq/broker/quota_manager.py): time connections were muted, by the API that
        # took them over their quota (Produce: producer_byte_rate, Fetch: consumer_byte_rate).
        self.quota_throttle_seconds = Counter(
            "logq_quota_throttle_seconds",
            "Time clients were throttled for exceeding their quotas, by API",
            ["api"],
            registry=r,
        )

    def labelled(self, metric: M, *values: str) -> M:
        """``metric.labels(*values)``, kept: the lookup takes a lock and builds a key each time, a few
        microseconds that every request would otherwise pay once or twice."""
        key = (id(metric), values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child

    def watch_logs(self, logs: Callable[[], Iterable[PartitionLog]]) -> None:
        self.registry.register(_LogCollector(logs))

    def watch_storage(self, health: StorageHealth) -> None:
        self.registry.register(_StorageCollector(health))

    def watch_lag(self, lag: Callable[[], Iterable[PartitionLag]]) -> None:
        self.registry.register(_LagCollector(lag))

    def watch_cleaner(self, statistics: Callable[[], CleanerStats]) -> None:
        self.registry.register(_CleanerCollector(statistics))

    def watch_loop_health(self, health: LoopHealth) -> None:
        self.registry.register(_LoopHealthCollector(health))

    def watch_replication(self, status: Callable[[], Iterable[ReplicationStatus]]) -> None:
        self.registry.register(_ReplicationCollector(status))

    def watch_offline_partitions(self, count: Callable[[], int]) -> None:
        self.registry.register(_OfflinePartitionsCollector(count))

    def serve(self, host: str, port: int) -> None:
        start_http_server(port, addr=host, registry=self.registry)


class _LogCollector(Collector):
    def __init__(self, logs: Callable[[], Iterable[PartitionLog]]) -> None:
        self._logs = logs

    def collect(self) -> Iterator[GaugeMetricFamily]:
        end = GaugeMetricFamily("logq_log_end_offset", "Next offset to be written", labels=["partition"])
        start = GaugeMetricFamily("logq_log_start_offset", "First retained offset", labels=["partition"])
        size = GaugeMetricFamily(
            "logq_log_size_bytes", "Bytes in the partition's segments", labels=["partition"]
        )
        for plog in self._logs():
            end.add_metric([plog.name], plog.log_end_offset)
            start.add_metric([plog.name], plog.log_start_offset)
            size.add_metric([plog.name], plog.size_bytes)
        yield from (end, start, size)


class _StorageCollector(Collector):
    """The data directory's health (``logq/segments/health.py``), read when scraped."""

    def __init__(self, health: StorageHealth) -> None:
        self._health = health

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        health = self._health
        offline = GaugeMetricFamily(
            "logq_log_dir_offline",
            "1 once the data directory is offline after a failed fsync or index write: nothing more is "
            "written or acknowledged there until the broker restarts",
        )
        full = GaugeMetricFamily(
            "logq_log_dir_full", "1 while appends are refused for want of space (until one succeeds)"
        )
        free = GaugeMetricFamily(
            "logq_log_dir_free_bytes", "Bytes available to the broker on the data directory's filesystem"
        )
        errors = CounterMetricFamily(
            "logq_storage_errors",
            "Storage failures by kind: no_space (an append refused; the directory stays online), "
            "fsync, write, index (each takes the directory offline)",
            labels=["kind"],
        )
        offline.add_metric([], 1 if health.offline else 0)
        full.add_metric([], 1 if health.full else 0)
        free.add_metric([], health.free_bytes())
        for kind in ERROR_KINDS:
            errors.add_metric([kind], health.errors[kind])
        yield from (offline, full, free, errors)


class _LoopHealthCollector(Collector):
    def __init__(self, health: LoopHealth) -> None:
        self._health = health

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(
            "logq_event_loop_longest_stall_seconds",
            "The event loop's longest stall in the last minute (a tick that ran this late)",
            value=self._health.stalls.longest(),
        )
        yield GaugeMetricFamily(
            "logq_gc_longest_pause_seconds",
            "The longest garbage collection in the last minute",
            value=self._health.gc_pauses.longest(),
        )


class _CleanerCollector(Collector):
    """The log cleaner's totals (logq/compaction/), read when scraped."""

    def __init__(self, statistics: Callable[[], CleanerStats]) -> None:
        self._statistics = statistics

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        stats = self._statistics()
        yield CounterMetricFamily(
            "logq_cleaner_passes", "Cleaning passes the log cleaner completed", value=stats.passes
        )
        yield CounterMetricFamily(
            "logq_cleaner_bytes_read", "Bytes of log the cleaner read (mapping and rewriting)",
            value=stats.bytes_read,
        )  # fmt: skip
        yield CounterMetricFamily(
            "logq_cleaner_bytes_reclaimed", "Bytes the cleaner removed from compacted logs",
            value=stats.bytes_reclaimed,
        )  # fmt: skip
        yield GaugeMetricFamily(
            "logq_cleaner_max_dirty_ratio",
            "The largest dirty ratio (dirty bytes / cleanable bytes) of the compacted logs at the last round",
            value=stats.max_dirty_ratio,
        )


class _LagCollector(Collector):
    def __init__(self, lag: Callable[[], Iterable[PartitionLag]]) -> None:
        self._lag = lag

    def collect(self) -> Iterator[GaugeMetricFamily]:
        labels = ["group", "queue", "partition"]
        committed = GaugeMetricFamily("logq_group_committed_offset", "Committed offset", labels=labels)
        lag = GaugeMetricFamily(
            "logq_group_lag",
            "Messages between the committed offset (the log start where none was committed) and the end",
            labels=labels,
        )
        age = GaugeMetricFamily(
            "logq_group_oldest_unconsumed_age_seconds", "Age of the oldest unconsumed message", labels=labels
        )
        stalled = GaugeMetricFamily(
            "logq_group_partition_stalled",
            "1 when the owner has neither fetched nor committed lately",
            labels=labels,
        )
        for row in self._lag():
            key = [row.group, row.queue, str(row.partition)]
            if row.committed >= 0:  # no series for a partition the group never committed to
                committed.add_metric(key, row.committed)
            lag.add_metric(key, row.lag)
            age.add_metric(key, row.oldest_unconsumed_age_ms / 1000)
            stalled.add_metric(key, 1 if row.stalled else 0)
        yield from (committed, lag, age, stalled)


class _ReplicationCollector(Collector):
    """Cluster mode, on the leaders: what an operator watches first (under-replicated partitions)."""

    def __init__(self, status: Callable[[], Iterable[ReplicationStatus]]) -> None:
        self._status = status

    def collect(self) -> Iterator[GaugeMetricFamily]:
        rows = list(self._status())
        under = GaugeMetricFamily(
            "logq_under_replicated_partitions", "Partitions led here whose ISR lacks a replica"
        )
        under_min = GaugeMetricFamily(
            "logq_under_min_isr_partitions",
            "Partitions led here whose ISR is below min.insync.replicas (acks=all is refused)",
        )
        isr = GaugeMetricFamily("logq_partition_isr_size", "In-sync replicas", labels=["partition"])
        replicas = GaugeMetricFamily("logq_partition_replicas", "Assigned replicas", labels=["partition"])
        lag = GaugeMetricFamily(
            "logq_follower_lag_offsets",
            "Offsets a follower is behind the leader's log end (-1: no fetch yet)",
            labels=["partition", "follower"],
        )
        under.add_metric([], sum(1 for row in rows if row.isr < row.replicas))
        under_min.add_metric([], sum(1 for row in rows if row.isr < row.min_isr))
        for row in rows:
            isr.add_metric([row.partition], row.isr)
            replicas.add_metric([row.partition], row.replicas)
            for follower, behind in sorted(row.follower_lag.items()):
                lag.add_metric([row.partition, str(follower)], behind)
        yield from (under, under_min, isr, replicas, lag)


class _OfflinePartitionsCollector(Collector):
    """Partitions without a leader. Only the controller counts them (0 on the others), so the sum over
    the brokers is the cluster's count, and a partition whose every replica is down is still seen."""

    def __init__(self, count: Callable[[], int]) -> None:
        self._count = count

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(
            "logq_offline_partitions",
            "Partitions without a leader (every in-sync replica down), counted by the controller; 0 on the "
            "other brokers",
            value=self._count(),
        )
