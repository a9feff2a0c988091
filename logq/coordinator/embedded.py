"""EmbeddedCoordinator: the metadata of a standalone broker, kept in ``<data dir>/coordinator.json``.

A standalone broker is a cluster of one: it leads every partition with an ISR of itself. Leader epochs
are real, as in a cluster: a queue starts in epoch 0, and every start of the broker (a new leader, as a
restarted broker is in a cluster) moves every queue to the next epoch, recorded before anything is
served, so a client that saw a batch of an epoch can ask where it ended (OffsetForLeaderEpoch).

The file is rewritten atomically (temp, fsync, rename, fsync of the directory) on every change, so a
crash leaves either the old or the new metadata. Producer ids are handed out from blocks of 1,000 whose
upper bound is persisted before any id of the block is used (as Kafka's ZooKeeper mode did), so no id is
ever reused after a crash. ACL bindings are kept in the same file (``"acls"``), written before a change
is in force, and so are the client quotas (``"client_quotas"``, by Kafka's entity path under /config:
``users/alice/clients/app``, ``clients/<default>``), the dynamic broker settings
(``"broker_settings"``, by Kafka's entity name: ``<default>`` or the broker id) and each queue's
settings, changed or not since its creation. A change
whose write fails (a full disk) is not made: the caller gets a StorageError (KAFKA_STORAGE_ERROR) and
memory keeps the state the file holds.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

from logq.coordinator.credentials import (
    CredentialFile,
    Credentials,
    frozen,
    with_credential,
    without_credential,
)
from logq.coordinator.growth import new_partition_replicas
from logq.coordinator.interface import (
    AclListener,
    BrokerInfo,
    BrokerSettingsListener,
    ClientQuotaListener,
    MetadataListener,
    PartitionState,
    QueueMetadata,
)
from logq.durable import atomic_write
from logq.dynamic_settings import DynamicBrokerSettings
from logq.errors import (
    InvalidPartitionsError,
    InvalidReplicationFactorError,
    QueueExistsError,
    StorageError,
    UnknownQueueError,
)
from logq.queues import collides
from logq.quotas import NO_QUOTAS, ClientQuotas, QuotaEntity, with_changes
from logq.security.acl import (
    AccessControlEntry,
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    PatternType,
    ResourcePattern,
    ResourceType,
    display_name,
    parse_name,
    select_deletions,
)
from logq.security.scram import ScramCredential

STATE_FILE = "coordinator.json"
DEFAULT_BROKER_ENTITY = "<default>"  # the cluster-wide dynamic broker settings (Kafka's entity name)
PRODUCER_ID_BLOCK = 1000
MAX_PARTITIONS = 10_000  # each partition holds open files; more per queue is a mistake


class EmbeddedCoordinator:
    def __init__(self, data_dir: Path, broker: BrokerInfo) -> None:
        self.broker_id = broker.broker_id
        self._broker = broker
        self._path = data_dir / STATE_FILE
        self._queues: dict[str, QueueMetadata] = {}
        self._producer_block_end = 0
        self._next_producer_id = 0
        self._listeners: list[MetadataListener] = []
        self._cluster_id = ""
        self._lock = asyncio.Lock()
        self._acls: frozenset[AclBinding] = frozenset()
        self._acl_listeners: list[AclListener] = []
        self._credential_file = CredentialFile(data_dir)
        self._credentials: Credentials = frozen({})
        self._secret = b""
        self._broker_settings = DynamicBrokerSettings()
        self._broker_settings_listeners: list[BrokerSettingsListener] = []
        self._client_quotas: ClientQuotas = NO_QUOTAS
        self._client_quota_listeners: list[ClientQuotaListener] = []

    async def start(self) -> None:
        if self._path.exists():
            self._load(json.loads(self._path.read_text()))
        if not self._cluster_id:
            self._cluster_id = uuid.uuid4().hex
            await self._save()
        await self._next_leader_epochs()
        self._credentials, self._secret = self._credential_file.load()
        if not self._credential_file.path.exists():
            await asyncio.to_thread(self._credential_file.save, self._credentials, self._secret)

    def cluster_id(self) -> str:
        return self._cluster_id

    async def stop(self) -> None:
        pass

    def brokers(self) -> list[BrokerInfo]:
        return [self._broker]

    def controller_id(self) -> int:
        return self.broker_id

    def queues(self) -> Mapping[str, QueueMetadata]:
        return MappingProxyType(dict(self._queues))

    async def create_queue(
        self, name: str, partitions: int, replication_factor: int, settings: Mapping[str, str]
    ) -> QueueMetadata:
        if partitions < 1 or partitions > MAX_PARTITIONS:
            raise InvalidPartitionsError(f"a queue needs 1 to {MAX_PARTITIONS} partitions, not {partitions}")
        if replication_factor < 1 or replication_factor > 1:
            raise InvalidReplicationFactorError(
                f"replication factor {replication_factor} is impossible with 1 live broker"
            )
        async with self._lock:
            if name in self._queues:
                raise QueueExistsError(f"queue {name!r} already exists")
            clash = next((q for q in self._queues if collides(q, name)), None)
            if clash is not None:
                raise QueueExistsError(
                    f"queue {name!r} collides with {clash!r} ('.' and '_' are treated alike)"
                )
            state = self._led_state(0)
            queue = QueueMetadata(
                name=name,
                partitions=(state,) * partitions,
                replication_factor=replication_factor,
                settings=MappingProxyType(dict(settings)),
                internal=name.startswith("__"),
                queue_id=uuid.uuid4().hex,
            )
            self._queues[name] = queue
            try:
                await self._save()
            except StorageError:
                del self._queues[name]
                raise
        self._notify()
        return queue

    async def delete_queue(self, name: str) -> None:
        async with self._lock:
            if name not in self._queues:
                raise UnknownQueueError(f"queue {name!r} does not exist")
            queue = self._queues.pop(name)
            try:
                await self._save()
            except StorageError:
                self._queues[name] = queue
                raise
        self._notify()

    # --- growing a queue -----------------------------------------------------------------------------

    async def add_partitions(
        self, name: str, new_total: int, assignments: Sequence[Sequence[int]] | None
    ) -> QueueMetadata:
        async with self._lock:
            queue = self._queues.get(name)
            if queue is None:
                raise UnknownQueueError(f"queue {name!r} does not exist")
            new_partition_replicas(
                [p.replicas for p in queue.partitions],
                new_total,
                assignments,
                [self.broker_id],
                max_partitions=MAX_PARTITIONS,
            )
            # one leader epoch per queue here (the file keeps one): the new partitions take the current
            grown = dataclasses.replace(queue, partitions=(queue.partitions[0],) * new_total)
            self._queues[name] = grown
            try:
                await self._save()
            except StorageError:
                self._queues[name] = queue
                raise
        self._notify()
        return grown

    async def allocate_producer_id(self) -> int:
        async with self._lock:
            if self._next_producer_id >= self._producer_block_end:
                previous = self._producer_block_end
                self._producer_block_end = self._next_producer_id + PRODUCER_ID_BLOCK
                try:
                    await self._save()
                except StorageError:  # no id of an unrecorded block is ever handed out
                    self._producer_block_end = previous
                    raise
            pid = self._next_producer_id
            self._next_producer_id += 1
            return pid

    def add_listener(self, listener: MetadataListener) -> None:
        self._listeners.append(listener)

    # --- roles: this broker leads everything -------------------------------------------------------

    def _led_state(self, leader_epoch: int) -> PartitionState:
        me = self.broker_id
        return PartitionState(leader=me, leader_epoch=leader_epoch, replicas=(me,), isr=(me,))

    async def _next_leader_epochs(self) -> None:
        """A start of the broker is a new leadership of every queue: the next leader epoch."""
        if not self._queues:
            return
        self._queues = {
            name: dataclasses.replace(
                q, partitions=(self._led_state(q.partitions[0].leader_epoch + 1),) * len(q.partitions)
            )
            for name, q in self._queues.items()
        }
        await self._save()

    def state_is_current(self, queue: str, partition: int) -> bool:
        return True  # nobody else writes this broker's metadata

    def add_session_listener(self, listener: Callable[[str], None]) -> None:
        pass  # no session to lose

    async def update_isr(
        self, queue: str, partition: int, leader_epoch: int, based_on: tuple[int, ...], isr: tuple[int, ...]
    ) -> bool:
        return False  # one replica: the ISR is this broker, always

    async def announce_shutdown(self) -> None:
        pass  # no other replica to hand the leaderships to

    def shutting_down(self) -> frozenset[int]:
        return frozenset()

    # --- SCRAM credentials (credentials.json) -------------------------------------------------------

    def credentials(self) -> Credentials:
        return self._credentials

    def sasl_secret(self) -> bytes:
        return self._secret

    async def upsert_credential(self, user: str, credential: ScramCredential) -> None:
        async with self._lock:
            users = with_credential(self._credentials, user, credential)
            await asyncio.to_thread(self._credential_file.save, users, self._secret)
            self._credentials = users

    async def delete_credential(self, user: str, mechanism: str | None) -> None:
        async with self._lock:
            users = without_credential(self._credentials, user, mechanism)
            await asyncio.to_thread(self._credential_file.save, users, self._secret)
            self._credentials = users

    def _notify(self) -> None:
        snapshot = self.queues()
        for listener in self._listeners:
            listener(snapshot)

    # --- ACLs --------------------------------------------------------------------------------------

    def acls(self) -> frozenset[AclBinding]:
        return self._acls

    async def create_acls(self, bindings: Sequence[AclBinding]) -> None:
        async with self._lock:
            new = self._acls | frozenset(bindings)
            if new == self._acls:
                return
            await self._save_acls(new)
        self._notify_acls()

    async def delete_acls(self, filters: Sequence[AclBindingFilter]) -> list[list[AclBinding]]:
        async with self._lock:
            deleted = select_deletions(self._acls, filters)
            gone = {b for per_filter in deleted for b in per_filter}
            if not gone:
                return deleted
            await self._save_acls(self._acls - gone)
        self._notify_acls()
        return deleted

    def add_acl_listener(self, listener: AclListener) -> None:
        self._acl_listeners.append(listener)

    async def _save_acls(self, acls: frozenset[AclBinding]) -> None:
        """On disk first: a change is in force only once it would survive a crash."""
        previous, self._acls = self._acls, acls
        try:
            await self._save()
        except BaseException:
            self._acls = previous
            raise

    def _notify_acls(self) -> None:
        for listener in self._acl_listeners:
            listener(self._acls)

    # --- settings changed after creation -----------------------------------------------------------

    async def alter_queue_settings(self, name: str, settings: Mapping[str, str]) -> QueueMetadata:
        async with self._lock:
            before = self._queues.get(name)
            if before is None:
                raise UnknownQueueError(f"queue {name!r} does not exist")
            after = dataclasses.replace(before, settings=MappingProxyType(dict(settings)))
            self._queues[name] = after
            try:
                await self._save()
            except StorageError:
                self._queues[name] = before
                raise
        self._notify()
        return after

    def broker_settings(self) -> DynamicBrokerSettings:
        return self._broker_settings

    async def alter_broker_settings(self, broker_id: int | None, settings: Mapping[str, str]) -> None:
        async with self._lock:
            before = self._broker_settings
            self._broker_settings = before.replaced(broker_id, settings)
            try:
                await self._save()
            except StorageError:
                self._broker_settings = before
                raise
        for listener in self._broker_settings_listeners:
            listener(self._broker_settings)

    def add_broker_settings_listener(self, listener: BrokerSettingsListener) -> None:
        self._broker_settings_listeners.append(listener)

    # --- client quotas ---------------------------------------------------------------------------

    def client_quotas(self) -> ClientQuotas:
        return self._client_quotas

    async def alter_client_quotas(self, changes: Mapping[QuotaEntity, Mapping[str, float | None]]) -> None:
        async with self._lock:
            before = after = self._client_quotas
            for entity, values in changes.items():
                after = with_changes(after, entity, values)
            self._client_quotas = MappingProxyType(dict(after))
            try:
                await self._save()
            except StorageError:
                self._client_quotas = before
                raise
        for listener in self._client_quota_listeners:
            listener(self._client_quotas)

    def add_client_quota_listener(self, listener: ClientQuotaListener) -> None:
        self._client_quota_listeners.append(listener)

    # --- persistence -------------------------------------------------------------------------------

    def _dump(self) -> dict[str, Any]:
        return {
            "version": 1,
            "cluster_id": self._cluster_id,
            "producer_id_block_end": self._producer_block_end,
            "queues": {
                q.name: {
                    "partitions": len(q.partitions),
                    "replication_factor": q.replication_factor,
                    "settings": dict(q.settings),
                    "queue_id": q.queue_id,
                    "leader_epoch": q.partitions[0].leader_epoch,
                }
                for q in self._queues.values()
            },
            "acls": [_acl_to_json(b) for b in sorted(self._acls)],
            "broker_settings": _broker_settings_to_json(self._broker_settings),
            # by Kafka's entity path under /config: "users/alice/clients/app", "clients/<default>"
            "client_quotas": {e.path(): dict(v) for e, v in self._client_quotas.items()},
        }

    def _load(self, data: dict[str, Any]) -> None:
        self._cluster_id = str(data.get("cluster_id", ""))
        self._producer_block_end = self._next_producer_id = int(data.get("producer_id_block_end", 0))
        for name, spec in data.get("queues", {}).items():
            self._queues[name] = QueueMetadata(
                name=name,
                # one epoch for all of a queue's partitions: they change leader together (at a start);
                # a file written before epochs were kept starts at 0 once bumped
                partitions=(self._led_state(int(spec.get("leader_epoch", -1))),) * int(spec["partitions"]),
                replication_factor=int(spec["replication_factor"]),
                settings=MappingProxyType({str(k): str(v) for k, v in spec.get("settings", {}).items()}),
                internal=name.startswith("__"),
                queue_id=str(spec.get("queue_id", "")),
            )
        self._acls = frozenset(_acl_from_json(a) for a in data.get("acls", []))
        self._broker_settings = _broker_settings_from_json(data.get("broker_settings", {}))
        self._client_quotas = MappingProxyType(
            {
                QuotaEntity.from_path(str(path)): MappingProxyType(
                    {str(k): float(v) for k, v in values.items()}
                )
                for path, values in data.get("client_quotas", {}).items()
            }
        )

    async def _save(self) -> None:
        payload = json.dumps(self._dump(), indent=1, sort_keys=True).encode()
        try:
            await asyncio.to_thread(atomic_write, self._path, payload)
        except OSError as exc:
            raise StorageError(f"cannot write {self._path}: {exc}") from exc


def _broker_settings_to_json(settings: DynamicBrokerSettings) -> dict[str, dict[str, str]]:
    """Kafka's entity names: "<default>" for the cluster-wide level, else the broker id."""
    out = {str(b): dict(s) for b, s in settings.per_broker.items()}
    if settings.cluster_default:
        out[DEFAULT_BROKER_ENTITY] = dict(settings.cluster_default)
    return out


def _broker_settings_from_json(data: Mapping[str, Any]) -> DynamicBrokerSettings:
    levels = {str(k): {str(n): str(v) for n, v in s.items()} for k, s in data.items()}
    cluster = levels.pop(DEFAULT_BROKER_ENTITY, {})
    per_broker = {int(b): MappingProxyType(s) for b, s in levels.items()}
    return DynamicBrokerSettings(MappingProxyType(cluster), MappingProxyType(per_broker))


def _acl_to_json(binding: AclBinding) -> dict[str, str]:
    """Kafka's spellings (as in its ZooKeeper znodes), so the file reads like kafka-acls output."""
    p, e = binding.pattern, binding.entry
    return {
        "resource_type": display_name(p.resource_type),
        "name": p.name,
        "pattern_type": display_name(p.pattern_type),
        "principal": e.principal,
        "host": e.host,
        "operation": display_name(e.operation),
        "permission": display_name(e.permission),
    }


def _acl_from_json(data: Mapping[str, Any]) -> AclBinding:
    pattern = ResourcePattern(
        parse_name(ResourceType, str(data["resource_type"])),
        str(data["name"]),
        parse_name(PatternType, str(data["pattern_type"])),
    )
    entry = AccessControlEntry(
        str(data["principal"]),
        str(data["host"]),
        parse_name(AclOperation, str(data["operation"])),
        parse_name(AclPermissionType, str(data["permission"])),
    )
    return AclBinding(pattern, entry)
