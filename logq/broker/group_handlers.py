"""Handlers of the consumer-group APIs: FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
DescribeGroups and ListGroups. (OffsetCommit and OffsetFetch join them with the offset store.)

Membership lives in ``logq.groups.membership``; these functions only translate requests and answers.
A standalone broker coordinates every group (it leads every ``__consumer_offsets`` partition).
"""

from __future__ import annotations

from logq.coordinator import Coordinator
from logq.error_codes import ErrorCode
from logq.groups.membership import GroupMembership
from logq.groups.state import GroupState
from logq.protocol import RequestHeader
from logq.protocol import messages as m

GROUP_KEY = 0  # FindCoordinator key_type: a consumer group (1 would be a transaction)


class GroupHandlers:
    def __init__(self, coordinator: Coordinator, membership: GroupMembership) -> None:
        self._coordinator = coordinator
        self._membership = membership
        self.by_type = {
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
        if req.key_type != GROUP_KEY:
            return m.FindCoordinatorResponse(
                error_code=ErrorCode.COORDINATOR_NOT_AVAILABLE, error_message="transactions are not supported"
            )
        me = next(b for b in self._coordinator.brokers() if b.broker_id == self._coordinator.broker_id)
        return m.FindCoordinatorResponse(
            error_code=ErrorCode.NONE, node_id=me.broker_id, host=me.host, port=me.port
        )

    async def join_group(self, header: RequestHeader, req: m.JoinGroupRequest) -> m.JoinGroupResponse:
        result = await self._membership.join(
            req.group_id,
            req.member_id,
            instance_id=req.group_instance_id,
            client_id=header.client_id or "",
            client_host="",
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
        assignments = {a.member_id: bytes(a.assignment) for a in req.assignments}
        error, assignment = await self._membership.sync(
            req.group_id, req.generation_id, req.member_id, assignments
        )
        return m.SyncGroupResponse(error_code=error, assignment=assignment)

    async def heartbeat(self, header: RequestHeader, req: m.HeartbeatRequest) -> m.HeartbeatResponse:
        return m.HeartbeatResponse(
            error_code=self._membership.heartbeat(req.group_id, req.generation_id, req.member_id)
        )

    async def leave_group(self, header: RequestHeader, req: m.LeaveGroupRequest) -> m.LeaveGroupResponse:
        if header.api_version < 3:
            return m.LeaveGroupResponse(error_code=self._membership.leave(req.group_id, req.member_id))
        members = [
            m.LeaveGroupMemberResponse(
                member_id=x.member_id,
                group_instance_id=x.group_instance_id,
                error_code=self._membership.leave(req.group_id, x.member_id),
            )
            for x in req.members
        ]
        return m.LeaveGroupResponse(error_code=ErrorCode.NONE, members=members)

    async def describe_groups(
        self, header: RequestHeader, req: m.DescribeGroupsRequest
    ) -> m.DescribeGroupsResponse:
        described = []
        for group_id in req.groups:
            group = self._membership.groups.get(group_id)
            if group is None:
                described.append(
                    m.DescribedGroup(
                        error_code=ErrorCode.NONE, group_id=group_id, group_state=GroupState.DEAD.value
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
                    protocol_type=group.protocol_type or "",
                    protocol_data=protocol,
                    members=members,
                )
            )
        return m.DescribeGroupsResponse(groups=described)

    async def list_groups(self, header: RequestHeader, req: m.ListGroupsRequest) -> m.ListGroupsResponse:
        groups = [
            m.ListedGroup(group_id=g.group_id, protocol_type=g.protocol_type or "")
            for g in self._membership.groups.values()
            if g.state is not GroupState.DEAD
        ]
        return m.ListGroupsResponse(error_code=ErrorCode.NONE, groups=groups)
