"""ZooKeeperCoordinator: the cluster's metadata in ZooKeeper. The znode layout is in ``zk_layout``, every
ZooKeeper call in ``zk_store`` (the only kazoo user), the in-memory view and the controller's decisions
in ``zk_view`` (and ``assignment``); this module is the asyncio side that ties them together.

Threads and the event loop. Every ZooKeeper call runs in a worker thread (``asyncio.to_thread``). kazoo's
state listener and watches only post an event to the loop that called ``start()`` (they never call
ZooKeeper themselves). One task on that loop, the processor, owns the in-memory view: each round it
re-reads what the events marked dirty (setting new watches), rebuilds the immutable snapshot, calls the
listeners, re-registers the broker after a lost session, runs the controller election when there is no
controller, and, on the controller, carries out deletions, creates missing partition states and elects
leaders. Every round is level-triggered (it acts on what it has just read), so a missed or repeated event
costs a round, never correctness; a failed round is retried after a short backoff.

ACLs. A broker that changes a resource's ACLs writes its znode (conditional on the version read) and then
a change notification (Kafka's ``/kafka-acl-changes``); every broker watches the notifications and
re-reads the resources they name, so a change is in force everywhere within a watch round trip. The
writer waits until its own view has the change, so it is in force on its broker when the call returns.

Sessions. SUSPENDED (connection lost, session maybe alive) pauses the processor; kazoo drops every
watch then, so the next CONNECTED re-reads everything. LOST (session expired: our ephemerals are gone)
ends any controller term at once (in the listener, without a ZooKeeper call); after the next CONNECTED
the processor registers the broker again (new broker epoch) and takes part in a new election.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from logq.coordinator.assignment import LeaderAndIsr, assign_replicas
from logq.coordinator.credentials import (
    SECRET_BYTES,
    Credentials,
    UnknownCredentialError,
    frozen,
)
from logq.coordinator.growth import new_partition_replicas
from logq.coordinator.interface import (
    AclListener,
    BrokerInfo,
    BrokerSettingsListener,
    ClientQuotaListener,
    MetadataListener,
    QueueMetadata,
)
from logq.coordinator.zk_auth import ZkDigest
from logq.coordinator.zk_layout import (
    DEFAULT_BROKER_ENTITY,
    BrokerIdInUseError,
    ControllerContext,
    ControllerFencedError,
    ControllerView,
    Op,
    ReadRequest,
    ReadResult,
    StaleVersionError,
    StateRecord,
    TopicRecord,
    ZooKeeperUnavailableError,
    classify,
    encode_state,
    encode_topic,
    state_path,
)
from logq.coordinator.zk_store import ZkStore
from logq.coordinator.zk_view import EMPTY_QUEUES, ClusterView, LeaderChange
from logq.dynamic_settings import DynamicBrokerSettings
from logq.error_codes import ErrorCode
from logq.errors import (
    CoordinationError,
    InvalidPartitionsError,
    InvalidReplicationFactorError,
    UnknownQueueError,
)
from logq.quotas import NO_QUOTAS, ClientQuotas, QuotaEntity
from logq.security.acl import (
    AclBinding,
    AclBindingFilter,
    PatternType,
    ResourcePattern,
    ResourceType,
    select_deletions,
)
from logq.security.scram import ScramCredential

log = logging.getLogger(__name__)

DEFAULT_SESSION_TIMEOUT_MS = 6000  # Kafka's zookeeper.session.timeout.ms before 2.5
PRODUCER_ID_BLOCK = 1000
MAX_PARTITIONS = 10_000
RETRY_BACKOFF_S = (0.05, 0.1, 0.2, 0.5, 1.0)


def _with_added(added: frozenset[AclBinding], current: frozenset[AclBinding]) -> frozenset[AclBinding]:
    return current | added


class _Removal:
    """The change a DeleteAcls makes to one resource's ACLs; remembers, per filter, what it removed from
    the content it was last applied to (a retried conditional write applies it again)."""

    def __init__(self, filters: Sequence[AclBindingFilter]) -> None:
        self._filters = filters
        self.removed: list[list[AclBinding]] = [[] for _ in filters]

    def __call__(self, current: frozenset[AclBinding]) -> frozenset[AclBinding]:
        self.removed = select_deletions(current, self._filters)
        return current - {b for per_filter in self.removed for b in per_filter}


@dataclass
class _Waiter:
    """A create/delete call waiting for a round (begun after its write) in which ``done()`` holds."""

    first_round: int
    done: Callable[[], bool]
    future: asyncio.Future[None]


class ZooKeeperCoordinator:
    """The Coordinator of a cluster member.

    ``connect`` is ``HOST:PORT[,HOST:PORT...][/chroot]`` (the chroot is created if missing); ``broker``
    is this broker's id and advertised address. ``digest`` are the ZooKeeper credentials to present;
    with ``set_acl`` every znode created gets ACLs (``zk_store``). ``session_timeout_ms`` is how long
    after a crash or a network partition this broker's registration and controllership vanish: the
    default, 6000 ms (Kafka's before 2.5), keeps tests short; ZooKeeper clamps it to 2-20 tick times.
    ``register_wait_ms`` (default: twice the session timeout) is how long start() waits for a
    registration of the same id held by another session (a crashed process's session ending) before
    refusing. Queue creation and deletion wait up to ``request_timeout_ms`` for the controller.
    """

    def __init__(
        self,
        connect: str,
        broker: BrokerInfo,
        *,
        session_timeout_ms: int = DEFAULT_SESSION_TIMEOUT_MS,
        request_timeout_ms: int = 30_000,
        register_wait_ms: int | None = None,
        connect_timeout_ms: int = 15_000,
        unclean_leader_election: bool = False,
        leader_rebalance_interval_ms: int | None = 300_000,
        digest: ZkDigest | None = None,
        set_acl: bool = False,
    ) -> None:
        self.broker_id = broker.broker_id
        self._broker = broker
        self._request_timeout_s = request_timeout_ms / 1000
        self._register_wait_s = (
            2 * session_timeout_ms / 1000 if register_wait_ms is None else register_wait_ms / 1000
        )
        self._connect_timeout_s = connect_timeout_ms / 1000
        self._unclean = unclean_leader_election
        # Preferred-leader election on the controller every interval (None: off), as Kafka's
        # auto.leader.rebalance.enable with leader.imbalance.check.interval.seconds.
        self._rebalance_s = (
            None if leader_rebalance_interval_ms is None else leader_rebalance_interval_ms / 1000
        )
        self._rebalance_timer: asyncio.TimerHandle | None = None
        self._rebalance_due = False
        self._store = ZkStore(
            connect,
            session_timeout_ms=session_timeout_ms,
            on_state=self._state_from_kazoo,
            on_watch=self._watch_from_kazoo,
            digest=digest,
            set_acl=set_acl,
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._wake = asyncio.Event()
        self._dirty = ReadRequest()
        self._connected = False
        self._registered = False
        self._ctl: ControllerContext | None = None  # set to None from kazoo's thread on LOST
        self._cluster_id = ""
        self._broker_epoch = -1
        self._view = ClusterView()
        self._snapshot: Mapping[str, QueueMetadata] = EMPTY_QUEUES
        self._listeners: list[MetadataListener] = []
        self._acls: frozenset[AclBinding] = frozenset()
        self._acl_listeners: list[AclListener] = []
        self._session_listeners: list[Callable[[str], None]] = []
        self._waiters: list[_Waiter] = []
        self._round = 0
        self._pid_lock = asyncio.Lock()
        self._next_producer_id = 0
        self._producer_block_end = 0
        self._credentials: Credentials = frozen({})
        self._secret = b""
        self._broker_settings = DynamicBrokerSettings()
        self._broker_settings_listeners: list[BrokerSettingsListener] = []
        self._client_quotas: ClientQuotas = NO_QUOTAS
        self._client_quota_listeners: list[ClientQuotaListener] = []

    # --- lifecycle ----------------------------------------------------------------------------------

    async def start(self, check_cluster_id: Callable[[str], None] = lambda cluster_id: None) -> None:
        """Connect, learn (or create) the cluster id, register this broker and load the metadata.
        ``check_cluster_id`` runs before the registration: raising there leaves the cluster untouched."""
        self._loop = asyncio.get_running_loop()
        await asyncio.to_thread(self._store.start, self._connect_timeout_s)
        try:
            self._connected = True
            self._cluster_id = await asyncio.to_thread(self._store.ensure_cluster_id, self._request_timeout_s)
            check_cluster_id(self._cluster_id)
            self._secret = await asyncio.to_thread(
                self._store.ensure_sasl_secret, SECRET_BYTES, self._request_timeout_s
            )
            await self._register()
            self._dirty.everything = True
            await self._process_round()
        except BaseException:
            self._closed = True
            await asyncio.to_thread(self._store.stop)
            raise
        self._task = self._loop.create_task(self._run(), name=f"zk-coordinator-{self.broker_id}")
        if self._rebalance_s is not None:
            self._rebalance_timer = self._loop.call_later(self._rebalance_s, self._rebalance_tick)
        log.info(
            "broker %d registered in ZooKeeper %s (session 0x%x, timeout %d ms, broker epoch %d)",
            self.broker_id,
            self._store.hosts,
            self._store.session_id or 0,
            self._store.negotiated_timeout_ms,
            self._broker_epoch,
        )

    async def stop(self) -> None:
        """Leave the cluster: closing the session removes the registration (and /controller) at once."""
        if self._closed:
            return
        self._closed = True
        self._ctl = None
        if self._rebalance_timer is not None:
            self._rebalance_timer.cancel()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for waiter in self._waiters:
            if not waiter.future.done():
                waiter.future.set_exception(CoordinationError("the coordinator stopped"))
        self._waiters.clear()
        await asyncio.to_thread(self._store.stop)

    # --- reads (from memory) -------------------------------------------------------------------------

    def cluster_id(self) -> str:
        return self._cluster_id

    def brokers(self) -> list[BrokerInfo]:
        brokers = self._view.brokers
        return [brokers[b].info for b in sorted(brokers)]

    def broker_epochs(self) -> Mapping[int, int]:
        """Live broker id -> broker epoch (the czxid of its registration; newer after a restart)."""
        return MappingProxyType(self._view.broker_epochs())

    @property
    def broker_epoch(self) -> int:
        """This broker's epoch: the czxid of its current registration."""
        return self._broker_epoch

    def controller_id(self) -> int:
        ctl = self._ctl
        return self.broker_id if ctl is not None else self._view.controller.broker_id

    @property
    def controller_epoch(self) -> int:
        """The controller epoch last seen (this broker's own while it is the controller)."""
        ctl = self._ctl
        return ctl.epoch if ctl is not None else self._view.controller.epoch

    @property
    def is_controller(self) -> bool:
        return self._ctl is not None

    @property
    def session_id(self) -> int | None:
        return self._store.session_id

    def session_credentials(self) -> tuple[int, bytes] | None:
        """The ZooKeeper session id and password (fault tests end the session through a second client)."""
        return self._store.session_credentials()

    def queues(self) -> Mapping[str, QueueMetadata]:
        return self._snapshot

    def add_listener(self, listener: MetadataListener) -> None:
        self._listeners.append(listener)

    def credentials(self) -> Credentials:
        return self._credentials

    def sasl_secret(self) -> bytes:
        return self._secret

    async def upsert_credential(self, user: str, credential: ScramCredential) -> None:
        """Write the user's znode; returns once this broker's own view has it (the others' watches
        see it within moments)."""

        def change(current: dict[str, ScramCredential]) -> dict[str, ScramCredential]:
            return {**current, credential.mechanism: credential}

        await asyncio.to_thread(self._store.change_user, user, change, self._request_timeout_s)
        self._mark(ReadRequest(users={user}))
        await self._wait_for(
            lambda: self._credentials.get(user, {}).get(credential.mechanism) == credential,
            f"credential of user {user!r}",
        )

    async def delete_credential(self, user: str, mechanism: str | None) -> None:
        def change(current: dict[str, ScramCredential]) -> dict[str, ScramCredential]:
            if not current or (mechanism is not None and mechanism not in current):
                what = f"user {user!r}" if mechanism is None else f"{mechanism} credential of user {user!r}"
                raise UnknownCredentialError(f"no {what}")
            return {} if mechanism is None else {m: c for m, c in current.items() if m != mechanism}

        await asyncio.to_thread(self._store.change_user, user, change, self._request_timeout_s)
        self._mark(ReadRequest(users={user}))
        await self._wait_for(
            lambda: (
                mechanism not in self._credentials.get(user, {})
                if mechanism is not None
                else user not in self._credentials
            ),
            f"deletion of user {user!r}",
        )

    def _apply_users(self, result: ReadResult) -> None:
        users = {u: dict(m) for u, m in self._credentials.items()}
        if result.user_names is not None:
            users = {u: m for u, m in users.items() if u in result.user_names}
        for user, mechanisms in result.users.items():
            if mechanisms:
                users[user] = dict(mechanisms)
            else:
                users.pop(user, None)
        if users != {u: dict(m) for u, m in self._credentials.items()}:
            self._credentials = frozen(users)

    def add_session_listener(self, listener: Callable[[str], None]) -> None:
        """Call ``listener`` on the event loop with each ZooKeeper session state ("connected",
        "suspended", "lost"), before the coordinator acts on it. A broker uses "lost" to stop leading."""
        self._session_listeners.append(listener)

    # --- writes --------------------------------------------------------------------------------------

    async def create_queue(
        self, name: str, partitions: int, replication_factor: int, settings: Mapping[str, str]
    ) -> QueueMetadata:
        """Write the assignment znode; the controller then creates the partition states. Returns once
        this broker's snapshot has the whole queue (CoordinationError REQUEST_TIMED_OUT after
        ``request_timeout_ms``; the creation then still completes when a controller is there)."""
        if partitions < 1 or partitions > MAX_PARTITIONS:
            raise InvalidPartitionsError(f"a queue needs 1 to {MAX_PARTITIONS} partitions, not {partitions}")
        live = await asyncio.to_thread(self._store.live_broker_ids)  # not the view: it may lag
        if replication_factor < 1 or replication_factor > len(live):
            raise InvalidReplicationFactorError(
                f"replication factor {replication_factor} is impossible with {len(live)} live "
                f"broker{'s' if len(live) != 1 else ''} ({', '.join(map(str, live)) or 'none'})"
            )
        data = encode_topic(assign_replicas(partitions, replication_factor, live), settings, uuid.uuid4().hex)
        await asyncio.to_thread(self._store.create_topic, name, data, self._request_timeout_s)
        self._mark(ReadRequest(topics={name}))
        await self._wait_for(lambda: name in self._snapshot, f"creation of queue {name!r}")
        return self._snapshot[name]

    async def delete_queue(self, name: str) -> None:
        """Ask the controller to delete the queue (``/admin/delete_topics/<name>``) and wait until its
        znodes are gone. UnknownQueueError if there is no such queue."""
        await asyncio.to_thread(self._store.request_delete, name, self._request_timeout_s)
        self._mark(ReadRequest(topics={name}, deletes=True))
        await self._wait_for(
            lambda: name not in self._view.topics and name not in self._snapshot,
            f"deletion of queue {name!r}",
        )

    # --- growing a queue -----------------------------------------------------------------------------

    async def add_partitions(
        self, name: str, new_total: int, assignments: Sequence[Sequence[int]] | None
    ) -> QueueMetadata:
        """Add the new partitions to the assignment znode (any broker, conditional on its version, as
        create_queue writes it); the controller then creates their states, as for a new queue's. Returns
        once this broker's snapshot has them all (CoordinationError REQUEST_TIMED_OUT after
        ``request_timeout_ms``; the growth then still completes when a controller is there)."""

        def plan(record: TopicRecord, live: list[int]) -> list[tuple[int, ...]]:
            return new_partition_replicas(
                record.replicas, new_total, assignments, live, max_partitions=MAX_PARTITIONS
            )

        await asyncio.to_thread(self._store.grow_topic, name, plan, self._request_timeout_s)
        self._mark(ReadRequest(topics={name}))
        await self._wait_for(
            lambda: name in self._snapshot and len(self._snapshot[name].partitions) >= new_total,
            f"growth of queue {name!r} to {new_total} partitions",
        )
        return self._snapshot[name]

    async def allocate_producer_id(self) -> int:
        async with self._pid_lock:
            if self._next_producer_id >= self._producer_block_end:
                start = await asyncio.to_thread(
                    self._store.claim_producer_id_block,
                    self.broker_id,
                    PRODUCER_ID_BLOCK,
                    self._request_timeout_s,
                )
                self._next_producer_id, self._producer_block_end = start, start + PRODUCER_ID_BLOCK
            pid = self._next_producer_id
            self._next_producer_id += 1
            return pid

    async def update_isr(
        self, queue: str, partition: int, leader_epoch: int, based_on: tuple[int, ...], isr: tuple[int, ...]
    ) -> bool:
        """A partition leader changes its ISR from ``based_on`` to ``isr`` (shrink or expand): a write
        of the state znode conditional on the version this broker last read, and only while that state
        still names this broker leader in ``leader_epoch`` with the ISR ``based_on``. False when the
        state moved on (a new leader, the controller's own ISR change) or ZooKeeper is unreachable: the
        leader decides again on its next check."""
        key = (queue, partition)
        record = self._view.states.get(key)
        if record is None or not self._registered:
            return False
        current = record.leader_and_isr
        if current.leader != self.broker_id or current.leader_epoch != leader_epoch:
            return False
        if current.isr == isr:
            return True
        if current.isr != based_on:
            self._mark(ReadRequest(states={key}))
            return False
        new = LeaderAndIsr(self.broker_id, leader_epoch, isr)
        try:
            version, mzxid = await asyncio.to_thread(
                self._store.set_state,
                state_path(queue, partition),
                encode_state(new, record.controller_epoch),
                record.version,
            )
        except (StaleVersionError, ZooKeeperUnavailableError) as exc:
            log.info("broker %d: ISR change of %s-%d not written: %s", self.broker_id, queue, partition, exc)
            self._mark(ReadRequest(states={key}))
            return False
        if self._view.states.get(key) is record:  # not replaced by a read meanwhile
            self._view.states[key] = StateRecord(new, record.controller_epoch, version, mzxid, record.czxid)
            self._publish()
        log.info(
            "broker %d: %s-%d ISR %s -> %s (leader epoch %d)",
            self.broker_id, queue, partition, list(current.isr), list(isr), leader_epoch,
        )  # fmt: skip
        return True

    # --- settings changed after creation ---------------------------------------------------------------

    async def alter_queue_settings(self, name: str, settings: Mapping[str, str]) -> QueueMetadata:
        """Rewrite the settings in the queue's assignment znode; every broker's watch re-reads it.
        Returns once this broker's snapshot has them."""
        wanted = dict(settings)
        await asyncio.to_thread(self._store.set_topic_settings, name, wanted, self._request_timeout_s)
        self._mark(ReadRequest(topics={name}))
        await self._wait_for(
            lambda: name not in self._snapshot or dict(self._snapshot[name].settings) == wanted,
            f"settings of queue {name!r}",
        )
        meta = self._snapshot.get(name)
        if meta is None:
            raise UnknownQueueError(f"queue {name!r} was deleted meanwhile")
        return meta

    def broker_settings(self) -> DynamicBrokerSettings:
        return self._broker_settings

    async def alter_broker_settings(self, broker_id: int | None, settings: Mapping[str, str]) -> None:
        """Write ``/config/brokers/<default>`` (None) or ``/config/brokers/<id>``; returns once this
        broker's view has it (the others' watches see it within moments)."""
        entity = DEFAULT_BROKER_ENTITY if broker_id is None else str(broker_id)
        wanted = dict(settings)
        await asyncio.to_thread(self._store.set_broker_config, entity, wanted, self._request_timeout_s)
        self._mark(ReadRequest(broker_configs={entity}))

        def done() -> bool:
            current = self._broker_settings
            level = current.cluster_default if broker_id is None else current.of_broker(broker_id)
            return dict(level) == wanted

        await self._wait_for(done, f"dynamic settings of broker {entity}")

    def add_broker_settings_listener(self, listener: BrokerSettingsListener) -> None:
        self._broker_settings_listeners.append(listener)

    # --- client quotas -------------------------------------------------------------------------------

    def client_quotas(self) -> ClientQuotas:
        return self._client_quotas

    async def alter_client_quotas(self, changes: Mapping[QuotaEntity, Mapping[str, float | None]]) -> None:
        """Write each entity's znode (Kafka's /config/users/.., /config/clients/..); returns once this
        broker's view has them (the others' watches see them within moments). Entities are written one
        by one: a failure part-way leaves the earlier ones written, as Kafka's ZooKeeper mode did."""
        for entity, values in changes.items():
            await asyncio.to_thread(self._store.set_quotas, entity, values, self._request_timeout_s)
        self._mark(ReadRequest(quotas=True))

        def done() -> bool:
            current = self._client_quotas
            return all(
                current.get(entity, {}).get(key) == value
                for entity, values in changes.items()
                for key, value in values.items()
            )

        await self._wait_for(done, "client quota change")

    def add_client_quota_listener(self, listener: ClientQuotaListener) -> None:
        self._client_quota_listeners.append(listener)

    def _apply_quotas(self, result: ReadResult) -> None:
        if result.quotas is None:
            return
        quotas = MappingProxyType({e: MappingProxyType(v) for e, v in result.quotas.items()})
        if quotas == self._client_quotas:
            return
        self._client_quotas = quotas
        for listener in list(self._client_quota_listeners):
            try:
                listener(quotas)
            except Exception:
                log.exception("client quota listener %r failed", listener)

    def _apply_broker_configs(self, result: ReadResult) -> None:
        current = self._broker_settings
        levels: dict[str, dict[str, str]] = {str(b): dict(s) for b, s in current.per_broker.items()}
        if current.cluster_default:
            levels[DEFAULT_BROKER_ENTITY] = dict(current.cluster_default)
        if result.broker_config_names is not None:
            levels = {e: s for e, s in levels.items() if e in result.broker_config_names}
        for entity, config in result.broker_configs.items():
            if config:
                levels[entity] = config
            else:
                levels.pop(entity, None)
        settings = DynamicBrokerSettings()
        for entity, config in levels.items():
            if entity == DEFAULT_BROKER_ENTITY:
                settings = settings.replaced(None, config)
            elif entity.isdigit():
                settings = settings.replaced(int(entity), config)
        if settings == current:
            return
        self._broker_settings = settings
        for listener in list(self._broker_settings_listeners):
            try:
                listener(settings)
            except Exception:
                log.exception("broker settings listener %r failed", listener)

    # --- ACLs ----------------------------------------------------------------------------------------

    def acls(self) -> frozenset[AclBinding]:
        return self._acls

    def add_acl_listener(self, listener: AclListener) -> None:
        self._acl_listeners.append(listener)

    async def create_acls(self, bindings: Sequence[AclBinding]) -> None:
        by_pattern: dict[ResourcePattern, set[AclBinding]] = {}
        for b in bindings:
            by_pattern.setdefault(b.pattern, set()).add(b)
        try:
            for pattern, added in sorted(by_pattern.items()):
                add = functools.partial(_with_added, frozenset(added))
                await asyncio.to_thread(self._store.update_acls, pattern, add, self._request_timeout_s)
        except BaseException:
            self._mark(ReadRequest(acl_patterns=set(by_pattern)))  # some may have been written
            raise
        await self._reread_acls(set(by_pattern))

    async def delete_acls(self, filters: Sequence[AclBindingFilter]) -> list[list[AclBinding]]:
        """Candidates come from this broker's view (as Kafka's cache), plus the one resource a filter
        with an exact type, name and pattern type names; each is changed on its fresh znode content."""
        candidates = {p for p in self._view.acls if any(f.matches_pattern(p) for f in filters)}
        for f in filters:
            definite = f.resource_type not in (ResourceType.ANY, ResourceType.UNKNOWN)
            if (
                f.name is not None
                and definite
                and f.pattern_type in (PatternType.LITERAL, PatternType.PREFIXED)
            ):
                candidates.add(ResourcePattern(f.resource_type, f.name, f.pattern_type))
        deleted: list[list[AclBinding]] = [[] for _ in filters]
        try:
            for pattern in sorted(candidates):
                removal = _Removal(filters)
                await asyncio.to_thread(self._store.update_acls, pattern, removal, self._request_timeout_s)
                for i, per_filter in enumerate(removal.removed):
                    deleted[i] += per_filter
        except BaseException:
            self._mark(ReadRequest(acl_patterns=candidates))
            raise
        await self._reread_acls(candidates)
        return deleted

    async def _reread_acls(self, patterns: set[ResourcePattern]) -> None:
        """Wait for a round that read ``patterns`` after our writes: then they are in force here."""
        if patterns:
            self._mark(ReadRequest(acl_patterns=set(patterns)))
            await self._wait_for(lambda: True, "reading the ACLs back")

    def _publish_acls(self) -> None:
        acls = self._view.acl_set()
        if acls == self._acls:
            return
        self._acls = acls
        for listener in list(self._acl_listeners):
            try:
                listener(acls)
            except Exception:
                log.exception("ACL listener %r failed", listener)

    async def announce_shutdown(self) -> None:
        """Controlled shutdown: ask the controller to move this broker's leaderships to other ISR
        members and take it out of the ISRs. The broker watches its snapshots for the result."""
        await asyncio.to_thread(self._store.announce_shutdown, self.broker_id)
        self._mark(ReadRequest(shutdowns=True))

    def shutting_down(self) -> frozenset[int]:
        """The brokers in a controlled shutdown (as last read)."""
        return frozenset(self._view.shutting_down)

    def state_is_current(self, queue: str, partition: int) -> bool:
        """Whether the partition's state was written after this broker registered. A state that names
        this broker leader but predates its registration was written for an earlier process (or
        session) of this broker: the controller will give it a new leader epoch before it may lead."""
        record = self._view.states.get((queue, partition))
        return record is not None and record.mzxid > self._broker_epoch

    async def end_session(self) -> None:
        """End this broker's ZooKeeper session server-side (a fault drill: ``logq`` brokers do it on
        SIGUSR1). The broker then sees its session lost, stops leading and registers again."""
        await asyncio.to_thread(self._store.end_session)

    async def _wait_for(self, done: Callable[[], bool], what: str) -> None:
        assert self._loop is not None
        waiter = _Waiter(self._round + 1, done, self._loop.create_future())
        self._waiters.append(waiter)
        self._wake.set()
        try:
            await asyncio.wait_for(waiter.future, self._request_timeout_s)
        except TimeoutError:
            raise CoordinationError(
                f"{what} did not complete within {self._request_timeout_s:g} s "
                f"(controller: {self.controller_id()}); it will complete when a controller is available",
                code=ErrorCode.REQUEST_TIMED_OUT,
            ) from None
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    # --- events from kazoo's threads -------------------------------------------------------------------

    def _post(self, fn: Callable[..., None], *args: Any) -> None:
        loop = self._loop
        if loop is None or self._closed:
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is listening any more
            loop.call_soon_threadsafe(fn, *args)

    def _state_from_kazoo(self, state: str) -> None:
        # kazoo's connection thread. Losing the session ends the controller term here and now (our
        # /controller is already gone server-side); everything else happens on the loop.
        if state == "lost":
            self._ctl = None
        self._post(self._on_state, state)

    def _watch_from_kazoo(self, path: str) -> None:
        self._post(self._on_watch, path)

    def _on_state(self, state: str) -> None:
        log.info("broker %d: ZooKeeper session %s", self.broker_id, state)
        for listener in list(self._session_listeners):
            try:
                listener(state)
            except Exception:
                log.exception("session listener %r failed", listener)
        self._connected = state == "connected"
        if state == "lost":
            self._registered = False
            self._ctl = None
        if state == "connected":
            self._mark(ReadRequest(everything=True))  # kazoo dropped the watches while disconnected

    def _on_watch(self, path: str) -> None:
        what = classify(path)
        request = ReadRequest()
        if what.kind == "brokers":
            request.brokers = True
        elif what.kind == "controller":
            request.controller = True
        elif what.kind == "topics":
            request.topic_names = True
        elif what.kind == "deletes":
            request.deletes = True
        elif what.kind == "shutdowns":
            request.shutdowns = True
        elif what.kind == "acl_changes":
            request.acl_changes = True
        elif what.kind == "topic":
            request.topics.add(what.queue)
        elif what.kind == "state":
            request.states.add((what.queue, what.partition))
        elif what.kind == "users":
            request.user_names = True
            request.quotas = True  # a user's znode holds its quotas too
        elif what.kind == "user":
            request.users.add(what.user)
            request.quotas = True
        elif what.kind == "quotas":
            request.quotas = True
        elif what.kind == "broker_configs":
            request.broker_config_names = True
        elif what.kind == "broker_config":
            request.broker_configs.add(what.entity)
        else:
            return
        self._mark(request)

    def _mark(self, request: ReadRequest) -> None:
        self._dirty.merge(request)
        self._wake.set()

    # --- the processor ---------------------------------------------------------------------------------

    async def _run(self) -> None:
        failures = 0
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._process_round()
                failures = 0
            except BrokerIdInUseError as exc:
                log.error("broker %d cannot register again: %s", self.broker_id, exc)
                failures += 1
            except Exception as exc:
                level = logging.INFO if isinstance(exc, ZooKeeperUnavailableError) else logging.WARNING
                log.log(level, "broker %d: coordinator round failed: %r", self.broker_id, exc)
                failures += 1
            if failures:
                self._dirty.everything = True
                await asyncio.sleep(RETRY_BACKOFF_S[min(failures, len(RETRY_BACKOFF_S)) - 1])
                self._wake.set()

    def _rebalance_tick(self) -> None:
        """The timer of the preferred-leader election: the next round does it (if it is the controller).
        A timer, not a timeout on the processor's wait: ``asyncio.wait_for`` may swallow a cancellation
        (Python 3.11), which would leave stop() waiting for the processor."""
        assert self._loop is not None
        assert self._rebalance_s is not None
        self._rebalance_due = True
        self._wake.set()
        self._rebalance_timer = self._loop.call_later(self._rebalance_s, self._rebalance_tick)

    async def _process_round(self) -> None:
        if not self._connected:
            return  # the CONNECTED event starts the next round
        self._round += 1
        if not self._registered:
            await self._register()
        request, self._dirty = self._dirty, ReadRequest()
        if request:
            try:
                result = await asyncio.to_thread(
                    self._store.read, request, list(self._view.topics), dict(self._view.acl_change_seen)
                )
            except BaseException:
                self._dirty.merge(request)
                raise
            if self._view.apply(result):
                self._publish()
            if self._view.apply_acls(result):
                self._publish_acls()
            self._apply_users(result)
            self._apply_broker_configs(result)
            self._apply_quotas(result)
            ctl, view = self._ctl, result.controller
            if ctl is not None and view is not None and not ctl.holds(view):
                await self._step_down(
                    ctl, ControllerFencedError(f"/controller is broker {view.broker_id}, epoch {view.epoch}")
                )
        self._resolve_waiters()
        if self._ctl is None:
            self._rebalance_due = False  # the controller's job
            await self._maybe_elect()
        ctl = self._ctl
        if ctl is not None:
            await self._controller_round(ctl)

    async def _register(self) -> None:
        record = await asyncio.to_thread(self._store.register_broker, self._broker, self._register_wait_s)
        self._registered = True
        self._broker_epoch = record.epoch
        self._mark(ReadRequest(brokers=True))

    def _publish(self) -> None:
        queues = self._view.queues()
        if dict(self._snapshot) == queues:
            return
        self._snapshot = MappingProxyType(queues)
        for listener in list(self._listeners):
            try:
                listener(self._snapshot)
            except Exception:
                log.exception("metadata listener %r failed", listener)

    def _resolve_waiters(self) -> None:
        for waiter in self._waiters:
            if not waiter.future.done() and self._round >= waiter.first_round and waiter.done():
                waiter.future.set_result(None)

    # --- the controller ----------------------------------------------------------------------------

    async def _maybe_elect(self) -> None:
        view = self._view.controller
        # /controller held by an earlier session of ours (we lost it): elect() deletes it.
        ours_from_before = view.broker_id == self.broker_id and view.owner not in (0, self.session_id)
        if view.broker_id != -1 and not ours_from_before:
            return
        ctl = await asyncio.to_thread(self._store.elect, self.broker_id)
        if ctl is None:
            self._mark(ReadRequest(controller=True))
            return
        self._ctl = ctl
        self._view.controller = ControllerView(self.broker_id, ctl.session_id, ctl.epoch)
        log.info("broker %d is the controller (epoch %d)", self.broker_id, ctl.epoch)
        # A new controller starts from a fresh read of everything, as Kafka's does.
        self._mark(ReadRequest(everything=True))

    async def _controller_round(self, ctl: ControllerContext) -> None:
        if self._dirty.everything or self._dirty.brokers:
            return  # decide on a current view of the brokers: the next round reads it first
        try:
            await self._carry_out_deletions(ctl)
            await self._create_missing_states(ctl)
            await self._elect_leaders(ctl)
            if self._rebalance_due:
                self._rebalance_due = False
                await self._write_leader_changes(ctl, self._view.preferred_changes(), "preferred leader")
        except ControllerFencedError as exc:
            await self._step_down(ctl, exc)
        except StaleVersionError as exc:
            log.info("controller %d: %s; reading it again", self.broker_id, exc)
            self._on_watch(exc.path)

    async def _fenced(self, ctl: ControllerContext, ops: list[Op]) -> None:
        """Commit controller writes, each transaction conditional on /controller_epoch's version."""
        if ops:
            await asyncio.to_thread(self._store.fenced_commit, ctl, ops)

    async def _step_down(self, ctl: ControllerContext, exc: Exception) -> None:
        log.warning("broker %d steps down as controller: %s", self.broker_id, exc)
        if self._ctl is ctl:
            self._ctl = None
        # If /controller is still ours (its epoch was bumped behind our back), delete it: a new
        # election gives the cluster a controller with a current epoch.
        await asyncio.to_thread(self._store.resign, ctl)
        self._mark(ReadRequest(everything=True))

    async def _carry_out_deletions(self, ctl: ControllerContext) -> None:
        for name in sorted(self._view.deletes):
            ops = await asyncio.to_thread(self._store.topic_tree_delete_ops, name)
            await self._fenced(ctl, ops)
            log.info("controller %d deleted queue %s", self.broker_id, name)
            self._mark(ReadRequest(topics={name}, deletes=True))

    async def _create_missing_states(self, ctl: ControllerContext) -> None:
        for name, states in self._view.missing_states(ctl.epoch).items():
            ops = await asyncio.to_thread(self._store.missing_partition_ops, name, states)
            await self._fenced(ctl, ops)
            log.info("controller %d created %d partition states of %s", self.broker_id, len(states), name)
            self._mark(ReadRequest(topics={name}))

    async def _elect_leaders(self, ctl: ControllerContext) -> None:
        await self._write_leader_changes(ctl, self._view.leader_changes(self._unclean), "election")

    async def _write_leader_changes(
        self, ctl: ControllerContext, changes: list[LeaderChange], why: str
    ) -> None:
        for c in changes:
            old = c.old.leader_and_isr
            log.info(
                "controller %d (%s): %s-%d leader %d -> %d, leader epoch %d -> %d, isr %s -> %s",
                self.broker_id, why, c.queue, c.partition, old.leader, c.new.leader, old.leader_epoch,
                c.new.leader_epoch, list(old.isr), list(c.new.isr),
            )  # fmt: skip
        if changes:
            self._mark(ReadRequest(states={(c.queue, c.partition) for c in changes}))
            ops = [
                Op("set", state_path(c.queue, c.partition), encode_state(c.new, ctl.epoch), c.old.version)
                for c in changes
            ]
            await self._fenced(ctl, ops)

    # --- test hooks ------------------------------------------------------------------------------------

    async def _controller_write(self, ctl: ControllerContext, ops: list[Op]) -> None:
        """A controller write with a given term (fault tests replay a deposed controller's write)."""
        try:
            await self._fenced(ctl, ops)
        except ControllerFencedError as exc:
            await self._step_down(ctl, exc)
            raise


def write_user_to_zookeeper(
    connect: str,
    user: str,
    credentials: list[ScramCredential],
    timeout_s: float = 15.0,
    digest: ZkDigest | None = None,
) -> None:
    """Add (or replace) a user's credentials in a cluster's ZooKeeper with no broker running: the first
    admin (``logq security init --zookeeper``). Running brokers see it through their watches. With
    ``digest`` it authenticates as the brokers do, and what it creates gets their ZooKeeper ACLs."""
    store = _offline_store(connect, timeout_s, digest)
    store.start(timeout_s)
    try:
        store.change_user(
            user, lambda current: {**current, **{c.mechanism: c for c in credentials}}, timeout_s
        )
    finally:
        store.stop()


def zookeeper_acl_plan(connect: str, digest: ZkDigest, *, apply: bool, timeout_s: float = 15.0) -> list[str]:
    """The znodes of a cluster whose ZooKeeper ACLs are not those brokers with ``zookeeper.set.acl``
    give them (a cluster made before ACLs were turned on); with ``apply``, set them (Kafka's
    zookeeper-security-migration). Returns the paths (listed, or changed), under the chroot."""
    store = _offline_store(connect, timeout_s, digest, warn_open=False)  # what it is for
    store.start(timeout_s)
    try:
        return store.apply_acls() if apply else store.open_znodes()
    finally:
        store.stop()


def _offline_store(
    connect: str, timeout_s: float, digest: ZkDigest | None, warn_open: bool = True
) -> ZkStore:
    return ZkStore(
        connect,
        session_timeout_ms=int(timeout_s * 1000),
        on_state=lambda _s: None,
        on_watch=lambda _p: None,
        digest=digest,
        set_acl=digest is not None,
        warn_open=warn_open,
    )
