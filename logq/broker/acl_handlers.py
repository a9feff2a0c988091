"""DescribeAcls (29), CreateAcls (30) and DeleteAcls (31): managing the ACLs, as kafka-acls.sh and
confluent-kafka's AdminClient do.

Without an authorizer they answer SECURITY_DISABLED (54), as Kafka does. Otherwise DescribeAcls needs
DESCRIBE on the cluster and the other two ALTER on the cluster (CLUSTER_AUTHORIZATION_FAILED, 31, for the
whole request). A creation or filter that is not valid (an UNKNOWN code, ANY in a creation, a CLUSTER
name other than kafka-cluster, an empty name or one with '/') answers INVALID_REQUEST with the reason.
The ACLs live in the coordinator, which puts a change in force on this broker before it returns.
"""

from __future__ import annotations

import enum
import logging
from typing import TypeVar

from logq.broker.authorization import RequestAuthorizer
from logq.broker.handlers import Handler
from logq.coordinator import Coordinator
from logq.error_codes import ErrorCode
from logq.errors import LogqError
from logq.protocol import RequestHeader
from logq.protocol import messages as m
from logq.security.acl import (
    CLUSTER_NAME,
    AccessControlEntry,
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    PatternType,
    ResourcePattern,
    ResourceType,
    binding_problem,
    filter_problem,
)

log = logging.getLogger(__name__)

E = TypeVar("E", bound=enum.IntEnum)

SECURITY_DISABLED_MESSAGE = "no authorizer is configured on this broker (authorizer.enable = false)"


class AclHandlers:
    def __init__(self, coordinator: Coordinator, auth: RequestAuthorizer) -> None:
        self._coordinator = coordinator
        self._auth = auth
        self.by_type: dict[type, Handler] = {
            m.DescribeAclsRequest: self.describe_acls,
            m.CreateAclsRequest: self.create_acls,
            m.DeleteAclsRequest: self.delete_acls,
        }

    def _refusal(self, operation: AclOperation) -> tuple[ErrorCode, str] | None:
        """Why the whole request is refused (no authorizer, or not allowed), or None."""
        if not self._auth.enabled:
            return ErrorCode.SECURITY_DISABLED, SECURITY_DISABLED_MESSAGE
        if not self._auth.allows_cluster(operation):
            return ErrorCode.CLUSTER_AUTHORIZATION_FAILED, self._auth.refusal(
                operation, ResourceType.CLUSTER, CLUSTER_NAME
            )
        return None

    async def describe_acls(
        self, header: RequestHeader, req: m.DescribeAclsRequest
    ) -> m.DescribeAclsResponse:
        refused = self._refusal(AclOperation.DESCRIBE)
        if refused is not None:
            return m.DescribeAclsResponse(error_code=refused[0], error_message=refused[1])
        f = _filter(req)
        problem = filter_problem(f)
        if problem is not None:
            return m.DescribeAclsResponse(error_code=ErrorCode.INVALID_REQUEST, error_message=problem)
        by_pattern: dict[ResourcePattern, list[AccessControlEntry]] = {}
        for binding in sorted(b for b in self._coordinator.acls() if f.matches(b)):
            by_pattern.setdefault(binding.pattern, []).append(binding.entry)
        resources = [
            m.DescribeAclsResource(
                resource_type=pattern.resource_type,
                resource_name=pattern.name,
                pattern_type=pattern.pattern_type,
                acls=[
                    m.AclDescription(
                        principal=e.principal,
                        host=e.host,
                        operation=e.operation,
                        permission_type=e.permission,
                    )
                    for e in entries
                ],
            )
            for pattern, entries in by_pattern.items()
        ]
        return m.DescribeAclsResponse(error_code=ErrorCode.NONE, resources=resources)

    async def create_acls(self, header: RequestHeader, req: m.CreateAclsRequest) -> m.CreateAclsResponse:
        refused = self._refusal(AclOperation.ALTER)
        if refused is not None:
            return m.CreateAclsResponse(
                results=[
                    m.AclCreationResult(error_code=refused[0], error_message=refused[1])
                    for _ in req.creations
                ]
            )
        results: list[m.AclCreationResult] = []
        valid: dict[int, AclBinding] = {}
        for i, creation in enumerate(req.creations):
            binding = _binding(creation)
            problem = binding_problem(binding)
            if problem is not None:
                results.append(
                    m.AclCreationResult(error_code=ErrorCode.INVALID_REQUEST, error_message=problem)
                )
            else:
                results.append(m.AclCreationResult(error_code=ErrorCode.NONE))
                valid[i] = binding
        # One coordinator write per resource, so a failure touches only that resource's creations.
        by_pattern: dict[ResourcePattern, list[int]] = {}
        for i, binding in valid.items():
            by_pattern.setdefault(binding.pattern, []).append(i)
        for indexes in by_pattern.values():
            try:
                await self._coordinator.create_acls([valid[i] for i in indexes])
            except LogqError as exc:
                for i in indexes:
                    results[i] = m.AclCreationResult(error_code=exc.code, error_message=str(exc))
                continue
            for i in indexes:
                log.info("%s created ACL: %s", self._auth.principal, valid[i])
        return m.CreateAclsResponse(results=results)

    async def delete_acls(self, header: RequestHeader, req: m.DeleteAclsRequest) -> m.DeleteAclsResponse:
        refused = self._refusal(AclOperation.ALTER)
        if refused is not None:
            return m.DeleteAclsResponse(
                filter_results=[
                    m.DeleteAclsFilterResult(error_code=refused[0], error_message=refused[1])
                    for _ in req.filters
                ]
            )
        filters = [_filter(f) for f in req.filters]
        problems = [filter_problem(f) for f in filters]
        valid = [f for f, problem in zip(filters, problems, strict=True) if problem is None]
        try:
            deleted = iter(await self._coordinator.delete_acls(valid) if valid else [])
        except LogqError as exc:
            return m.DeleteAclsResponse(
                filter_results=[
                    m.DeleteAclsFilterResult(error_code=exc.code, error_message=str(exc)) for _ in req.filters
                ]
            )
        results = []
        for problem in problems:
            if problem is not None:
                results.append(
                    m.DeleteAclsFilterResult(error_code=ErrorCode.INVALID_REQUEST, error_message=problem)
                )
                continue
            removed = next(deleted)
            for binding in removed:
                log.info("%s deleted ACL: %s", self._auth.principal, binding)
            results.append(
                m.DeleteAclsFilterResult(
                    error_code=ErrorCode.NONE, matching_acls=[_matching(b) for b in removed]
                )
            )
        return m.DeleteAclsResponse(filter_results=results)


def _code(cls: type[E], value: int) -> E:
    """A wire code as its enum member; a code Kafka does not define is UNKNOWN (0), as in Kafka."""
    try:
        return cls(value)
    except ValueError:
        return cls(0)


def _binding(c: m.AclCreation) -> AclBinding:
    return AclBinding(
        ResourcePattern(
            _code(ResourceType, c.resource_type), c.resource_name, _code(PatternType, c.resource_pattern_type)
        ),
        AccessControlEntry(
            c.principal, c.host, _code(AclOperation, c.operation), _code(AclPermissionType, c.permission_type)
        ),
    )


def _filter(f: m.DescribeAclsRequest | m.DeleteAclsFilter) -> AclBindingFilter:
    return AclBindingFilter(
        resource_type=_code(ResourceType, f.resource_type_filter),
        name=f.resource_name_filter,
        pattern_type=_code(PatternType, f.pattern_type_filter),
        principal=f.principal_filter,
        host=f.host_filter,
        operation=_code(AclOperation, f.operation),
        permission=_code(AclPermissionType, f.permission_type),
    )


def _matching(b: AclBinding) -> m.DeleteAclsMatchingAcl:
    return m.DeleteAclsMatchingAcl(
        error_code=ErrorCode.NONE,
        resource_type=b.pattern.resource_type,
        resource_name=b.pattern.name,
        pattern_type=b.pattern.pattern_type,
        principal=b.entry.principal,
        host=b.entry.host,
        operation=b.entry.operation,
        permission_type=b.entry.permission,
    )
