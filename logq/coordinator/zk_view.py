"""The coordinator's in-memory copy of the cluster metadata, and the decisions taken on it. Pure.

``ClusterView`` is updated from reads (``apply``), builds the immutable queue snapshot (``queues``) and
plans the controller's writes: initial states of new partitions and leader/ISR changes
(``assignment.next_state``). The coordinator does the I/O; every planned write is conditional (znode
version, controller epoch), so a plan made on a slightly old view fails rather than doing harm.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from logq.coordinator.assignment import LeaderAndIsr, initial_state, next_state, preferred_state
from logq.coordinator.interface import PartitionState, QueueMetadata
from logq.coordinator.zk_layout import (
    BrokerRecord,
    ControllerView,
    ReadResult,
    StateRecord,
    TopicRecord,
    encode_state,
)
from logq.security.acl import AclBinding, ResourcePattern

PartitionKey = tuple[str, int]


@dataclass(frozen=True, slots=True)
class LeaderChange:
    queue: str
    partition: int
    old: StateRecord
    new: LeaderAndIsr


@dataclass
class ClusterView:
    brokers: dict[int, BrokerRecord] = field(default_factory=dict)
    controller: ControllerView = field(default_factory=lambda: ControllerView(-1, 0, 0))
    topics: dict[str, TopicRecord] = field(default_factory=dict)
    states: dict[PartitionKey, StateRecord] = field(default_factory=dict)
    deletes: set[str] = field(default_factory=set)
    shutting_down: set[int] = field(default_factory=set)  # brokers in a controlled shutdown
    acls: dict[ResourcePattern, frozenset[AclBinding]] = field(default_factory=dict)
    acl_change_seen: dict[str, int] = field(default_factory=dict)  # per change root, the newest acted on

    def apply(self, result: ReadResult) -> bool:
        """Take in a read; True if queues (assignments or partition states) may have changed."""
        changed = False
        if result.everything:
            self.topics.clear()
            self.states.clear()
            changed = True
        if result.brokers is not None:
            self.brokers = result.brokers
        if result.controller is not None:
            self.controller = result.controller
        if result.deletes is not None:
            self.deletes = result.deletes
        if result.shutdowns is not None:
            self.shutting_down = result.shutdowns
        for name, topic in result.topics.items():
            old = self.topics.get(name)
            if topic is None:
                if old is not None:
                    del self.topics[name]
                    for key in [k for k in self.states if k[0] == name]:
                        del self.states[key]
                    changed = True
            elif topic != old:
                self.topics[name] = topic
                changed = True
        for key, state in result.states.items():
            if state is None:
                changed |= self.states.pop(key, None) is not None
            elif key[0] in self.topics and self.states.get(key) != state:
                self.states[key] = state
                changed = True
        return changed

    def apply_acls(self, result: ReadResult) -> bool:
        """Take in the ACLs of a read; True if the ACL set changed."""
        changed = False
        if result.all_acls is not None:
            changed = result.all_acls != self.acls
            self.acls = dict(result.all_acls)
        for pattern, bindings in result.acls.items():
            if bindings:
                changed |= self.acls.get(pattern) != bindings
                self.acls[pattern] = bindings
            else:
                changed |= self.acls.pop(pattern, None) is not None
        if result.acl_change_seen is not None:
            self.acl_change_seen = result.acl_change_seen
        return changed

    def acl_set(self) -> frozenset[AclBinding]:
        return frozenset(b for bindings in self.acls.values() for b in bindings)

    def queues(self) -> dict[str, QueueMetadata]:
        """Every queue whose partitions all have a state (one still being created is left out). A queue
        that is growing is listed with the partitions it had before until every new one has a state:
        those whose state was created before the assignment's last write (the growth)."""
        out: dict[str, QueueMetadata] = {}
        for name, topic in self.topics.items():
            partitions = []
            established = 0  # the leading partitions whose state predates the assignment's last write
            for p, replicas in enumerate(topic.replicas):
                record = self.states.get((name, p))
                if record is None:
                    break
                if established == p and 0 < record.czxid < topic.mzxid:
                    established += 1
                s = record.leader_and_isr
                partitions.append(PartitionState(s.leader, s.leader_epoch, replicas, s.isr))
            if len(partitions) != len(topic.replicas):
                partitions = partitions[:established]
            if not partitions:
                continue
            out[name] = QueueMetadata(
                name=name,
                partitions=tuple(partitions),
                replication_factor=len(topic.replicas[0]),
                settings=topic.settings,
                internal=name.startswith("__"),
                queue_id=topic.queue_id,
            )
        return out

    def broker_epochs(self) -> dict[int, int]:
        return {b: r.epoch for b, r in self.brokers.items()}

    def missing_states(self, controller_epoch: int) -> dict[str, dict[int, bytes]]:
        """For each queue (not being deleted) with partitions lacking a state: the initial states."""
        live = set(self.brokers)
        out: dict[str, dict[int, bytes]] = {}
        for name, topic in sorted(self.topics.items()):
            if name in self.deletes:
                continue
            missing = {
                p: encode_state(initial_state(replicas, live), controller_epoch)
                for p, replicas in enumerate(topic.replicas)
                if (name, p) not in self.states
            }
            if missing:
                out[name] = missing
        return out

    def leader_changes(self, unclean: bool) -> list[LeaderChange]:
        """The partitions whose leader or ISR must change for the live brokers.

        A leader or ISR member whose registration is newer than the partition state (broker epoch =
        czxid > the state's mzxid) re-registered since it was put there: it restarted or lost its
        session in between, maybe before this controller was elected. It counts as lost and then
        back (KIP-380), so it loses its ISR place and a restarted leader gets a new leader epoch.
        A broker in a controlled shutdown hands its leaderships to other ISR members and leaves the
        ISRs (``assignment.next_state``)."""
        epochs = self.broker_epochs()
        shutting = self.shutting_down & epochs.keys()

        def change(record: StateRecord, replicas: tuple[int, ...]) -> LeaderAndIsr | None:
            current = record.leader_and_isr
            bounced = [b for b in (current.leader, *current.isr) if epochs.get(b, -1) > record.mzxid]
            return next_state(
                current, replicas, epochs.keys(), bounced=bounced, shutting=shutting, unclean=unclean
            )

        return self._changes(change)

    def preferred_changes(self) -> list[LeaderChange]:
        """The partitions to hand back to their preferred leader (``assignment.preferred_state``)."""
        live = self.broker_epochs().keys()
        shutting = self.shutting_down & live
        return self._changes(
            lambda record, replicas: preferred_state(record.leader_and_isr, replicas, live, shutting)
        )

    def _changes(
        self, decide: Callable[[StateRecord, tuple[int, ...]], LeaderAndIsr | None]
    ) -> list[LeaderChange]:
        """``decide(state, replicas)`` for every partition of a queue not being deleted, in order."""
        out = []
        for (name, p), record in sorted(self.states.items()):
            topic = self.topics.get(name)
            if topic is None or name in self.deletes or p >= len(topic.replicas):
                continue
            new = decide(record, topic.replicas[p])
            if new is not None:
                out.append(LeaderChange(name, p, record, new))
        return out


EMPTY_QUEUES: Mapping[str, QueueMetadata] = MappingProxyType({})
