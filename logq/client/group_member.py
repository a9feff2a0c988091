"""One consumer's membership of a group, with Kafka's classic group protocol: FindCoordinator, JoinGroup
(with the MEMBER_ID_REQUIRED round of KIP-394), SyncGroup (the leader runs the assignor), Heartbeat,
LeaveGroup, and the group's committed offsets (OffsetCommit, OffsetFetch).

The member talks to its coordinator over a connection of its own, as Kafka's consumer does: a JoinGroup
parks on the broker until the rebalance completes and a Fetch long-polls, and a broker answers the
requests of one connection one at a time, so sharing the data connection would hold heartbeats behind
fetches and fetches behind joins.

What the consumer sees:

- ``join(queues, owned)`` runs JoinGroup and SyncGroup until it has an assignment, handling on the way
  MEMBER_ID_REQUIRED (rejoin with the id given), UNKNOWN_MEMBER_ID (rejoin without an id),
  REBALANCE_IN_PROGRESS and ILLEGAL_GENERATION (rejoin), and NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE
  or a broken connection (find the coordinator again: failover). Configuration errors raise.
- Between joins, a heartbeat task keeps the session alive. REBALANCE_IN_PROGRESS sets ``rejoin_needed``;
  ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID and FENCED_INSTANCE_ID mean the member was dropped, so its
  partitions are ``lost`` (another member may own them already). When the application has not polled for
  ``max_poll_interval_ms``, the member leaves the group, as Kafka's does; the next poll rejoins.
- The consumer runs the rebalance callbacks itself, inside ``poll``, so the assignment only changes while
  the application is in ``poll`` (Kafka's rule).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from logq.client import assignors as asg
from logq.client.cluster import Cluster, QueuePartition
from logq.client.connection import BrokerConnection
from logq.client.consumer_protocol import (
    PROTOCOL_TYPE,
    Assignment,
    Subscription,
    decode_assignment,
    decode_subscription,
    encode_assignment,
    encode_subscription,
)
from logq.client.fetcher import send_detached
from logq.error_codes import ErrorCode
from logq.errors import (
    BrokerUnavailableError,
    ClientError,
    ClientTimeoutError,
    CommitFailedError,
    ConsumerProtocolError,
    LogqError,
    RebalanceInProgressError,
    error_for_code,
)
from logq.protocol import messages as m

log = logging.getLogger(__name__)

E = ErrorCode
# The coordinator moved or is not ready: find it again (docs/protocol.md, "Error codes and how clients
# react").
COORDINATOR_MOVED = frozenset({E.NOT_COORDINATOR, E.COORDINATOR_NOT_AVAILABLE})
COORDINATOR_RETRY = COORDINATOR_MOVED | {E.COORDINATOR_LOAD_IN_PROGRESS, E.REQUEST_TIMED_OUT}
# The member is no longer part of the generation it thinks it is in.
FENCED = frozenset({E.ILLEGAL_GENERATION, E.UNKNOWN_MEMBER_ID, E.FENCED_INSTANCE_ID})
# A join or sync answered with these is simply tried again (FENCED_INSTANCE_ID is fatal there, as in Kafka).
REJOIN = frozenset({E.ILLEGAL_GENERATION, E.UNKNOWN_MEMBER_ID, E.REBALANCE_IN_PROGRESS})
RETRY_BACKOFF_S = 0.1
METADATA_CHECK_S = 30.0  # how often a leader checks the subscribed queues' partition counts, at most


@dataclass(frozen=True, slots=True)
class JoinResult:
    generation: int
    member_id: str
    protocol: str
    leader: bool
    partitions: tuple[QueuePartition, ...]


class GroupMember:
    def __init__(
        self,
        cluster: Cluster,
        group_id: str,
        *,
        session_timeout_ms: int,
        heartbeat_interval_ms: int,
        rebalance_timeout_ms: int,
        max_poll_interval_ms: int,
        assignors: Sequence[str],
        group_instance_id: str | None = None,
        on_event: Callable[[], None] = lambda: None,
        metadata_max_age_s: float = METADATA_CHECK_S,
    ) -> None:
        self.group_id = group_id
        # Kafka's leader notices new partitions with its metadata refresh (metadata.max.age.ms); a
        # shorter setting here makes a grown queue's partitions get assigned sooner
        self.metadata_check_s = min(METADATA_CHECK_S, metadata_max_age_s)
        self.assignors = tuple(assignors)
        # Kafka's rule: the rebalance protocol is the one every configured assignor supports, so a list
        # mixing cooperative-sticky with range stays eager (the first step of a rolling upgrade).
        self.cooperative = all(name in asg.COOPERATIVE_ASSIGNORS for name in assignors)
        self.instance_id = group_instance_id
        self.session_timeout_ms = session_timeout_ms
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.rebalance_timeout_ms = rebalance_timeout_ms
        self.max_poll_interval_ms = max_poll_interval_ms
        self.member_id = ""
        self.generation = -1
        self.protocol: str | None = None
        self.is_leader = False
        self.rejoin_needed = False  # the coordinator asked for a rebalance (or the subscription changed)
        self.lost = False  # dropped from the group: the partitions may belong to someone else now
        self.joining = False
        self._not_joining = asyncio.Event()
        self._not_joining.set()
        self.last_poll = time.monotonic()
        self._cluster = cluster
        self._on_event = on_event
        self._conn: BrokerConnection | None = None
        self._conn_lock = asyncio.Lock()
        self._heartbeats: asyncio.Task[None] | None = None
        self._assigned_counts: dict[str, int] = {}  # the partition counts the leader assigned from
        self._background: set[asyncio.Task[Any]] = set()

    # --- the coordinator connection ----------------------------------------------------------------

    async def _connection(self) -> BrokerConnection:
        conn = self._conn
        if conn is not None and not conn.closed:
            return conn
        async with self._conn_lock:
            if self._conn is not None and not self._conn.closed:
                return self._conn
            shared = await self._cluster.coordinator(self.group_id)
            host, _, port = shared.address.rpartition(":")
            self._conn = await BrokerConnection.open(
                host,
                int(port),
                client_id=self._cluster.client_id,
                timeout_s=min(self._cluster.request_timeout_s, 10.0),
                security=self._cluster.security,
            )
            return self._conn

    def coordinator_lost(self) -> None:
        """Forget the coordinator (and close our connection to it): the next request looks it up again."""
        self._cluster.forget_coordinator(self.group_id)
        conn, self._conn = self._conn, None
        if conn is not None:
            self._spawn(conn.close())

    async def _send(self, body: Any, *, timeout_s: float | None = None) -> Any:
        conn = await self._connection()
        try:
            return await send_detached(self._cluster, conn, body, timeout_s=timeout_s)
        except (BrokerUnavailableError, ClientTimeoutError):
            self.coordinator_lost()
            raise

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # --- joining -----------------------------------------------------------------------------------

    @property
    def active(self) -> bool:
        """In a generation and not rebalancing: commits carry this generation."""
        return self.generation >= 0 and not self.joining

    def note_poll(self) -> None:
        self.last_poll = time.monotonic()

    def reset_generation(self, *, forget_member_id: bool) -> None:
        self.generation = -1
        self.is_leader = False
        if forget_member_id:
            self.member_id = ""

    async def join(self, queues: Sequence[str], owned: Iterable[QueuePartition]) -> JoinResult:
        """JoinGroup + SyncGroup until this member has an assignment (heartbeats must be stopped)."""
        self.rejoin_needed = False
        self.joining = True
        self._not_joining.clear()
        owned = tuple(sorted(owned))
        try:
            while True:
                result = await self._join_once(tuple(sorted(set(queues))), owned)
                if result is not None:
                    self.lost = False
                    return result
        finally:
            self.joining = False
            self._not_joining.set()

    async def _join_once(
        self, queues: tuple[str, ...], owned: tuple[QueuePartition, ...]
    ) -> JoinResult | None:
        protocols = [
            m.JoinGroupRequestProtocol(
                name=name,
                metadata=encode_subscription(
                    Subscription(queues, asg.user_data_for(name, self.generation), owned)
                ),
            )
            for name in self.assignors
        ]
        request = m.JoinGroupRequest(
            group_id=self.group_id,
            session_timeout_ms=self.session_timeout_ms,
            rebalance_timeout_ms=self.rebalance_timeout_ms,
            member_id=self.member_id,
            group_instance_id=self.instance_id,
            protocol_type=PROTOCOL_TYPE,
            protocols=protocols,
        )
        # The broker holds a JoinGroup (and a SyncGroup) until the whole group has rejoined.
        wait_s = self.rebalance_timeout_ms / 1000 + 5.0
        try:
            answer: m.JoinGroupResponse = await self._send(request, timeout_s=wait_s)
        except LogqError as exc:
            await self._retry_after(exc, "JoinGroup")
            return None
        code = answer.error_code
        if code == E.MEMBER_ID_REQUIRED:  # KIP-394: rejoin at once with the id the coordinator gave
            self.member_id = answer.member_id
            return None
        if code != E.NONE:
            await self._join_error(code, "JoinGroup")
            return None
        self.generation = answer.generation_id
        self.member_id = answer.member_id
        self.protocol = answer.protocol_name
        self.is_leader = answer.leader == answer.member_id
        assignments: list[m.SyncGroupRequestAssignment] = []
        if self.is_leader:
            try:
                assignments = await self._assign(answer.protocol_name, answer.members)
            except LogqError as exc:  # the metadata the assignor needs could not be read
                await self._retry_after(exc, "the leader's assignment")
                return None
        sync = m.SyncGroupRequest(
            group_id=self.group_id,
            generation_id=self.generation,
            member_id=self.member_id,
            group_instance_id=self.instance_id,
            assignments=assignments,
        )
        try:
            synced: m.SyncGroupResponse = await self._send(sync, timeout_s=wait_s)
        except LogqError as exc:
            await self._retry_after(exc, "SyncGroup")
            return None
        if synced.error_code != E.NONE:
            await self._join_error(synced.error_code, "SyncGroup")
            return None
        assignment = decode_assignment(bytes(synced.assignment))
        log.info(
            "group %s: generation %d, member %s%s, protocol %s, assigned %s",
            self.group_id, self.generation, self.member_id, " (leader)" if self.is_leader else "",
            self.protocol, [f"{q}/{p}" for q, p in assignment.partitions],
        )  # fmt: skip
        return JoinResult(
            self.generation, self.member_id, self.protocol, self.is_leader, assignment.partitions
        )

    async def _retry_after(self, exc: LogqError, what: str) -> None:
        if not exc.retriable and not isinstance(exc, BrokerUnavailableError | ClientTimeoutError):
            raise exc
        log.info("group %s: %s failed (%s); retrying", self.group_id, what, exc)
        self.generation = -1
        if exc.code in COORDINATOR_MOVED:
            self.coordinator_lost()
        await asyncio.sleep(RETRY_BACKOFF_S)

    async def _join_error(self, code: int, what: str) -> None:
        log.info("group %s: %s answered %s", self.group_id, what, _name(code))
        self.generation = -1
        if code == E.UNKNOWN_MEMBER_ID:
            self.member_id = ""
        elif code in COORDINATOR_MOVED:
            self.coordinator_lost()
        elif code not in COORDINATOR_RETRY and code not in REJOIN:
            raise error_for_code(code, f"group {self.group_id!r}: {what} refused: {_name(code)}")
        if code != E.REBALANCE_IN_PROGRESS:
            await asyncio.sleep(RETRY_BACKOFF_S)

    async def _assign(
        self, protocol: str, members: Sequence[m.JoinGroupResponseMember]
    ) -> list[m.SyncGroupRequestAssignment]:
        assign = asg.ASSIGNORS.get(protocol)
        if assign is None:
            raise ClientError(
                f"group {self.group_id!r} chose assignor {protocol!r}, which logq does not have"
            )
        group: list[asg.GroupMember] = []
        for member in members:
            try:
                subscription = decode_subscription(bytes(member.metadata))
            except ConsumerProtocolError as exc:
                log.warning(
                    "group %s: member %s sent bad metadata (%s)", self.group_id, member.member_id, exc
                )
                subscription = Subscription(())
            group.append(asg.GroupMember(member.member_id, subscription, member.group_instance_id))
        self._assigned_counts = await self._partition_counts(
            {q for g in group for q in g.subscription.queues}
        )
        result = assign(self._assigned_counts, group)
        version = min([1, *(g.subscription.version for g in group)])
        return [
            m.SyncGroupRequestAssignment(
                member_id=g.member_id,
                assignment=encode_assignment(Assignment(tuple(result.get(g.member_id, ())), None, version)),
            )
            for g in group
        ]

    async def _partition_counts(self, queues: Iterable[str]) -> dict[str, int]:
        names = sorted(queues)
        if not names:
            return {}
        await self._cluster.refresh(names)
        return {q: info.partition_count for q in names if (info := self._cluster.queues.get(q)) is not None}

    # --- heartbeats --------------------------------------------------------------------------------

    def start_heartbeats(self) -> None:
        if self._heartbeats is None or self._heartbeats.done():
            self._heartbeats = asyncio.create_task(
                self._heartbeat_loop(), name=f"logq-heartbeat-{self.group_id}"
            )

    async def stop_heartbeats(self) -> None:
        task, self._heartbeats = self._heartbeats, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _heartbeat_loop(self) -> None:
        interval = self.heartbeat_interval_ms / 1000
        next_metadata_check = time.monotonic() + self.metadata_check_s
        while True:
            await asyncio.sleep(interval)
            if time.monotonic() - self.last_poll > self.max_poll_interval_ms / 1000:
                log.warning(
                    "group %s: no poll() for more than max_poll_interval_ms (%d ms): leaving the group",
                    self.group_id, self.max_poll_interval_ms,
                )  # fmt: skip
                await self._send_leave()
                self.lost = True
                self._on_event()
                return
            request = m.HeartbeatRequest(
                group_id=self.group_id,
                generation_id=self.generation,
                member_id=self.member_id,
                group_instance_id=self.instance_id,
            )
            try:
                answer: m.HeartbeatResponse = await self._send(
                    request, timeout_s=self.session_timeout_ms / 1000
                )
            except LogqError as exc:
                log.info("group %s: heartbeat failed (%s)", self.group_id, exc)
                if exc.code in COORDINATOR_MOVED:
                    self.coordinator_lost()
                continue
            code = answer.error_code
            if code == E.REBALANCE_IN_PROGRESS:
                if not self.rejoin_needed:
                    log.info("group %s: the group is rebalancing", self.group_id)
                    self.rejoin_needed = True
                    self._on_event()
            elif code in FENCED:
                log.warning("group %s: heartbeat answered %s: partitions lost", self.group_id, _name(code))
                self.reset_generation(forget_member_id=code != E.ILLEGAL_GENERATION)
                self.lost = self.rejoin_needed = True
                self._on_event()
                return
            elif code in COORDINATOR_MOVED:
                self.coordinator_lost()
            elif code != E.NONE:
                log.warning("group %s: heartbeat answered %s", self.group_id, _name(code))
            if self.is_leader and time.monotonic() >= next_metadata_check:
                next_metadata_check = time.monotonic() + self.metadata_check_s
                await self._check_partition_counts()

    async def _check_partition_counts(self) -> None:
        """The leader rebalances when a subscribed queue gains partitions (or appears, or goes)."""
        try:
            counts = await self._partition_counts(self._assigned_counts)
        except LogqError:
            return
        if counts != self._assigned_counts:
            log.info("group %s: partition counts changed: rebalancing", self.group_id)
            self.rejoin_needed = True
            self._on_event()

    # --- leaving -----------------------------------------------------------------------------------

    async def leave(self) -> None:
        """Stop heartbeating and leave the group (static members only stop, as in Kafka)."""
        await self.stop_heartbeats()
        await self._send_leave()

    async def _send_leave(self) -> None:
        if self.member_id and self.instance_id is None:
            request = m.LeaveGroupRequest(
                group_id=self.group_id,
                member_id=self.member_id,
                members=[m.LeaveGroupMember(member_id=self.member_id, group_instance_id=None)],
            )
            try:
                await self._send(request, timeout_s=5.0)
            except LogqError as exc:
                log.info("group %s: LeaveGroup failed (%s)", self.group_id, exc)
        self.reset_generation(forget_member_id=self.instance_id is None)

    async def close(self) -> None:
        await self.stop_heartbeats()
        conn, self._conn = self._conn, None
        tasks = list(self._background)
        if conn is not None:
            tasks.append(asyncio.ensure_future(conn.close()))
        await asyncio.gather(*tasks, return_exceptions=True)

    def abandon_connection(self) -> None:
        """Drop the coordinator connection without forgetting the coordinator (a JoinGroup parked on it
        would hold back every request behind it)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            self._spawn(conn.close())

    # --- committed offsets -------------------------------------------------------------------------

    async def commit(self, offsets: Mapping[QueuePartition, int], *, simple: bool, timeout_s: float) -> None:
        """OffsetCommit. ``simple``: a consumer with assign() commits outside any generation.

        While a cooperative member rejoins (it still owns its partitions, and nobody gets them before it
        revokes them) the commit waits for the new generation; an eager member has given its partitions
        up, so its commit raises RebalanceInProgressError, as Kafka's does. CommitFailedError: this member
        is not in the group's generation any more; ClientTimeoutError: the coordinator stayed away."""
        pending = dict(offsets)
        deadline = time.monotonic() + timeout_s
        while pending:
            if simple:
                generation, member_id, instance_id = -1, "", None
            elif self.joining:
                if self.cooperative:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._not_joining.wait(), max(deadline - time.monotonic(), 0))
                    if self._not_joining.is_set():
                        continue
                raise RebalanceInProgressError(f"group {self.group_id!r} is rebalancing: poll() and retry")
            elif self.generation < 0:
                raise CommitFailedError(
                    f"this consumer is not in an active generation of group {self.group_id!r}"
                )
            else:
                generation, member_id, instance_id = self.generation, self.member_id, self.instance_id
            by_queue: dict[str, list[m.OffsetCommitRequestPartition]] = {}
            for (queue, partition), offset in sorted(pending.items()):
                by_queue.setdefault(queue, []).append(
                    m.OffsetCommitRequestPartition(
                        partition_index=partition, committed_offset=offset, committed_metadata=""
                    )
                )
            request = m.OffsetCommitRequest(
                group_id=self.group_id,
                generation_id=generation,
                member_id=member_id,
                group_instance_id=instance_id,
                topics=[m.OffsetCommitRequestTopic(name=q, partitions=ps) for q, ps in by_queue.items()],
            )
            try:
                answer: m.OffsetCommitResponse = await self._send(request)
            except LogqError as exc:
                await self._retry_or_raise(exc, deadline, "OffsetCommit")
                continue
            failed = {
                QueuePartition(t.name, p.partition_index): p.error_code
                for t in answer.topics
                for p in t.partitions
                if p.error_code != E.NONE
            }
            fatal = {tp: code for tp, code in failed.items() if code not in COORDINATOR_RETRY}
            if fatal:
                tp, code = next(iter(sorted(fatal.items())))
                raise self._commit_error(tp, code, simple=simple)
            pending = {tp: pending[tp] for tp in failed if tp in pending}
            if pending:
                code = next(iter(failed.values()))
                await self._retry_or_raise(error_for_code(code), deadline, "OffsetCommit")

    def _commit_error(self, tp: QueuePartition, code: int, *, simple: bool) -> LogqError:
        where = f"commit to group {self.group_id!r} ({tp.queue}/{tp.partition})"
        if code == E.REBALANCE_IN_PROGRESS:
            self.rejoin_needed = True
            self._on_event()
            return RebalanceInProgressError(f"{where}: the group is rebalancing; poll() and commit again")
        if code in FENCED:
            if simple:
                return CommitFailedError(
                    f"{where}: refused ({_name(code)}); a consumer without subscribe() can only commit to a "
                    "group that has no active members"
                )
            self.reset_generation(forget_member_id=code == E.UNKNOWN_MEMBER_ID)
            self.lost = self.rejoin_needed = True
            self._on_event()
            return CommitFailedError(f"{where}: refused ({_name(code)}): this member left the generation")
        return error_for_code(code, f"{where}: {_name(code)}")

    async def _retry_or_raise(self, exc: LogqError, deadline: float, what: str) -> None:
        retriable = exc.retriable or isinstance(exc, BrokerUnavailableError | ClientTimeoutError)
        if not retriable:
            raise exc
        if exc.code in COORDINATOR_MOVED:
            self.coordinator_lost()
        if time.monotonic() + RETRY_BACKOFF_S > deadline:
            raise ClientTimeoutError(f"group {self.group_id!r}: {what} did not succeed in time: {exc}")
        await asyncio.sleep(RETRY_BACKOFF_S)

    async def fetch_committed(
        self, partitions: Iterable[QueuePartition], *, timeout_s: float
    ) -> dict[QueuePartition, int | None]:
        """OffsetFetch: the committed offset (the next record to read) of each partition, None if none."""
        wanted = sorted(set(partitions))
        if not wanted:
            return {}
        by_queue: dict[str, list[int]] = {}
        for queue, partition in wanted:
            by_queue.setdefault(queue, []).append(partition)
        request = m.OffsetFetchRequest(
            group_id=self.group_id,
            topics=[m.OffsetFetchRequestTopic(name=q, partition_indexes=ps) for q, ps in by_queue.items()],
        )
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                answer: m.OffsetFetchResponse = await self._send(request)
            except LogqError as exc:
                await self._retry_or_raise(exc, deadline, "OffsetFetch")
                continue
            codes = [answer.error_code] + [p.error_code for t in answer.topics for p in t.partitions]
            code = next((c for c in codes if c != E.NONE), E.NONE)
            if code == E.NONE:
                break
            error = error_for_code(code, f"group {self.group_id!r}: OffsetFetch: {_name(code)}")
            await self._retry_or_raise(error, deadline, "OffsetFetch")
        found = {
            QueuePartition(t.name, p.partition_index): p.committed_offset
            for t in answer.topics
            for p in t.partitions
        }
        return {tp: offset if (offset := found.get(tp, -1)) >= 0 else None for tp in wanted}


def _name(code: int) -> str:
    try:
        return ErrorCode(code).name
    except ValueError:
        return f"error {code}"
