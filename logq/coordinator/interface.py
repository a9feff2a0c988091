"""The Coordinator interface: what a broker asks of the cluster's metadata store.

Designed for two implementations: ``EmbeddedCoordinator`` (one standalone broker, state in a file of
its data directory) and a ZooKeeper one (many brokers; every write conditional on a controller or
znode version). Reads are served from an in-memory snapshot and never block; writes are coroutines,
because ZooKeeper writes are network round trips. Snapshots are immutable: a listener receives the new
one after every change.

ACL bindings (``logq.security.acl``) live here too, so that every broker of a cluster decides on the same
set: ``acls()`` is the current set, ``add_acl_listener`` is called with the whole new set after a change.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from logq.coordinator.credentials import Credentials
from logq.dynamic_settings import DynamicBrokerSettings
from logq.quotas import ClientQuotas, QuotaEntity
from logq.security.acl import AclBinding, AclBindingFilter
from logq.security.scram import ScramCredential


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where one of a broker's listeners is reached (``CLIENT://host:9093``, protocol SASL_SSL)."""

    listener: str
    host: str
    port: int
    protocol: str


@dataclass(frozen=True, slots=True)
class BrokerInfo:
    broker_id: int
    host: str  # the inter-broker listener's address (replicas fetch from it)
    port: int
    rack: str | None = None
    # Every listener's advertised address; () for a broker with a single PLAINTEXT listener at host:port.
    endpoints: tuple[Endpoint, ...] = ()

    def address_for(self, listener: str) -> tuple[str, int] | None:
        """The address clients of ``listener`` are given; None if this broker has no such listener. ""
        (a request not from a listener, e.g. in-process) gets host:port."""
        if not listener or (not self.endpoints and listener == "PLAINTEXT"):
            return self.host, self.port
        found = next((e for e in self.endpoints if e.listener == listener), None)
        return None if found is None else (found.host, found.port)


@dataclass(frozen=True, slots=True)
class PartitionState:
    """Who leads a partition, in which leader epoch, and which replicas are in sync."""

    leader: int  # -1: no leader
    leader_epoch: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class QueueMetadata:
    name: str
    partitions: tuple[PartitionState, ...]
    replication_factor: int
    settings: Mapping[str, str] = field(default_factory=dict)  # per-queue overrides (Kafka-style keys)
    internal: bool = False
    # Random, given at creation (Kafka's topic id): a queue deleted and created again under the same name
    # gets a new one, so a broker can tell a log left over from the old queue. "" for queues made before.
    queue_id: str = ""


MetadataListener = Callable[[Mapping[str, QueueMetadata]], None]
AclListener = Callable[[frozenset[AclBinding]], None]
BrokerSettingsListener = Callable[[DynamicBrokerSettings], None]
ClientQuotaListener = Callable[[ClientQuotas], None]


class Coordinator(Protocol):
    broker_id: int

    async def start(self) -> None:
        """Join the cluster (register this broker) and load the current metadata."""
        ...

    async def stop(self) -> None: ...

    def cluster_id(self) -> str:
        """A stable id of the cluster (Metadata v2+ reports it)."""
        ...

    def brokers(self) -> list[BrokerInfo]:
        """The live brokers."""
        ...

    def controller_id(self) -> int:
        """A live broker that accepts queue creation and deletion (-1 if none)."""
        ...

    def queues(self) -> Mapping[str, QueueMetadata]:
        """An immutable snapshot of every queue."""
        ...

    async def create_queue(
        self, name: str, partitions: int, replication_factor: int, settings: Mapping[str, str]
    ) -> QueueMetadata:
        """Create a queue; raises QueueExistsError, InvalidReplicationFactorError, InvalidPartitionsError.

        Names and settings are validated by the caller (``logq.queues``)."""
        ...

    async def delete_queue(self, name: str) -> None:
        """Delete a queue's metadata; raises UnknownQueueError. Brokers then remove its data."""
        ...

    async def allocate_producer_id(self) -> int:
        """A producer id never handed out before, cluster-wide, across restarts."""
        ...

    # --- growing a queue -----------------------------------------------------------------------------

    async def add_partitions(
        self, name: str, new_total: int, assignments: Sequence[Sequence[int]] | None
    ) -> QueueMetadata:
        """Give queue ``name`` ``new_total`` partitions, placing the new ones as a new queue's (or on
        ``assignments``: one replica list per new partition). Returns once this broker's snapshot has them
        all, each with its initial state. Raises UnknownQueueError, InvalidPartitionsError (not more than
        now), InvalidReplicaAssignmentError (``logq.coordinator.growth``)."""
        ...

    def add_listener(self, listener: MetadataListener) -> None:
        """Call ``listener`` with the new snapshot after every metadata change."""
        ...

    # --- what a broker needs to take and hand over its partitions' roles ---------------------------

    def state_is_current(self, queue: str, partition: int) -> bool:
        """Whether the partition's state was written after this broker registered (a state that names it
        leader but predates its registration was written for an earlier process of this broker)."""
        ...

    def add_session_listener(self, listener: Callable[[str], None]) -> None:
        """Call ``listener`` with "lost" when this broker's session ends (it must stop leading at once)."""
        ...

    async def update_isr(
        self, queue: str, partition: int, leader_epoch: int, based_on: tuple[int, ...], isr: tuple[int, ...]
    ) -> bool:
        """As the leader in ``leader_epoch``, change the ISR from ``based_on`` to ``isr``; False if the
        state changed meanwhile (nothing written)."""
        ...

    async def announce_shutdown(self) -> None:
        """Controlled shutdown: ask for this broker's leaderships to move to other in-sync replicas."""
        ...

    def shutting_down(self) -> frozenset[int]:
        """The brokers in a controlled shutdown."""
        ...

    def acls(self) -> frozenset[AclBinding]:
        """Every ACL binding, as last read (never blocks)."""
        ...

    async def create_acls(self, bindings: Sequence[AclBinding]) -> None:
        """Add bindings (validated by the caller); those that exist already are left as they are.
        In force on this broker when it returns, on the others soon after."""
        ...

    async def delete_acls(self, filters: Sequence[AclBindingFilter]) -> list[list[AclBinding]]:
        """Remove every binding some filter matches; per filter, the bindings it removed (a binding
        that several filters match counts for the first of them, as in Kafka)."""
        ...

    def add_acl_listener(self, listener: AclListener) -> None:
        """Call ``listener`` with the whole new ACL set after every change."""
        ...

    def credentials(self) -> Credentials:
        """Every user's SCRAM credentials: an immutable snapshot, from memory."""
        ...

    def sasl_secret(self) -> bytes:
        """A secret shared by the cluster's brokers (unknown users' fake SCRAM salts derive from it)."""
        ...

    async def upsert_credential(self, user: str, credential: ScramCredential) -> None:
        """Add or replace one SCRAM credential of ``user``; usable by every broker within a second."""
        ...

    async def delete_credential(self, user: str, mechanism: str | None) -> None:
        """Remove one mechanism's credential (None: all of them); UnknownCredentialError if absent."""
        ...

    # --- settings changed after creation (AlterConfigs, IncrementalAlterConfigs) --------------------

    async def alter_queue_settings(self, name: str, settings: Mapping[str, str]) -> QueueMetadata:
        """Replace the queue's overrides by ``settings`` (validated by the caller); UnknownQueueError if
        there is no such queue. The metadata listeners of every broker get the new snapshot; this
        broker's has it when the call returns."""
        ...

    def broker_settings(self) -> DynamicBrokerSettings:
        """The dynamic broker settings, cluster-wide and per broker (from memory, never blocks)."""
        ...

    async def alter_broker_settings(self, broker_id: int | None, settings: Mapping[str, str]) -> None:
        """Replace one level of dynamic broker settings (None: the cluster-wide defaults) by
        ``settings`` (validated by the caller). In force on this broker when it returns."""
        ...

    def add_broker_settings_listener(self, listener: BrokerSettingsListener) -> None:
        """Call ``listener`` with all the dynamic broker settings after every change."""
        ...

    # --- client quotas (DescribeClientQuotas, AlterClientQuotas) ---------------------------------

    def client_quotas(self) -> ClientQuotas:
        """Every quota entity's values (from memory, never blocks)."""
        ...

    async def alter_client_quotas(self, changes: Mapping[QuotaEntity, Mapping[str, float | None]]) -> None:
        """Set (a value) or remove (None) quota keys of each entity (validated by the caller), all at
        once. In force on this broker when it returns; the others' listeners get it within moments."""
        ...

    def add_client_quota_listener(self, listener: ClientQuotaListener) -> None:
        """Call ``listener`` with all the client quotas after every change."""
        ...
