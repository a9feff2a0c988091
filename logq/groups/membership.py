"""Group membership for Kafka's classic group protocol: joins, syncs, heartbeats, leaves, timeouts.

One ``GroupMembership`` per coordinator. Joins and syncs that must wait are parked as futures and all
answered together when the round completes, as Kafka does. Timers are checked by one periodic tick
(``tick()``, driven by ``run()``), not one timer per member: session expiry, the join phase's deadline
(the members' largest rebalance timeout, after ``group.initial.rebalance.delay.ms`` for a group that was
empty), and the sync deadline. Every state change goes through ``logq.groups.state.transition``.

Member metadata and assignments are opaque bytes, except one rule: a consumer-group follower that the
leader gave nothing still receives a decodable, empty assignment (Kafka's consumer cannot decode 0 bytes).

Static membership (KIP-345): a member that joins with a ``group.instance.id`` keeps its place across
restarts. When it joins again with an empty member id, it takes over the old member id's place (a new id,
the same assignment), the old id is fenced (FENCED_INSTANCE_ID on its parked and later requests), and a
Stable group hands it its previous assignment without a rebalance. Static members do not send LeaveGroup
when they close; they leave by session expiry or by a LeaveGroup v3+ naming their instance id.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from logq.error_codes import ErrorCode
from logq.groups.state import GroupEvent, GroupState, transition

log = logging.getLogger(__name__)

EMPTY_CONSUMER_ASSIGNMENT = struct.pack(">hii", 0, 0, -1)  # version 0, no topics, null user data


@dataclass(frozen=True, slots=True)
class MembershipConfig:
    initial_rebalance_delay_ms: int = 3000  # group.initial.rebalance.delay.ms
    min_session_timeout_ms: int = 6000  # group.min.session.timeout.ms
    max_session_timeout_ms: int = 1_800_000  # group.max.session.timeout.ms
    tick_ms: int = 100


@dataclass(frozen=True, slots=True)
class JoinResult:
    error: ErrorCode
    generation: int = -1
    protocol_name: str = ""
    leader: str = ""
    member_id: str = ""
    members: Sequence[tuple[str, str | None, bytes]] = ()  # (member id, instance id, metadata), leader only


@dataclass(slots=True)
class Member:
    member_id: str
    instance_id: str | None
    client_id: str
    client_host: str
    session_timeout_ms: int
    rebalance_timeout_ms: int
    protocols: list[tuple[str, bytes]]
    assignment: bytes = b""
    last_seen: float = 0.0
    join: asyncio.Future[JoinResult] | None = None
    sync: asyncio.Future[tuple[ErrorCode, bytes]] | None = None

    def metadata_for(self, protocol: str) -> bytes:
        return next((meta for name, meta in self.protocols if name == protocol), b"")


@dataclass(slots=True)
class Group:
    group_id: str
    state: GroupState = GroupState.EMPTY
    generation: int = 0
    protocol_type: str | None = None
    protocol_name: str | None = None
    leader: str | None = None
    members: dict[str, Member] = field(default_factory=dict)
    static_members: dict[str, str] = field(default_factory=dict)  # group.instance.id -> member id
    pending: dict[str, float] = field(default_factory=dict)  # member ids handed out, not yet joined
    delay_until: float = 0.0  # a group that was empty waits this long for more members
    join_deadline: float = 0.0  # then members that did not rejoin by this time are dropped
    sync_deadline: float = 0.0

    def move(self, event: GroupEvent) -> None:
        self.state = transition(self.state, event)

    def check_member(self, member_id: str, instance_id: str | None) -> ErrorCode:
        """Whether a request from (member id, instance id) comes from a current member (Kafka's
        validateCurrentMember): a static instance whose id was taken over by a newer join is fenced."""
        if instance_id is not None:
            current = self.static_members.get(instance_id)
            if current is None:
                return ErrorCode.UNKNOWN_MEMBER_ID
            if current != member_id:
                return ErrorCode.FENCED_INSTANCE_ID
        return ErrorCode.NONE if member_id in self.members else ErrorCode.UNKNOWN_MEMBER_ID


class GroupMembership:
    def __init__(
        self,
        config: MembershipConfig,
        now: Callable[[], float],
        on_change: Callable[[Group], None] = lambda group: None,
    ) -> None:
        self._config = config
        self._now = now
        self._on_change = on_change  # e.g. record "empty since" for offsets retention
        self.groups: dict[str, Group] = {}

    # --- JoinGroup -------------------------------------------------------------------------------

    async def join(
        self,
        group_id: str,
        member_id: str,
        *,
        instance_id: str | None,
        client_id: str,
        client_host: str,
        session_timeout_ms: int,
        rebalance_timeout_ms: int,
        protocol_type: str,
        protocols: Sequence[tuple[str, bytes]],
        require_known_member_id: bool,
    ) -> JoinResult:
        if not group_id:
            return JoinResult(ErrorCode.INVALID_GROUP_ID)
        if (
            not self._config.min_session_timeout_ms
            <= session_timeout_ms
            <= self._config.max_session_timeout_ms
        ):
            return JoinResult(ErrorCode.INVALID_SESSION_TIMEOUT)
        group = self.groups.setdefault(group_id, Group(group_id))
        if group.state is GroupState.DEAD:
            return JoinResult(ErrorCode.COORDINATOR_NOT_AVAILABLE)
        if not protocols or (group.members and not self._compatible(group, protocol_type, protocols)):
            return JoinResult(ErrorCode.INCONSISTENT_GROUP_PROTOCOL)
        now = self._now()
        if not member_id and instance_id is not None and instance_id in group.static_members:
            return await self._replace_static_member(
                group, instance_id, client_id=client_id, client_host=client_host,
                session_timeout_ms=session_timeout_ms, rebalance_timeout_ms=rebalance_timeout_ms,
                protocols=protocols,
            )  # fmt: skip
        if not member_id:
            member_id = f"{client_id or 'member'}-{uuid.uuid4()}"
            if require_known_member_id and instance_id is None:  # KIP-394: the client must rejoin with it
                group.pending[member_id] = now + session_timeout_ms / 1000
                return JoinResult(ErrorCode.MEMBER_ID_REQUIRED, member_id=member_id)
        elif instance_id is not None and group.check_member(member_id, instance_id):
            return JoinResult(group.check_member(member_id, instance_id), member_id=member_id)
        elif member_id not in group.members and group.pending.pop(member_id, None) is None:
            return JoinResult(ErrorCode.UNKNOWN_MEMBER_ID, member_id=member_id)
        existing = group.members.get(member_id)
        changed = existing is None or list(existing.protocols) != list(protocols)
        if existing is None:
            member = Member(member_id, instance_id, client_id, client_host, session_timeout_ms,
                            rebalance_timeout_ms, list(protocols))  # fmt: skip
            group.members[member_id] = member
            if instance_id is not None:
                group.static_members[instance_id] = member_id
        else:
            member = existing
            member.protocols = list(protocols)
            member.session_timeout_ms, member.rebalance_timeout_ms = session_timeout_ms, rebalance_timeout_ms
        member.last_seen = now
        group.protocol_type = protocol_type
        if group.state is GroupState.STABLE and not changed and member_id != group.leader:
            # A follower rejoining with the same metadata gets the current generation back.
            return self._join_result(group, member)
        return await self._park_join(group, member, now)

    async def _park_join(self, group: Group, member: Member, now: float) -> JoinResult:
        """Hold the member's JoinGroup until the join phase ends (starting one if none is under way)."""
        future: asyncio.Future[JoinResult] = asyncio.get_running_loop().create_future()
        member.join = future
        if group.state is not GroupState.PREPARING_REBALANCE:
            self._prepare_rebalance(group, GroupEvent.JOIN, now)
        self._maybe_complete_join(group)
        return await future

    async def _replace_static_member(
        self,
        group: Group,
        instance_id: str,
        *,
        client_id: str,
        client_host: str,
        session_timeout_ms: int,
        rebalance_timeout_ms: int,
        protocols: Sequence[tuple[str, bytes]],
    ) -> JoinResult:
        """A static member joins again with an empty member id (a restart): it takes the old member's
        place under a new id and the old id is fenced (Kafka's updateStaticMemberAndRebalance)."""
        now = self._now()
        old_id = group.static_members[instance_id]
        member = group.members.pop(old_id)
        if member.join is not None and not member.join.done():
            member.join.set_result(JoinResult(ErrorCode.FENCED_INSTANCE_ID, member_id=old_id))
        if member.sync is not None and not member.sync.done():
            member.sync.set_result((ErrorCode.FENCED_INSTANCE_ID, b""))
        member.join = member.sync = None
        member.member_id = f"{client_id or 'member'}-{uuid.uuid4()}"
        member.client_id, member.client_host = client_id, client_host
        member.session_timeout_ms, member.rebalance_timeout_ms = session_timeout_ms, rebalance_timeout_ms
        member.protocols = list(protocols)
        member.last_seen = now
        group.members[member.member_id] = member
        group.static_members[instance_id] = member.member_id
        previous_leader = group.leader
        if group.leader == old_id:
            group.leader = member.member_id
        log.info(
            "group %s: static member %s rejoined as %s (was %s)", group.group_id, instance_id,
            member.member_id, old_id,
        )  # fmt: skip
        if group.state is GroupState.STABLE and self._choose_protocol(group) == group.protocol_name:
            # Its previous assignment stands, so no rebalance. The answer names the previous leader
            # id, so that a returning leader does not compute (and send) an assignment nobody reads.
            return JoinResult(
                ErrorCode.NONE, group.generation, group.protocol_name or "", previous_leader or "",
                member.member_id,
            )  # fmt: skip
        return await self._park_join(group, member, now)

    def _compatible(self, group: Group, protocol_type: str, protocols: Sequence[tuple[str, bytes]]) -> bool:
        if group.protocol_type is not None and protocol_type != group.protocol_type:
            return False
        offered = {name for name, _ in protocols}
        return all(offered & {name for name, _ in m.protocols} for m in group.members.values())

    def _prepare_rebalance(self, group: Group, event: GroupEvent, now: float) -> None:
        was_empty = group.state is GroupState.EMPTY
        group.move(event)
        self._fail_parked_syncs(group, ErrorCode.REBALANCE_IN_PROGRESS)
        group.delay_until = now + (self._config.initial_rebalance_delay_ms / 1000 if was_empty else 0.0)
        timeout = max((m.rebalance_timeout_ms for m in group.members.values()), default=0) / 1000
        group.join_deadline = group.delay_until + timeout

    def _maybe_complete_join(self, group: Group, *, force: bool = False) -> None:
        """End the join phase once every member has rejoined (after the initial delay) or the deadline
        has passed; members that did not rejoin are dropped."""
        if group.state is not GroupState.PREPARING_REBALANCE:
            return
        now = self._now()
        everyone = not group.pending and all(m.join is not None for m in group.members.values())
        if not force and (now < group.delay_until or (not everyone and now < group.join_deadline)):
            return
        for member in [m for m in group.members.values() if m.join is None]:
            self._forget_member(group, member.member_id)
        group.pending.clear()
        group.generation += 1
        if not group.members:
            group.leader = group.protocol_name = None
            group.move(GroupEvent.ALL_MEMBERS_GONE)
            self._on_change(group)
            return
        group.protocol_name = self._choose_protocol(group)
        if group.leader not in group.members:
            group.leader = next(iter(group.members))
        group.move(GroupEvent.JOINS_COMPLETE)
        group.sync_deadline = now + max(m.rebalance_timeout_ms for m in group.members.values()) / 1000
        for member in group.members.values():
            member.assignment = b""
            member.last_seen = now
            if member.join is not None and not member.join.done():
                member.join.set_result(self._join_result(group, member))
            member.join = None
        self._on_change(group)

    def _choose_protocol(self, group: Group) -> str:
        """The protocol every member supports, by vote of each member's preference order (as Kafka)."""
        common = set.intersection(*({name for name, _ in m.protocols} for m in group.members.values()))
        votes: dict[str, int] = {}
        for member in group.members.values():
            first = next(name for name, _ in member.protocols if name in common)
            votes[first] = votes.get(first, 0) + 1
        return max(sorted(votes), key=lambda name: votes[name])

    def _join_result(self, group: Group, member: Member) -> JoinResult:
        protocol = group.protocol_name or ""
        members: list[tuple[str, str | None, bytes]] = []
        if member.member_id == group.leader:
            members = [(m.member_id, m.instance_id, m.metadata_for(protocol)) for m in group.members.values()]
        return JoinResult(
            ErrorCode.NONE, group.generation, protocol, group.leader or "", member.member_id, members
        )

    # --- SyncGroup -------------------------------------------------------------------------------

    async def sync(
        self,
        group_id: str,
        generation: int,
        member_id: str,
        assignments: Mapping[str, bytes],
        instance_id: str | None = None,
    ) -> tuple[ErrorCode, bytes]:
        group = self.groups.get(group_id)
        if group is None:
            return ErrorCode.UNKNOWN_MEMBER_ID, b""
        error = group.check_member(member_id, instance_id)
        if error:
            return error, b""
        if group.state is GroupState.PREPARING_REBALANCE:
            return ErrorCode.REBALANCE_IN_PROGRESS, b""
        if generation != group.generation:
            return ErrorCode.ILLEGAL_GENERATION, b""
        member = group.members[member_id]
        member.last_seen = self._now()
        if group.state is GroupState.STABLE:
            return ErrorCode.NONE, member.assignment
        if group.state is not GroupState.COMPLETING_REBALANCE:
            return ErrorCode.UNKNOWN_MEMBER_ID, b""
        future: asyncio.Future[tuple[ErrorCode, bytes]] = asyncio.get_running_loop().create_future()
        member.sync = future
        if member_id == group.leader:
            empty = EMPTY_CONSUMER_ASSIGNMENT if group.protocol_type == "consumer" else b""
            for m in group.members.values():
                m.assignment = assignments.get(m.member_id) or empty
            group.move(GroupEvent.LEADER_SYNC)
            for m in group.members.values():
                if m.sync is not None and not m.sync.done():
                    m.sync.set_result((ErrorCode.NONE, m.assignment))
                m.sync = None
            self._on_change(group)
        return await future

    def _fail_parked_syncs(self, group: Group, error: ErrorCode) -> None:
        for member in group.members.values():
            if member.sync is not None and not member.sync.done():
                member.sync.set_result((error, b""))
            member.sync = None

    # --- Heartbeat, LeaveGroup, commit checks ----------------------------------------------------

    def heartbeat(
        self, group_id: str, generation: int, member_id: str, instance_id: str | None = None
    ) -> ErrorCode:
        group = self.groups.get(group_id)
        if group is None:
            return ErrorCode.UNKNOWN_MEMBER_ID
        error = group.check_member(member_id, instance_id)
        if error:
            return error
        group.members[member_id].last_seen = self._now()
        if group.state is GroupState.PREPARING_REBALANCE:
            return ErrorCode.REBALANCE_IN_PROGRESS  # how members learn that they must rejoin
        if generation != group.generation:
            return ErrorCode.ILLEGAL_GENERATION
        return ErrorCode.NONE

    def leave(self, group_id: str, member_id: str, instance_id: str | None = None) -> ErrorCode:
        """LeaveGroup for one member. From v3 a member may be named by its instance id alone (an
        empty member id, as an operator's batch leave does); with both, they must match."""
        group = self.groups.get(group_id)
        if group is None:
            return ErrorCode.UNKNOWN_MEMBER_ID
        if instance_id is not None:
            current = group.static_members.get(instance_id)
            if current is None:
                return ErrorCode.UNKNOWN_MEMBER_ID
            if member_id and member_id != current:
                return ErrorCode.FENCED_INSTANCE_ID
            member_id = current
        if member_id not in group.members:
            return ErrorCode.UNKNOWN_MEMBER_ID
        self._remove(group, member_id)
        return ErrorCode.NONE

    def touch(self, group_id: str, member_id: str) -> None:
        """A commit from a member also keeps its session alive."""
        group = self.groups.get(group_id)
        if group is not None and member_id in group.members:
            group.members[member_id].last_seen = self._now()

    @staticmethod
    def _forget_member(group: Group, member_id: str) -> Member:
        member = group.members.pop(member_id)
        if member.instance_id is not None and group.static_members.get(member.instance_id) == member_id:
            del group.static_members[member.instance_id]
        return member

    def _remove(self, group: Group, member_id: str) -> None:
        member = self._forget_member(group, member_id)
        if member.join is not None and not member.join.done():
            member.join.set_result(JoinResult(ErrorCode.UNKNOWN_MEMBER_ID))
        if member.sync is not None and not member.sync.done():
            member.sync.set_result((ErrorCode.UNKNOWN_MEMBER_ID, b""))
        if group.state in (GroupState.STABLE, GroupState.COMPLETING_REBALANCE):
            self._prepare_rebalance(group, GroupEvent.MEMBER_GONE, self._now())
        if group.state is GroupState.PREPARING_REBALANCE:
            self._maybe_complete_join(group, force=not group.members)

    def has_members(self, group_id: str) -> bool:
        """Whether the group has members (or a rebalance under way): DeleteGroups refuses such a group."""
        group = self.groups.get(group_id)
        return group is not None and group.state not in (GroupState.EMPTY, GroupState.DEAD)

    def forget_deleted(self, group_id: str) -> None:
        """DeleteGroups removed the group's stored state: an Empty group goes Dead and is forgotten, so it
        leaves ListGroups (a later JoinGroup starts it afresh). Members would have been refused before."""
        group = self.groups.pop(group_id, None)
        if group is not None:
            group.pending.clear()  # member ids handed out by MEMBER_ID_REQUIRED join as strangers now
            group.move(GroupEvent.UNLOAD)

    def forget_empty(self, keep: Callable[[str], bool]) -> list[str]:
        """Forget the Empty groups for which ``keep(group_id)`` is false (their offsets expired or were
        deleted): Kafka drops such a group, and it leaves ListGroups. Returns the forgotten ids."""
        gone = [
            g.group_id for g in self.groups.values() if g.state is GroupState.EMPTY and not keep(g.group_id)
        ]
        for group_id in gone:
            del self.groups[group_id]
        return gone

    # --- timers ----------------------------------------------------------------------------------

    def tick(self) -> None:
        """Expire sessions and enforce the join and sync deadlines (call every few hundred ms)."""
        now = self._now()
        for group in list(self.groups.values()):
            for member_id, deadline in list(group.pending.items()):
                if now > deadline:
                    del group.pending[member_id]
            for member in list(group.members.values()):
                parked = member.join is not None  # a member waiting in JoinGroup is alive
                if not parked and now - member.last_seen > member.session_timeout_ms / 1000:
                    self._remove(group, member.member_id)
            if group.state is GroupState.PREPARING_REBALANCE:
                self._maybe_complete_join(group)
            elif group.state is GroupState.COMPLETING_REBALANCE and now >= group.sync_deadline:
                for member in [m for m in group.members.values() if m.sync is None]:
                    self._remove(group, member.member_id)  # never synced: the round starts over

    async def run(self) -> None:
        """Tick until cancelled."""
        while True:
            await asyncio.sleep(self._config.tick_ms / 1000)
            self.tick()
