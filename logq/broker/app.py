"""The broker, the composition root: brings the parts up and down in a fixed order.

Start: the data directory's permissions -> storage (recovering the data directory) -> the listeners'
sockets (bound, not serving) -> coordinator -> the logs of every queue -> background
flush and retention -> metrics endpoint -> the TCP listener (last, so nothing is served half-ready).
Stop: the listener -> open connections -> background tasks -> storage (flush, checkpoints, the clean
shutdown marker) -> coordinator.

Both modes run the same parts: a ``ClusterMember`` (``logq/broker/cluster_member.py``) takes the roles
the coordinator's snapshots give, hosts the partitions assigned here, loads the offsets partitions it
leads and runs the replica fetchers. What differs is the coordinator, and three things that follow from
it (docs/architecture.md, "Where the two modes differ"):

- standalone (no ``zookeeper.connect``): the EmbeddedCoordinator, a cluster of one that names this broker
  leader of everything, in a new leader epoch at each start; ``__consumer_offsets`` is created at start;
  logs on disk that the metadata does not know are kept (no cluster id guards a lost coordinator.json);
- cluster mode: a ZooKeeperCoordinator; ``__consumer_offsets`` is created by the first FindCoordinator,
  as Kafka does, so that it is spread over the brokers running by then; the logs of queues deleted while
  this broker was down are deleted at start; followers fetch as the inter-broker principal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import ssl
from collections.abc import Callable

from logq.broker.acl_handlers import AclHandlers
from logq.broker.authentication import AuthenticationSettings
from logq.broker.authorization import RequestAuthorizer
from logq.broker.cluster_member import ClusterMember
from logq.broker.config import BrokerConfig, HostPort
from logq.broker.config_handlers import ConfigHandlers
from logq.broker.connection_limits import ConnectionLimits
from logq.broker.describe_handlers import DescribeHandlers
from logq.broker.group_deletion_handlers import GroupDeletionHandlers
from logq.broker.group_handlers import GroupHandlers
from logq.broker.growth_handlers import GrowthHandlers
from logq.broker.handlers import Handlers
from logq.broker.inter_broker import inter_broker_client, warn_unless_super_user
from logq.broker.lag import LagTracker
from logq.broker.listeners import Listener, Listeners
from logq.broker.loop_health import LoopHealth
from logq.broker.metrics import BrokerMetrics
from logq.broker.partition import ReplicaSettings
from logq.broker.quota_handlers import QuotaHandlers
from logq.broker.quota_manager import QuotaEnforcer
from logq.broker.record_handlers import RecordHandlers
from logq.broker.replica_fetcher import ReplicaFetchers
from logq.broker.replica_handlers import ReplicaHandlers
from logq.broker.replica_manager import CoordinatorWrites, ReplicaManager
from logq.broker.server import Server
from logq.broker.user_handlers import UserHandlers
from logq.clock import SYSTEM_CLOCK, Clock
from logq.compaction import LogCleaner
from logq.coordinator import BrokerInfo, Coordinator, EmbeddedCoordinator, Endpoint
from logq.coordinator.assignment import NO_LEADER
from logq.coordinator.zk_auth import DIGEST_ENV, ZkDigest, load_zk_digest
from logq.coordinator.zookeeper import ZooKeeperCoordinator
from logq.dynamic_settings import DynamicBrokerSettings, broker_log_defaults
from logq.errors import ConfigurationError, LogqError, StorageError
from logq.groups.membership import Group, GroupMembership, MembershipConfig
from logq.groups.offsets import OFFSETS_QUEUE, NotCoordinatorError, OffsetStore
from logq.groups.state import GroupState
from logq.permissions import check_private, make_private_dir
from logq.retention import RetentionJob
from logq.security import tls
from logq.security.principal import PrincipalMapper
from logq.security.sasl import PLAIN
from logq.security.scram import ScramCredential
from logq.security.throttle import FailedLoginThrottle
from logq.segments import LogManager, PartitionLog

log = logging.getLogger(__name__)

OFFSETS_COMPACT_BYTES = 64 << 20  # compact an offsets partition whose log passes this size


class Broker:
    def __init__(self, config: BrokerConfig, clock: Clock = SYSTEM_CLOCK) -> None:
        self.config = config
        self._clock = clock
        self.metrics = BrokerMetrics()
        self._health = LoopHealth(
            self.metrics.loop_lag.observe,
            lambda generation, seconds: self.metrics.gc_pause.labels(str(generation)).observe(seconds),
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._cleaner: LogCleaner | None = None
        self._listeners: list[asyncio.Server] = []
        self._logs: LogManager | None = None
        self._server: Server | None = None
        self._coordinator: EmbeddedCoordinator | ZooKeeperCoordinator | None = None
        self.address: HostPort | None = None  # the first listener's bound address
        self.addresses: dict[str, HostPort] = {}  # listener name -> bound address
        self.lag: LagTracker | None = None
        self._member: ClusterMember | None = None

    async def start(self) -> None:
        config = self.config
        _raise_open_files_limit()
        listeners = config.listener_set
        ssl_context = self._tls_context(listeners)
        make_private_dir(config.data_dir)
        check_private(config.data_dir, "data directory")  # PostgreSQL's rule: refuse, with the fix
        self._logs = logs = await asyncio.to_thread(LogManager, config.data_dir, config.log, self._clock)
        # Bind first (port 0 picks a free port), so the advertised addresses are known before metadata.
        loop = asyncio.get_running_loop()
        endpoints = []
        for listener in listeners:
            server = await loop.create_server(
                self._protocol_for(listener),
                listener.bind.host or None,
                listener.bind.port,
                ssl=ssl_context if listener.protocol.tls else None,
                ssl_handshake_timeout=config.authentication_timeout_ms / 1000
                if listener.protocol.tls
                else None,
                start_serving=False,
            )
            self._listeners.append(server)
            bound = HostPort(listener.bind.host, server.sockets[0].getsockname()[1])
            self.addresses[listener.name] = bound
            shown = listener.advertised or bound
            endpoints.append(Endpoint(listener.name, shown.host, shown.port, listener.protocol.value))
        inter = next(e for e in endpoints if e.listener == listeners.inter_broker.name)
        self.address = self.addresses[listeners.all[0].name]
        advertised = HostPort(endpoints[0].host, endpoints[0].port)
        me = BrokerInfo(config.broker_id, inter.host, inter.port, endpoints=tuple(endpoints))
        coordinator: EmbeddedCoordinator | ZooKeeperCoordinator
        clustered = config.zookeeper_connect is not None
        if config.zookeeper_connect is not None:
            inter_broker = inter_broker_client(config)  # read before joining: no credentials, no start
            warn_unless_super_user(inter_broker, config)
            zk = ZooKeeperCoordinator(
                config.zookeeper_connect,
                me,
                session_timeout_ms=config.zookeeper_session_timeout_ms,
                leader_rebalance_interval_ms=(
                    config.leader_imbalance_check_interval_ms if config.auto_leader_rebalance_enable else None
                ),
                digest=self._zookeeper_digest(),
                set_acl=config.zookeeper_set_acl,
            )
            self._coordinator = coordinator = zk
            await zk.start(check_cluster_id=logs.claim_for_cluster)
            log.info("broker %d joined the cluster at %s", config.broker_id, config.zookeeper_connect)
            fetch_listener, fetch_security = inter_broker.listener, inter_broker.security
        else:
            embedded = EmbeddedCoordinator(config.data_dir, me)
            self._coordinator = coordinator = embedded
            await embedded.start()
            if OFFSETS_QUEUE not in embedded.queues():
                await embedded.create_queue(OFFSETS_QUEUE, config.offsets_topic_num_partitions, 1, {})
            fetch_listener, fetch_security = "", None  # a cluster of one follows nobody
        log_defaults = broker_log_defaults(config.log, coordinator.broker_settings(), config.broker_id)
        logs.config = log_defaults  # new logs, and the flush period
        replicas = ReplicaManager(
            logs,
            log_defaults,
            ReplicaSettings(
                broker_id=config.broker_id,
                clock=self._clock,
                fsync_before_ack=config.log.fsync_before_ack,
                replica_lag_time_max_ms=config.replica_lag_time_max_ms,
                isr_writer=coordinator.update_isr,
            ),
        )
        offsets_meta = coordinator.queues().get(OFFSETS_QUEUE)
        offsets = OffsetStore(
            CoordinatorWrites(replicas),
            len(offsets_meta.partitions) if offsets_meta else config.offsets_topic_num_partitions,
            self._clock,
        )
        fetchers = ReplicaFetchers(
            config.broker_id,
            replicas,
            coordinator.brokers,
            fsync=config.log.fsync_before_ack,
            wait_max_ms=config.replica_fetch_wait_max_ms,
            max_bytes=config.replica_fetch_max_bytes,
            listener=fetch_listener,
            security=fetch_security,
        )
        member = ClusterMember(
            coordinator,
            replicas,
            offsets,
            fetchers,
            isr_check_interval_ms=max(config.replica_lag_time_max_ms // 2, 100),
        )
        await member.start()  # takes the roles, hosts the logs, loads the offsets partitions led here
        await replicas.remove_strays(coordinator.queues(), delete=clustered)
        membership = GroupMembership(
            MembershipConfig(
                initial_rebalance_delay_ms=config.group_initial_rebalance_delay_ms,
                min_session_timeout_ms=config.group_min_session_timeout_ms,
                max_session_timeout_ms=config.group_max_session_timeout_ms,
            ),
            loop.time,
            on_change=lambda group: self._group_changed(offsets, group),
        )
        auth = self._authorizer(coordinator)
        handlers = Handlers(config, coordinator, replicas, self.metrics, auth)
        handlers.by_type.update(
            GroupHandlers(
                coordinator,
                membership,
                offsets,
                replicas,
                offsets_replication_factor=config.offsets_topic_replication_factor,
                auth=auth,
            ).by_type
        )
        handlers.by_type.update(RecordHandlers(replicas, self.metrics, auth).by_type)
        handlers.by_type.update(
            GroupDeletionHandlers(
                coordinator, membership, offsets, replicas, metrics=self.metrics, auth=auth
            ).by_type
        )
        handlers.by_type.update(ReplicaHandlers(coordinator, replicas, auth).by_type)
        handlers.by_type.update(DescribeHandlers(config, coordinator, replicas, self.metrics, auth).by_type)
        handlers.by_type.update(AclHandlers(coordinator, auth).by_type)
        handlers.by_type.update(ConfigHandlers(config, coordinator, self.metrics, auth).by_type)
        handlers.by_type.update(UserHandlers(coordinator, self.metrics, auth).by_type)
        handlers.by_type.update(GrowthHandlers(coordinator, replicas, self.metrics, auth).by_type)
        handlers.by_type.update(QuotaHandlers(coordinator, self.metrics, auth).by_type)
        quotas = QuotaEnforcer(self._clock.time_ms)
        quotas.update(coordinator.client_quotas())
        coordinator.add_client_quota_listener(quotas.update)
        self.lag = LagTracker(
            offsets=offsets,
            membership=membership,
            log_for=lambda queue, index: _log_of(replicas, queue, index),
            partitions_of=lambda queue: _partition_count(coordinator, queue),
            last_fetch_ms=replicas.last_fetch_ms,
            now_ms=self._clock.time_ms,
            stalled_after_ms=config.group_stalled_owner_ms,
        )
        lag = self.lag
        self.metrics.watch_lag(lambda: lag.all_from_thread(loop))
        self._server = Server(
            handlers,
            self.metrics,
            max_frame_bytes=config.socket_request_max_bytes,
            idle_timeout_s=config.connections_max_idle_ms / 1000,
            authentication=self._authentication_settings(coordinator),
            principal_mapper=PrincipalMapper(config.ssl_principal_mapping_rules),
            authentication_timeout_s=config.authentication_timeout_ms / 1000,
            connection_limits=config.connection_limits,
            exempt_listener=_exempt_listener(listeners, config) if clustered else None,
            queued_max_request_bytes=config.queued_max_request_bytes,
            quotas=quotas,
        )
        retention = RetentionJob(logs.logs, self._clock, log_defaults.retention_check_interval_ms)
        self._cleaner = LogCleaner(logs.logs, self._clock, log_defaults)  # its own thread, off the loop
        self._cleaner.start()
        self.metrics.watch_cleaner(self._cleaner.statistics)
        coordinator.add_broker_settings_listener(
            lambda dynamic: self._dynamic_settings_changed(dynamic, logs, replicas, retention)
        )
        health = self._health
        health.watch_gc()
        self.metrics.watch_loop_health(health)
        self._tasks = [
            asyncio.create_task(health.watch_loop(), name="loop-health"),
            asyncio.create_task(logs.run_background_flush(), name="flush"),
            asyncio.create_task(retention.run(), name="retention"),
            asyncio.create_task(membership.run(), name="group-timers"),
            asyncio.create_task(self._maintain_offsets(offsets, membership), name="offsets-maintenance"),
        ]
        self._member = member
        self._tasks.append(asyncio.create_task(member.run(), name="cluster-member"))
        self._tasks.append(asyncio.create_task(member.check_isrs(), name="isr-checks"))
        self.metrics.watch_logs(logs.logs)
        self.metrics.watch_storage(logs.health)
        self.metrics.watch_replication(replicas.replication_status)
        self.metrics.watch_offline_partitions(lambda: _offline_partitions(coordinator, config.broker_id))
        if config.metrics_listen is not None:
            self.metrics.serve(config.metrics_listen.host, config.metrics_listen.port)
            log.info("metrics on http://%s/metrics", config.metrics_listen)
        for listener, server in zip(listeners, self._listeners, strict=True):
            await server.start_serving()
            if len(self._listeners) > 1 or listener.protocol.value != "PLAINTEXT":
                log.info(
                    "listener %s (%s) on %s, advertised as %s",
                    listener.name, listener.protocol.value, self.addresses[listener.name],
                    listener.advertised or self.addresses[listener.name],
                )  # fmt: skip
        log.info("listening on %s (advertised as %s), data in %s", self.address, advertised, config.data_dir)

    def _dynamic_settings_changed(
        self,
        dynamic: DynamicBrokerSettings,
        logs: LogManager,
        replicas: ReplicaManager,
        retention: RetentionJob,
    ) -> None:
        """The dynamic broker settings changed (here or on another broker): the logs, the flush and the
        retention job take the new defaults at once (queue overrides still come first)."""
        defaults = broker_log_defaults(self.config.log, dynamic, self.config.broker_id)
        if defaults == replicas.log_defaults:
            return
        logs.config = defaults
        retention.set_interval(defaults.retention_check_interval_ms)
        if self._cleaner is not None:
            self._cleaner.set_backoff_ms(defaults.cleaner_backoff_ms)
        replicas.set_log_defaults(defaults)
        log.info("dynamic broker settings now in force: %s", dynamic.for_broker(self.config.broker_id))

    def _zookeeper_digest(self) -> ZkDigest | None:
        """The ZooKeeper credentials (docs/security.md); ConfigurationError if ACLs are asked for without."""
        config = self.config
        digest = load_zk_digest(config.zookeeper_digest_file)
        if config.zookeeper_set_acl:
            if digest is None:
                raise ConfigurationError(
                    f"zookeeper.set.acl needs ZooKeeper credentials: zookeeper.digest.file or ${DIGEST_ENV}"
                )
            log.info("ZooKeeper ACLs on: znodes created are writable by digest user %r only", digest.user)
        return digest

    def _authorizer(self, coordinator: Coordinator) -> RequestAuthorizer:
        """The ACLs, kept current by the coordinator (embedded: this broker; ZooKeeper: every broker)."""
        config = self.config
        auth = RequestAuthorizer.from_settings(
            config.authorizer_enable, config.super_user_set, config.allow_everyone_if_no_acl_found
        )
        if auth.enabled:
            auth.update(coordinator.acls())
            coordinator.add_acl_listener(auth.update)
            log.info(
                "authorizer on: %d ACL(s), super users %s, resources without ACLs %s; deleting a queue "
                "needs DELETE on it (delete.queue.enable is not consulted)",
                len(coordinator.acls()),
                ", ".join(sorted(config.super_user_set)) or "none",
                "open to all" if config.allow_everyone_if_no_acl_found else "closed",
            )
        return auth

    def _group_changed(self, offsets: OffsetStore, group: Group) -> None:
        """Record when a group became empty (its offsets are kept offsets.retention.ms after that) and
        its protocol type (so that an idle group is listed as what it is after a restart)."""
        empty = group.state is GroupState.EMPTY
        kind = group.protocol_type or ""
        info = offsets.group_info(group.group_id)
        if info is not None and (info.empty_since_ms is not None) == empty and info.protocol_type == kind:
            return
        since = None
        if empty:
            kept = info is not None and info.empty_since_ms is not None
            since = info.empty_since_ms if kept and info is not None else self._clock.time_ms()
        offsets.set_group_empty_since(group.group_id, since, generation=group.generation, protocol_type=kind)

    async def _maintain_offsets(self, offsets: OffsetStore, membership: GroupMembership) -> None:
        """Expire the offsets of long-empty groups (and forget those groups) and keep
        __consumer_offsets compact."""
        config = self.config
        while True:
            await asyncio.sleep(config.log.retention_check_interval_ms / 1000)
            try:
                await self._maintain_offsets_once(offsets, membership)
            except StorageError as exc:  # a full or offline data directory (logged there): next round
                log.warning("offsets maintenance skipped: %s", exc)

    async def _maintain_offsets_once(self, offsets: OffsetStore, membership: GroupMembership) -> None:
        config = self.config
        offsets.expire(self._clock.time_ms(), config.offsets_retention_ms)
        membership.forget_empty(lambda group_id: _has_offsets(offsets, group_id))
        for partition in range(offsets.partitions):
            if offsets.loaded(partition):  # cluster mode: only the partitions led here
                with contextlib.suppress(NotCoordinatorError):  # unloaded meanwhile (leader moved)
                    await offsets.maybe_compact(partition, OFFSETS_COMPACT_BYTES)

    async def end_zookeeper_session(self) -> None:
        """A fault drill (SIGUSR1): end this broker's ZooKeeper session as an expiry would."""
        if isinstance(self._coordinator, ZooKeeperCoordinator):
            log.warning("ending this broker's ZooKeeper session on request")
            await self._coordinator.end_session()

    def _protocol_for(self, listener: Listener) -> Callable[[], asyncio.BufferedProtocol]:
        def connection() -> asyncio.BufferedProtocol:
            assert self._server is not None  # set before the listeners start serving
            return self._server.protocol_for(listener)()

        return connection

    def _tls_context(self, listeners: Listeners) -> ssl.SSLContext | None:
        """The TLS listeners' context (the files are read and the key's mode checked now)."""
        config = self.config
        if not listeners.uses_tls:
            return None
        assert config.ssl_certificate_location is not None  # checked by BrokerConfig.check_security
        assert config.ssl_key_location is not None
        return tls.server_context(
            config.ssl_certificate_location,
            config.ssl_key_location,
            config.ssl_ca_location,
            config.ssl_client_auth,
        )

    def _authentication_settings(self, coordinator: Coordinator) -> AuthenticationSettings:
        config = self.config
        mechanisms = config.sasl_mechanisms
        for listener in config.listener_set:
            if listener.protocol.value == "SASL_PLAINTEXT" and PLAIN in mechanisms:
                log.warning(
                    "listener %s sends PLAIN passwords unencrypted: use SASL_SSL for PLAIN", listener.name
                )

        def lookup(user: str, mechanism: str) -> ScramCredential | None:
            return coordinator.credentials().get(user, {}).get(mechanism)

        return AuthenticationSettings(
            mechanisms=mechanisms,
            lookup=lookup,
            secret=coordinator.sasl_secret,
            throttle=FailedLoginThrottle(
                config.connection_failed_authentication_delay_ms / 1000,
                config.connection_failed_authentication_delay_max_ms / 1000,
            ),
            max_receive_bytes=config.sasl_server_max_receive_size,
        )

    async def stop(self) -> None:
        """Clean shutdown: in cluster mode move the leaderships away first (controlled shutdown); stop
        serving, then flush and checkpoint every log and write the marker."""
        if self._member is not None:
            await self._member.controlled_shutdown(self.config.controlled_shutdown_timeout_ms)
        for server in self._listeners:
            server.close()
        if self._server is not None:
            await self._server.close_connections()
        if self._member is not None:
            await self._member.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._cleaner is not None:
            await asyncio.to_thread(self._cleaner.stop)
        if self._logs is not None:
            await asyncio.to_thread(self._logs.close)
        if self._coordinator is not None:
            await self._coordinator.stop()
        self._health.unwatch_gc()
        log.info("stopped cleanly")


def _exempt_listener(listeners: Listeners, config: BrokerConfig) -> str:
    """The listener the connection limits leave alone in cluster mode: the inter-broker one (a standalone
    broker has no inter-broker traffic, so there every listener is limited). Limits set while clients
    share that listener would not apply to them: said once, at start."""
    inter = listeners.inter_broker
    limits = config.connection_limits
    if len(listeners.all) == 1 and limits != ConnectionLimits():
        log.warning(
            "the connection limits do not apply to listener %s: it is the inter-broker listener, which "
            "they never limit; give clients a listener of their own (inter.broker.listener.name)",
            inter.name,
        )
    return inter.name


def _raise_open_files_limit() -> None:
    """Each segment holds a file descriptor: lift the soft limit to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _partition_count(coordinator: Coordinator, queue: str) -> int:
    meta = coordinator.queues().get(queue)
    return 0 if meta is None else len(meta.partitions)


def _offline_partitions(coordinator: Coordinator, broker_id: int) -> int:
    """Partitions the metadata gives no leader, if this broker is the controller (else 0: one count per
    cluster)."""
    if coordinator.controller_id() != broker_id:
        return 0
    queues = coordinator.queues()  # a snapshot: safe to read from the metrics thread
    return sum(1 for meta in queues.values() for state in meta.partitions if state.leader == NO_LEADER)


def _has_offsets(offsets: OffsetStore, group_id: str) -> bool:
    """Whether the offsets store still keeps anything of the group (where it coordinates it)."""
    try:
        return offsets.group_info(group_id) is not None or bool(offsets.fetch(group_id))
    except LogqError:
        return True  # not coordinated here (any more): not this broker's to forget


def _log_of(replicas: ReplicaManager, queue: str, index: int) -> PartitionLog | None:
    partition = replicas.partition(queue, index)
    return partition.log if partition is not None else None
