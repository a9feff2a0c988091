"""DescribeAcls (key 29), CreateAcls (key 30) and DeleteAcls (key 31), v0-1.

Field lists follow Apache Kafka's ``DescribeAclsRequest.json``/``DescribeAclsResponse.json``,
``CreateAclsRequest.json``/``CreateAclsResponse.json`` and ``DeleteAclsRequest.json``/
``DeleteAclsResponse.json`` (non-flexible versions only: v2 is the first flexible one). v1 adds the
resource pattern type (default 3, LITERAL, which is all v0 can express). Codes are Kafka's
``ResourceType``, ``PatternType``, ``AclOperation`` and ``AclPermissionType`` (``logq.security.acl``).
"""

from __future__ import annotations

from dataclasses import dataclass

from logq.protocol.schema import INT8, INT16, INT32, STRING, ArrayOf, Struct, wire

__all__ = [
    "AclCreation",
    "AclCreationResult",
    "AclDescription",
    "CreateAclsRequest",
    "CreateAclsResponse",
    "DeleteAclsFilter",
    "DeleteAclsFilterResult",
    "DeleteAclsMatchingAcl",
    "DeleteAclsRequest",
    "DeleteAclsResponse",
    "DescribeAclsRequest",
    "DescribeAclsResource",
    "DescribeAclsResponse",
]

LITERAL = 3  # the pattern type of every v0 ACL


@dataclass(slots=True, kw_only=True)
class DescribeAclsRequest(Struct):
    resource_type_filter: int = wire(INT8)
    resource_name_filter: str | None = wire(STRING, nullable="0+", default=None)
    pattern_type_filter: int = wire(INT8, "1+", default=LITERAL)
    principal_filter: str | None = wire(STRING, nullable="0+", default=None)
    host_filter: str | None = wire(STRING, nullable="0+", default=None)
    operation: int = wire(INT8)
    permission_type: int = wire(INT8)


@dataclass(slots=True, kw_only=True)
class AclDescription(Struct):
    principal: str = wire(STRING)
    host: str = wire(STRING)
    operation: int = wire(INT8)
    permission_type: int = wire(INT8)


@dataclass(slots=True, kw_only=True)
class DescribeAclsResource(Struct):
    resource_type: int = wire(INT8)
    resource_name: str = wire(STRING)
    pattern_type: int = wire(INT8, "1+", default=LITERAL)
    acls: list[AclDescription] = wire(ArrayOf(AclDescription))


@dataclass(slots=True, kw_only=True)
class DescribeAclsResponse(Struct):
    throttle_time_ms: int = wire(INT32)
    error_code: int = wire(INT16)
    error_message: str | None = wire(STRING, nullable="0+", default=None)
    resources: list[DescribeAclsResource] = wire(ArrayOf(DescribeAclsResource))


@dataclass(slots=True, kw_only=True)
class AclCreation(Struct):
    resource_type: int = wire(INT8)
    resource_name: str = wire(STRING)
    resource_pattern_type: int = wire(INT8, "1+", default=LITERAL)
    principal: str = wire(STRING)
    host: str = wire(STRING)
    operation: int = wire(INT8)
    permission_type: int = wire(INT8)


@dataclass(slots=True, kw_only=True)
class CreateAclsRequest(Struct):
    creations: list[AclCreation] = wire(ArrayOf(AclCreation))


@dataclass(slots=True, kw_only=True)
class AclCreationResult(Struct):
    error_code: int = wire(INT16)
    error_message: str | None = wire(STRING, nullable="0+", default=None)


@dataclass(slots=True, kw_only=True)
class CreateAclsResponse(Struct):
    throttle_time_ms: int = wire(INT32)
    results: list[AclCreationResult] = wire(ArrayOf(AclCreationResult))


@dataclass(slots=True, kw_only=True)
class DeleteAclsFilter(Struct):
    resource_type_filter: int = wire(INT8)
    resource_name_filter: str | None = wire(STRING, nullable="0+", default=None)
    pattern_type_filter: int = wire(INT8, "1+", default=LITERAL)
    principal_filter: str | None = wire(STRING, nullable="0+", default=None)
    host_filter: str | None = wire(STRING, nullable="0+", default=None)
    operation: int = wire(INT8)
    permission_type: int = wire(INT8)


@dataclass(slots=True, kw_only=True)
class DeleteAclsRequest(Struct):
    filters: list[DeleteAclsFilter] = wire(ArrayOf(DeleteAclsFilter))


@dataclass(slots=True, kw_only=True)
class DeleteAclsMatchingAcl(Struct):
    error_code: int = wire(INT16)
    error_message: str | None = wire(STRING, nullable="0+", default=None)
    resource_type: int = wire(INT8)
    resource_name: str = wire(STRING)
    pattern_type: int = wire(INT8, "1+", default=LITERAL)
    principal: str = wire(STRING)
    host: str = wire(STRING)
    operation: int = wire(INT8)
    permission_type: int = wire(INT8)


@dataclass(slots=True, kw_only=True)
class DeleteAclsFilterResult(Struct):
    error_code: int = wire(INT16)
    error_message: str | None = wire(STRING, nullable="0+", default=None)
    matching_acls: list[DeleteAclsMatchingAcl] = wire(ArrayOf(DeleteAclsMatchingAcl))


@dataclass(slots=True, kw_only=True)
class DeleteAclsResponse(Struct):
    throttle_time_ms: int = wire(INT32)
    filter_results: list[DeleteAclsFilterResult] = wire(ArrayOf(DeleteAclsFilterResult))
