"""Classic consumer-group APIs: JoinGroup (11, v0-5), Heartbeat (12, v0-3), LeaveGroup (13, v0-3),
SyncGroup (14, v0-3), DescribeGroups (15, v0-4) and ListGroups (16, v0-2).

Field lists follow the matching ``<Name>Request.json``/``<Name>Response.json`` of Apache Kafka
(non-flexible versions only). Member metadata and assignments are opaque bytes to the broker.
"""

from __future__ import annotations

from dataclasses import dataclass

from logq.protocol.primitives import INT32_MIN
from logq.protocol.schema import BOOL, BYTES, INT16, INT32, STRING, ArrayOf, Struct, wire

__all__ = [
    "DescribeGroupsRequest",
    "DescribeGroupsResponse",
    "DescribedGroup",
    "DescribedGroupMember",
    "HeartbeatRequest",
    "HeartbeatResponse",
    "JoinGroupRequest",
    "JoinGroupRequestProtocol",
    "JoinGroupResponse",
    "JoinGroupResponseMember",
    "LeaveGroupMember",
    "LeaveGroupMemberResponse",
    "LeaveGroupRequest",
    "LeaveGroupResponse",
    "ListGroupsRequest",
    "ListGroupsResponse",
    "ListedGroup",
    "SyncGroupRequest",
    "SyncGroupRequestAssignment",
    "SyncGroupResponse",
]


@dataclass(slots=True, kw_only=True)
class JoinGroupRequestProtocol(Struct):
    name: str = wire(STRING)
    metadata: bytes = wire(BYTES)


@dataclass(slots=True, kw_only=True)
class JoinGroupRequest(Struct):
    group_id: str = wire(STRING)
    session_timeout_ms: int = wire(INT32)
    rebalance_timeout_ms: int = wire(INT32, "1+", default=-1)
    member_id: str = wire(STRING)
    group_instance_id: str | None = wire(STRING, "5+", nullable="5+", default=None)
    protocol_type: str = wire(STRING)
    protocols: list[JoinGroupRequestProtocol] = wire(ArrayOf(JoinGroupRequestProtocol))


@dataclass(slots=True, kw_only=True)
class JoinGroupResponseMember(Struct):
    member_id: str = wire(STRING)
    group_instance_id: str | None = wire(STRING, "5+", nullable="5+", default=None)
    metadata: bytes = wire(BYTES)


@dataclass(slots=True, kw_only=True)
class JoinGroupResponse(Struct):
    throttle_time_ms: int = wire(INT32, "2+")
    error_code: int = wire(INT16)
    generation_id: int = wire(INT32, default=-1)
    protocol_name: str = wire(STRING)
    leader: str = wire(STRING)
    member_id: str = wire(STRING)
    members: list[JoinGroupResponseMember] = wire(ArrayOf(JoinGroupResponseMember))


@dataclass(slots=True, kw_only=True)
class HeartbeatRequest(Struct):
    group_id: str = wire(STRING)
    generation_id: int = wire(INT32)
    member_id: str = wire(STRING)
    group_instance_id: str | None = wire(STRING, "3+", nullable="3+", default=None)


@dataclass(slots=True, kw_only=True)
class HeartbeatResponse(Struct):
    throttle_time_ms: int = wire(INT32, "1+")
    error_code: int = wire(INT16)


@dataclass(slots=True, kw_only=True)
class LeaveGroupMember(Struct):
    member_id: str = wire(STRING, "3+")
    group_instance_id: str | None = wire(STRING, "3+", nullable="3+", default=None)


@dataclass(slots=True, kw_only=True)
class LeaveGroupRequest(Struct):
    group_id: str = wire(STRING)
    member_id: str = wire(STRING, "0-2")  # v3 replaced the single member with a batch
    members: list[LeaveGroupMember] = wire(ArrayOf(LeaveGroupMember), "3+")


@dataclass(slots=True, kw_only=True)
class LeaveGroupMemberResponse(Struct):
    member_id: str = wire(STRING, "3+")
    group_instance_id: str | None = wire(STRING, "3+", nullable="3+", default=None)
    error_code: int = wire(INT16, "3+")


@dataclass(slots=True, kw_only=True)
class LeaveGroupResponse(Struct):
    throttle_time_ms: int = wire(INT32, "1+")
    error_code: int = wire(INT16)
    members: list[LeaveGroupMemberResponse] = wire(ArrayOf(LeaveGroupMemberResponse), "3+")


@dataclass(slots=True, kw_only=True)
class SyncGroupRequestAssignment(Struct):
    member_id: str = wire(STRING)
    assignment: bytes = wire(BYTES)


@dataclass(slots=True, kw_only=True)
class SyncGroupRequest(Struct):
    group_id: str = wire(STRING)
    generation_id: int = wire(INT32)
    member_id: str = wire(STRING)
    group_instance_id: str | None = wire(STRING, "3+", nullable="3+", default=None)
    assignments: list[SyncGroupRequestAssignment] = wire(ArrayOf(SyncGroupRequestAssignment))


@dataclass(slots=True, kw_only=True)
class SyncGroupResponse(Struct):
    throttle_time_ms: int = wire(INT32, "1+")
    error_code: int = wire(INT16)
    assignment: bytes = wire(BYTES)


@dataclass(slots=True, kw_only=True)
class DescribeGroupsRequest(Struct):
    groups: list[str] = wire(ArrayOf(STRING))
    include_authorized_operations: bool = wire(BOOL, "3+")


@dataclass(slots=True, kw_only=True)
class DescribedGroupMember(Struct):
    member_id: str = wire(STRING)
    group_instance_id: str | None = wire(STRING, "4+", nullable="4+", default=None)
    client_id: str = wire(STRING)
    client_host: str = wire(STRING)
    member_metadata: bytes = wire(BYTES)
    member_assignment: bytes = wire(BYTES)


@dataclass(slots=True, kw_only=True)
class DescribedGroup(Struct):
    error_code: int = wire(INT16)
    group_id: str = wire(STRING)
    group_state: str = wire(STRING)
    protocol_type: str = wire(STRING)
    protocol_data: str = wire(STRING)
    members: list[DescribedGroupMember] = wire(ArrayOf(DescribedGroupMember))
    authorized_operations: int = wire(INT32, "3+", default=INT32_MIN)


@dataclass(slots=True, kw_only=True)
class DescribeGroupsResponse(Struct):
    throttle_time_ms: int = wire(INT32, "1+")
    groups: list[DescribedGroup] = wire(ArrayOf(DescribedGroup))


@dataclass(slots=True, kw_only=True)
class ListGroupsRequest(Struct):
    """Empty in v0-2 (state and type filters arrive with flexible versions)."""


@dataclass(slots=True, kw_only=True)
class ListedGroup(Struct):
    group_id: str = wire(STRING)
    protocol_type: str = wire(STRING)


@dataclass(slots=True, kw_only=True)
class ListGroupsResponse(Struct):
    throttle_time_ms: int = wire(INT32, "1+")
    error_code: int = wire(INT16)
    groups: list[ListedGroup] = wire(ArrayOf(ListedGroup))
