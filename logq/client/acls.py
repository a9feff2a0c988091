"""ACL management for the admin client: CreateAcls, DescribeAcls and DeleteAcls (v0-1), as
kafka-acls.sh does it. Bindings and filters are ``logq.security.acl``'s.

A broker that speaks only v0 of these APIs knows LITERAL patterns alone: a PREFIXED binding or a
non-LITERAL filter is refused here rather than silently sent as LITERAL.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from logq.client.cluster import Cluster
from logq.client.connection import BrokerConnection
from logq.error_codes import ErrorCode
from logq.errors import BrokerError, error_for_code
from logq.protocol import messages as m
from logq.protocol.apis import ApiKey
from logq.security.acl import (
    AccessControlEntry,
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    PatternType,
    ResourcePattern,
    ResourceType,
)


def _version(conn: BrokerConnection, api: ApiKey) -> int:
    if api not in conn.versions:
        raise BrokerError(
            f"the broker at {conn.address} does not manage ACLs (no {api.name} API)",
            code=ErrorCode.UNSUPPORTED_VERSION,
        )
    return conn.version_for(api)


def _only_literal(version: int, pattern_type: PatternType, what: str) -> None:
    if version == 0 and pattern_type != PatternType.LITERAL:
        raise BrokerError(
            f"{what}: the broker speaks only v0 of the ACL APIs, which knows LITERAL patterns alone",
            code=ErrorCode.UNSUPPORTED_VERSION,
        )


def _raise(code: int, message: str | None, what: str) -> None:
    if code != ErrorCode.NONE:
        name = ErrorCode(code).name if code in ErrorCode._value2member_map_ else str(code)
        raise error_for_code(code, f"{what}: {message or name}")


async def create_acls(cluster: Cluster, conn: BrokerConnection, bindings: Sequence[AclBinding]) -> None:
    """Create every binding; the first refusal is raised once all were tried (the others stand)."""
    version = _version(conn, ApiKey.CREATE_ACLS)
    for b in bindings:
        _only_literal(version, b.pattern.pattern_type, f"cannot create {b}")
    creations = [
        m.AclCreation(
            resource_type=b.pattern.resource_type,
            resource_name=b.pattern.name,
            resource_pattern_type=b.pattern.pattern_type,
            principal=b.entry.principal,
            host=b.entry.host,
            operation=b.entry.operation,
            permission_type=b.entry.permission,
        )
        for b in bindings
    ]
    answer: m.CreateAclsResponse = await cluster.send(conn, m.CreateAclsRequest(creations=creations))
    for binding, result in zip(bindings, answer.results, strict=False):
        _raise(result.error_code, result.error_message, f"cannot create ACL {binding}")


def _filter_fields(f: AclBindingFilter) -> dict[str, Any]:
    return {
        "resource_type_filter": f.resource_type,
        "resource_name_filter": f.name,
        "pattern_type_filter": f.pattern_type,
        "principal_filter": f.principal,
        "host_filter": f.host,
        "operation": f.operation,
        "permission_type": f.permission,
    }


async def describe_acls(cluster: Cluster, conn: BrokerConnection, f: AclBindingFilter) -> list[AclBinding]:
    version = _version(conn, ApiKey.DESCRIBE_ACLS)
    _only_literal(version, f.pattern_type, "cannot list ACLs")
    answer: m.DescribeAclsResponse = await cluster.send(conn, m.DescribeAclsRequest(**_filter_fields(f)))
    _raise(answer.error_code, answer.error_message, "cannot list ACLs")
    return sorted(
        AclBinding(
            ResourcePattern(ResourceType(r.resource_type), r.resource_name, PatternType(r.pattern_type)),
            AccessControlEntry(
                a.principal, a.host, AclOperation(a.operation), AclPermissionType(a.permission_type)
            ),
        )
        for r in answer.resources
        for a in r.acls
    )


async def delete_acls(
    cluster: Cluster, conn: BrokerConnection, filters: Sequence[AclBindingFilter]
) -> list[AclBinding]:
    """Delete what the filters match; every binding deleted."""
    version = _version(conn, ApiKey.DELETE_ACLS)
    for f in filters:
        _only_literal(version, f.pattern_type, "cannot delete ACLs")
    request = m.DeleteAclsRequest(filters=[m.DeleteAclsFilter(**_filter_fields(f)) for f in filters])
    answer: m.DeleteAclsResponse = await cluster.send(conn, request)
    deleted = []
    for result in answer.filter_results:
        _raise(result.error_code, result.error_message, "cannot delete ACLs")
        for a in result.matching_acls:
            _raise(a.error_code, a.error_message, "cannot delete an ACL")
            deleted.append(
                AclBinding(
                    ResourcePattern(
                        ResourceType(a.resource_type), a.resource_name, PatternType(a.pattern_type)
                    ),
                    AccessControlEntry(
                        a.principal, a.host, AclOperation(a.operation), AclPermissionType(a.permission_type)
                    ),
                )
            )
    return sorted(deleted)
