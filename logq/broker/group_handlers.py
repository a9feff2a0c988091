"""Handlers of the consumer-group APIs: FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
OffsetCommit, OffsetFetch, DescribeGroups and ListGroups.

Membership lives in ``logq.groups.membership`` and committed offsets in ``logq.groups.offsets``; these
functions translate requests and answers. A standalone broker coordinates every group (it leads every
``__consumer_offsets`` partition). In cluster mode a group's coordinator is the leader of its offsets
partition: FindCoordinator names that broker; any other broker answers NOT_COORDINATOR, and the leader
answers COORDINATOR_LOAD_IN_PROGRESS until it has loaded the partition. An OffsetCommit is answered only
after its batch is fsynced.

Groups are listed and described from two sources: the live ones in membership, and the idle ones known
only from committed offsets (a group whose members all left before a restart, or one that only ever had
"simple" commits): those are ``Empty``, as in Kafka, never ``Dead`` while they have offsets.

With an authorizer, a group's requests need READ on it (DESCRIBE to find, describe or fetch offsets), and
a commit READ on each queue too; refusals come before any other check (docs/security.md).
"""

from __future__ import annotations

import logging

from logq.broker.authorization import RequestAuthorizer
from logq.broker.handlers import Handler
from logq.broker.replica_manager import ReplicaManager
from logq.broker.session import current_session
from logq.coordinator import Coordinator, QueueMetadata
from logq.error_codes import ErrorCode
from logq.errors import LogqError, QueueExistsError, ReplicationError
from logq.groups.membership import GroupMembership
from logq.groups.offsets import OFFSETS_QUEUE, OffsetAndMetadata, OffsetStore
from logq.groups.state import GroupState, commit_answer
from logq.protocol import RequestHeader
from logq.protocol import messages as m
from logq.security.acl import AclOperation, ResourceType

GROUP, TOPIC = ResourceType.GROUP, ResourceType.TOPIC

log = logging.getLogger(__name__)

GROUP_KEY = 0  # FindCoordinator key_type: a consumer group
TRANSACTION_KEY = 1  # a transactional id: logq has no transactions
OFFSET_COMMIT_TIMEOUT_MS = 5000  # Kafka's offsets.commit.timeout.ms: waiting for the ISR


class GroupHandlers:
    def __init__(
        self,
        coordinator: Coordinator,
        membership: GroupMembership,
        offsets: OffsetStore,
        replicas: ReplicaManager,
        *,
        offsets_replication_factor: int = 1,
        auth: RequestAuthorizer | None = None,
    ) -> None:
        self._auth = auth or RequestAuthorizer()
        self._offsets_replication_factor = offsets_replication_factor
        self._coordinator = coordinator
        self._membership = membership
        self._offsets = offsets
        self._replicas = replicas
        self.by_type: dict[type, Handler] = {
            m.OffsetCommitRequest: self.offset_commit,
            m.OffsetFetchRequest: self.offset_fetch,
            m.FindCoordinatorRequest: self.find_coordinator,
            m.JoinGroupRequest: self.join_group,
            m.SyncGroupRequest: self.sync_group,
            m.HeartbeatRequest: self.heartbeat,
            m.LeaveGroupRequest: self.leave_group,
            m.DescribeGroupsRequest: self.describe_groups,
            m.ListGroupsRequest: self.list_groups,
        }

    async def find_coordinator(
        self, header: RequestHeader, req: m.FindCoordinatorRequest
    ) -> m.FindCoordinatorResponse:
        if req.key_type == TRANSACTION_KEY:
            # Not retriable, so a transactional producer fails at once instead of retrying until its
            # timeout (librdkafka raises this one as a fatal error, with the message).
            return m.FindCoordinatorResponse(
                error_code=ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
                error_message="transactions are not supported by logq",
                node_id=-1,
                host="",
                port=-1,
            )
        if req.key_type != GROUP_KEY:
            return m.FindCoordinatorResponse(
                error_code=ErrorCode.INVALID_REQUEST,
                error_message=f"unknown coordinator key type {req.key_type}",
                node_id=-1,
                host="",
                port=-1,
            )
        if not self._auth.allows(AclOperation.DESCRIBE, GROUP, req.key):
            return m.FindCoordinatorResponse(
                error_code=ErrorCode.GROUP_AUTHORIZATION_FAILED,
                error_message=self._auth.refusal(AclOperation.DESCRIBE, GROUP, req.key),
                node_id=-1,
                host="",
                port=-1,
            )
        listener = current_session().listener  # answer with the address of the listener asked on
        offsets = self._coordinator.queues().get(OFFSETS_QUEUE)
        if offsets is None:
            offsets = await self._create_offsets_queue()
        partition = self._offsets.partition_of(req.key)
        leader = -1
        if offsets is not None and partition < len(offsets.partitions):
            leader = offsets.partitions[partition].leader
        found = next((b for b in self._coordinator.brokers() if b.broker_id == leader), None)
        address = found.address_for(listener) if found is not None else None
        if found is None or address is None:
            return m.FindCoordinatorResponse(
                error_code=ErrorCode.COORDINATOR_NOT_AVAILABLE,
                error_message=f"{OFFSETS_QUEUE} partition {partition} has no live leader",
                node_id=-1,
                host="",
                port=-1,
            )
        return m.FindCoordinatorResponse(
            error_code=ErrorCode.NONE, node_id=found.broker_id, host=address[0], port=address[1]
        )

    async def _create_offsets_queue(self) -> QueueMetadata | None:
        """Cluster mode: the first FindCoordinator creates __consumer_offsets, placed over the brokers
        live then, as Kafka does, with offsets.topic.replication.factor replicas (at most that many)."""
        replication = max(1, min(self._offsets_replication_factor, len(self._coordinator.brokers())))
        try:
            await self._coordinator.create_queue(OFFSETS_QUEUE, self._offsets.partitions, replication, {})
            log.info(
                "created %s with %d partitions, replication factor %d",
                OFFSETS_QUEUE, self._offsets.partitions, replication,
            )  # fmt: skip
        except QueueExistsError:
            pass  # another broker created it at the same time
        except LogqError as exc:
            log.warning("cannot create %s yet: %s", OFFSETS_QUEUE, exc)
        return self._coordinator.queues().get(OFFSETS_QUEUE)

    def _may_read(self, group_id: str) -> bool:
        return self._auth.allows(AclOperation.READ, GROUP, group_id)

    def _not_here(self, group_id: str) -> ErrorCode:
        return not_coordinated_here(self._offsets, self._replicas, group_id)

    async def join_group(self, header: RequestHeader, req: m.JoinGroupRequest) -> m.JoinGroupResponse:
        if not self._may_read(req.group_id):
            return m.JoinGroupResponse(
                error_code=ErrorCode.GROUP_AUTHORIZATION_FAILED, member_id=req.member_id
            )
        error = self._not_here(req.group_id)
        if error:
            return m.JoinGroupResponse(error_code=error, member_id=req.member_id)
        result = await self._membership.join(
            req.group_id,
            req.member_id,
            instance_id=req.group_instance_id,
            client_id=header.client_id or "",
            client_host=current_session().kafka_host,
            session_timeout_ms=req.session_timeout_ms,
            # v0 has no rebalance timeout: Kafka uses the session timeout
            rebalance_timeout_ms=req.rebalance_timeout_ms
            if req.rebalance_timeout_ms >= 0
            else req.session_timeout_ms,
            protocol_type=req.protocol_type,
            protocols=[(p.name, bytes(p.metadata)) for p in req.protocols],
            require_known_member_id=header.api_version >= 4,
        )
        return m.JoinGroupResponse(
            error_code=result.error,
            generation_id=result.generation,
            protocol_name=result.protocol_name,
            leader=result.leader,
            member_id=result.member_id,
            members=[
                m.JoinGroupResponseMember(member_id=mid, group_instance_id=iid, metadata=meta)
                for mid, iid, meta in result.members
            ],
        )

    async def sync_group(self, header: RequestHeader, req: m.SyncGroupRequest) -> m.SyncGroupResponse:
        if not self._may_read(req.group_id):
            return m.SyncGroupResponse(error_code=ErrorCode.GROUP_AUTHORIZATION_FAILED, assignment=b"")
        error = self._not_here(req.group_id)
        if error:
            return m.SyncGroupResponse(error_code=error, assignment=b"")
        assignments = {a.member_id: bytes(a.assignment) for a in req.assignments}
        error, assignment = await self._membership.sync(
            req.group_id, req.generation_id, req.member_id, assignments, req.group_instance_id
        )
        return m.SyncGroupResponse(error_code=error, assignment=assignment)

    async def heartbeat(self, header: RequestHeader, req: m.HeartbeatRequest) -> m.HeartbeatResponse:
        if not self._may_read(req.group_id):
            return m.HeartbeatResponse(error_code=ErrorCode.GROUP_AUTHORIZATION_FAILED)
        error = self._not_here(req.group_id)
        if error:
            return m.HeartbeatResponse(error_code=error)
        return m.HeartbeatResponse(
            error_code=self._membership.heartbeat(
                req.group_id, req.generation_id, req.member_id, req.group_instance_id
            )
        )

    async def leave_group(self, header: RequestHeader, req: m.LeaveGroupRequest) -> m.LeaveGroupResponse:
        if not self._may_read(req.group_id):
            return m.LeaveGroupResponse(error_code=ErrorCode.GROUP_AUTHORIZATION_FAILED)
        error = self._not_here(req.group_id)
        if error:
            return m.LeaveGroupResponse(error_code=error)
        if header.api_version < 3:
            return m.LeaveGroupResponse(error_code=self._membership.leave(req.group_id, req.member_id))
        members = [
            m.LeaveGroupMemberResponse(
                member_id=x.member_id,
                group_instance_id=x.group_instance_id,
                error_code=self._membership.leave(req.group_id, x.member_id, x.group_instance_id),
            )
            for x in req.members
        ]
        return m.LeaveGroupResponse(error_code=ErrorCode.NONE, members=members)

    async def describe_groups(
        self, header: RequestHeader, req: m.DescribeGroupsRequest
    ) -> m.DescribeGroupsResponse:
        described = []
        for group_id in req.groups:
            if not self._auth.allows(AclOperation.DESCRIBE, GROUP, group_id):
                described.append(
                    m.DescribedGroup(
                        error_code=ErrorCode.GROUP_AUTHORIZATION_FAILED, group_id=group_id, group_state=""
                    )
                )
                continue
            error = self._not_here(group_id)
            if error:
                described.append(m.DescribedGroup(error_code=error, group_id=group_id, group_state=""))
                continue
            group = self._membership.groups.get(group_id)
            if group is None or group.state is GroupState.DEAD:
                idle = self._idle_protocol_type(group_id)
                state = GroupState.DEAD if idle is None else GroupState.EMPTY
                described.append(
                    m.DescribedGroup(
                        error_code=ErrorCode.NONE,
                        group_id=group_id,
                        group_state=state.value,
                        protocol_type=idle or "",
                    )
                )
                continue
            protocol = group.protocol_name or ""
            members = [
                m.DescribedGroupMember(
                    member_id=x.member_id,
                    group_instance_id=x.instance_id,
                    client_id=x.client_id,
                    client_host=x.client_host,
                    member_metadata=x.metadata_for(protocol),
                    member_assignment=x.assignment,
                )
                for x in group.members.values()
            ]
            described.append(
                m.DescribedGroup(
                    error_code=ErrorCode.NONE,
                    group_id=group_id,
                    group_state=group.state.value,
                    protocol_type=group.protocol_type or self._idle_protocol_type(group_id) or "",
                    protocol_data=protocol,
                    members=members,
                )
            )
        if header.api_version >= 3 and req.include_authorized_operations:  # KIP-430
            for g in described:
                if g.error_code == ErrorCode.NONE:
                    g.authorized_operations = self._auth.operations(GROUP, g.group_id)
        return m.DescribeGroupsResponse(groups=described)

    def _idle_protocol_type(self, group_id: str) -> str | None:
        """The stored protocol type of a group known from its committed offsets ("" for a group of
        simple commits only), or None when the offsets store has nothing of it."""
        try:
            info = self._offsets.group_info(group_id)
            if info is not None:
                return info.protocol_type
            return "" if self._offsets.fetch(group_id) else None
        except LogqError:  # not coordinated here
            return None

    async def list_groups(self, header: RequestHeader, req: m.ListGroupsRequest) -> m.ListGroupsResponse:
        """The groups this broker coordinates: live ones, and idle ones that have committed offsets."""
        listed: dict[str, str] = {}
        for partition in range(self._offsets.partitions):
            if not self._offsets.loaded(partition):
                continue
            for group_id in self._offsets.groups(partition):
                info = self._offsets.group_info(group_id)
                listed[group_id] = info.protocol_type if info is not None else ""
        for g in list(self._membership.groups.values()):
            if g.state is not GroupState.DEAD and not self._not_here(g.group_id):
                listed[g.group_id] = g.protocol_type or listed.get(g.group_id, "")
        if not self._auth.allows_cluster(AclOperation.DESCRIBE):  # else only the groups it may DESCRIBE
            listed = {g: k for g, k in listed.items() if self._auth.allows(AclOperation.DESCRIBE, GROUP, g)}
        groups = [m.ListedGroup(group_id=name, protocol_type=kind) for name, kind in sorted(listed.items())]
        return m.ListGroupsResponse(error_code=ErrorCode.NONE, groups=groups)

    # --- committed offsets -----------------------------------------------------------------------

    async def offset_commit(
        self, header: RequestHeader, req: m.OffsetCommitRequest
    ) -> m.OffsetCommitResponse:
        group = self._membership.groups.get(req.group_id)
        state = group.state if group is not None else GroupState.EMPTY
        member_error = (
            group.check_member(req.member_id, req.group_instance_id)
            if group is not None
            else ErrorCode.UNKNOWN_MEMBER_ID
        )
        known = member_error == ErrorCode.NONE
        error = commit_answer(
            state,
            generation=req.generation_id,
            identified=req.generation_id >= 0 or bool(req.member_id) or req.group_instance_id is not None,
            member_error=member_error,
            generation_matches=group is not None and req.generation_id == group.generation,
        )
        error = self._not_here(req.group_id) or error if req.group_id else ErrorCode.INVALID_GROUP_ID
        group_refused = not self._may_read(req.group_id)
        codes: dict[tuple[str, int], int] = {}
        wanted: dict[tuple[str, int], OffsetAndMetadata] = {}
        queues = self._coordinator.queues()
        for topic in req.topics:
            meta = queues.get(topic.name)
            topic_refused = not group_refused and not self._auth.allows(AclOperation.READ, TOPIC, topic.name)
            for p in topic.partitions:
                key = (topic.name, p.partition_index)
                if group_refused:
                    codes[key] = ErrorCode.GROUP_AUTHORIZATION_FAILED
                elif topic_refused:
                    codes[key] = ErrorCode.TOPIC_AUTHORIZATION_FAILED
                elif error:
                    codes[key] = error
                elif meta is None or not 0 <= p.partition_index < len(meta.partitions):
                    codes[key] = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                else:
                    codes[key] = ErrorCode.NONE
                    wanted[key] = OffsetAndMetadata(
                        p.committed_offset, p.committed_leader_epoch, p.committed_metadata or ""
                    )
        if wanted:
            if known:
                self._membership.touch(req.group_id, req.member_id)
            try:
                await self._commit(req.group_id, wanted)
            except LogqError as exc:
                for key in wanted:
                    codes[key] = exc.code
        return m.OffsetCommitResponse(
            topics=[
                m.OffsetCommitResponseTopic(
                    name=topic.name,
                    partitions=[
                        m.OffsetCommitResponsePartition(
                            partition_index=p.partition_index,
                            error_code=codes[(topic.name, p.partition_index)],
                        )
                        for p in topic.partitions
                    ],
                )
                for topic in req.topics
            ]
        )

    async def _commit(self, group_id: str, offsets: dict[tuple[str, int], OffsetAndMetadata]) -> None:
        """A commit is written through the leader of its ``__consumer_offsets`` partition and answered once
        that partition acknowledges it as an acks=all produce (``Partition.wait_acknowledged``). Errors
        are mapped as Kafka maps a failed offsets write: the leadership moved, NOT_COORDINATOR; anything
        else of the replication, COORDINATOR_NOT_AVAILABLE."""
        try:
            partition = self._replicas.leader(OFFSETS_QUEUE, self._offsets.partition_of(group_id))
            info = self._offsets.commit(group_id, offsets)
        except ReplicationError as exc:
            raise coordinator_error(exc) from None
        if info is None:
            return
        acknowledged = False
        try:  # OffsetFetch shows the commit only once it is acknowledged
            await partition.wait_acknowledged(info, acks=-1, timeout_ms=OFFSET_COMMIT_TIMEOUT_MS)
            acknowledged = True
        except ReplicationError as exc:
            raise coordinator_error(exc) from None
        finally:
            self._offsets.settle(group_id, offsets, info, acknowledged=acknowledged)

    async def offset_fetch(self, header: RequestHeader, req: m.OffsetFetchRequest) -> m.OffsetFetchResponse:
        wanted = (
            None if req.topics is None else [(t.name, p) for t in req.topics for p in t.partition_indexes]
        )
        described = self._auth.allows(AclOperation.DESCRIBE, GROUP, req.group_id)
        error = self._not_here(req.group_id) if described else ErrorCode.GROUP_AUTHORIZATION_FAILED
        if error:  # per partition too: v0-1 have no top-level error
            failed: dict[str, list[m.OffsetFetchResponsePartition]] = {}
            for name, index in wanted or []:
                failed.setdefault(name, []).append(
                    m.OffsetFetchResponsePartition(
                        partition_index=index, committed_offset=-1, metadata="", error_code=error
                    )
                )
            return m.OffsetFetchResponse(
                topics=[m.OffsetFetchResponseTopic(name=n, partitions=ps) for n, ps in failed.items()],
                error_code=error,
            )
        try:
            found = self._offsets.fetch(req.group_id, wanted)
        except LogqError as exc:
            return m.OffsetFetchResponse(error_code=exc.code)
        by_topic: dict[str, list[m.OffsetFetchResponsePartition]] = {}
        visible = {name: self._auth.allows(AclOperation.DESCRIBE, TOPIC, name) for name, _ in wanted or found}
        for key in wanted if wanted is not None else sorted(k for k in found if visible[k[0]]):
            committed = found.get(key) if visible[key[0]] else None
            by_topic.setdefault(key[0], []).append(
                m.OffsetFetchResponsePartition(
                    partition_index=key[1],
                    committed_offset=committed.offset if committed else -1,
                    committed_leader_epoch=committed.leader_epoch if committed else -1,
                    metadata=committed.metadata if committed else "",
                    error_code=ErrorCode.NONE if visible[key[0]] else ErrorCode.TOPIC_AUTHORIZATION_FAILED,
                )
            )
        return m.OffsetFetchResponse(
            topics=[
                m.OffsetFetchResponseTopic(name=name, partitions=parts) for name, parts in by_topic.items()
            ],
            error_code=ErrorCode.NONE,
        )


def not_coordinated_here(offsets: OffsetStore, replicas: ReplicaManager, group_id: str) -> ErrorCode:
    """NONE if this broker coordinates the group now (it leads the group's offsets partition and has
    loaded it), else NOT_COORDINATOR or COORDINATOR_LOAD_IN_PROGRESS."""
    partition = offsets.partition_of(group_id)
    if not replicas.is_leader(OFFSETS_QUEUE, partition):
        return ErrorCode.NOT_COORDINATOR
    if not offsets.loaded(partition):
        return ErrorCode.COORDINATOR_LOAD_IN_PROGRESS
    return ErrorCode.NONE


def coordinator_error(exc: ReplicationError) -> LogqError:
    moved = exc.code == ErrorCode.NOT_LEADER_OR_FOLLOWER
    code = ErrorCode.NOT_COORDINATOR if moved else ErrorCode.COORDINATOR_NOT_AVAILABLE
    return LogqError(str(exc), code=code)
