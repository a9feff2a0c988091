"""Kafka's ACL model: resource patterns, access control entries, bindings and the filters that select them.

The codes are Kafka's (``AclOperation``, ``ResourceType``, ``PatternType``, ``AclPermissionType``), so they
go on the wire unchanged. An ACL binding says: ``principal`` from ``host`` is ALLOWed or DENYed
``operation`` on the resources a pattern names (a LITERAL name, ``*`` for every name, or a PREFIXED
name). Filters (DescribeAcls, DeleteAcls) select bindings the way Kafka's ``AclBindingFilter.matches``
does. Pure: no I/O. docs/security.md describes the model for users.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

CLUSTER_NAME = "kafka-cluster"  # the one name of the CLUSTER resource, as in Kafka
WILDCARD = "*"  # a LITERAL pattern named * matches every name; a host * matches every host
WILDCARD_PRINCIPAL = "User:*"
ANONYMOUS = "User:ANONYMOUS"  # the principal of an unauthenticated (PLAINTEXT) connection


class ResourceType(enum.IntEnum):
    UNKNOWN = 0
    ANY = 1  # filters only
    TOPIC = 2  # a queue
    GROUP = 3
    CLUSTER = 4
    TRANSACTIONAL_ID = 5
    DELEGATION_TOKEN = 6
    USER = 7


class PatternType(enum.IntEnum):
    UNKNOWN = 0
    ANY = 1  # filters only: any pattern type, the exact name
    MATCH = 2  # filters only: every pattern that applies to the name (literal, *, prefixes)
    LITERAL = 3
    PREFIXED = 4


class AclOperation(enum.IntEnum):
    UNKNOWN = 0
    ANY = 1  # filters only
    ALL = 2
    READ = 3
    WRITE = 4
    CREATE = 5
    DELETE = 6
    ALTER = 7
    DESCRIBE = 8
    CLUSTER_ACTION = 9
    DESCRIBE_CONFIGS = 10
    ALTER_CONFIGS = 11
    IDEMPOTENT_WRITE = 12
    CREATE_TOKENS = 13
    DESCRIBE_TOKENS = 14


class AclPermissionType(enum.IntEnum):
    UNKNOWN = 0
    ANY = 1  # filters only
    DENY = 2
    ALLOW = 3


# What logq stores and decides on: no delegation tokens, so no DELEGATION_TOKEN or USER resources.
BINDABLE_RESOURCE_TYPES = (
    ResourceType.TOPIC,
    ResourceType.GROUP,
    ResourceType.CLUSTER,
    ResourceType.TRANSACTIONAL_ID,
)
BINDABLE_OPERATIONS = tuple(
    op for op in AclOperation if AclOperation.ALL <= op <= AclOperation.IDEMPOTENT_WRITE
)

# The operations each resource type answers in authorized-operations bit fields (KIP-430; Kafka's
# AclEntry.supportedOperations).
SUPPORTED_OPERATIONS: dict[ResourceType, tuple[AclOperation, ...]] = {
    ResourceType.TOPIC: (
        AclOperation.READ,
        AclOperation.WRITE,
        AclOperation.CREATE,
        AclOperation.DESCRIBE,
        AclOperation.DELETE,
        AclOperation.ALTER,
        AclOperation.DESCRIBE_CONFIGS,
        AclOperation.ALTER_CONFIGS,
    ),
    ResourceType.GROUP: (
        AclOperation.READ,
        AclOperation.DESCRIBE,
        AclOperation.DELETE,
        AclOperation.DESCRIBE_CONFIGS,
        AclOperation.ALTER_CONFIGS,
    ),
    ResourceType.CLUSTER: (
        AclOperation.CREATE,
        AclOperation.CLUSTER_ACTION,
        AclOperation.DESCRIBE_CONFIGS,
        AclOperation.ALTER_CONFIGS,
        AclOperation.IDEMPOTENT_WRITE,
        AclOperation.ALTER,
        AclOperation.DESCRIBE,
    ),
    ResourceType.TRANSACTIONAL_ID: (AclOperation.DESCRIBE, AclOperation.WRITE),
}


def operations_bitfield(operations: Iterable[AclOperation]) -> int:
    """Kafka's ``Utils.to32BitField``: bit ``op`` set for each operation."""
    field = 0
    for op in operations:
        field |= 1 << op
    return field


def operations_of_bitfield(field: int) -> set[AclOperation]:
    return {op for op in AclOperation if op > AclOperation.UNKNOWN and field >> op & 1}


def display_name(value: enum.IntEnum) -> str:
    """Kafka's names in ZooKeeper and in kafka-acls output: ``Topic``, ``ClusterAction``, ``Allow``."""
    return "".join(part.capitalize() for part in value.name.split("_"))


E = TypeVar("E", bound=enum.IntEnum)


def parse_name(cls: type[E], text: str) -> E:
    """The member of ``cls`` named ``text`` in any of Kafka's spellings (``ClusterAction``,
    ``cluster-action``, ``CLUSTER_ACTION``, ``clusteraction``); ValueError otherwise."""
    wanted = text.replace("-", "").replace("_", "").lower()
    for member in cls:
        if member.name.replace("_", "").lower() == wanted and member.name != "UNKNOWN":
            return member
    raise ValueError(f"unknown {cls.__name__} {text!r}")


@dataclass(frozen=True, slots=True, order=True)
class ResourcePattern:
    resource_type: ResourceType
    name: str
    pattern_type: PatternType = PatternType.LITERAL

    def __str__(self) -> str:
        prefixed = " (prefixed)" if self.pattern_type == PatternType.PREFIXED else ""
        return f"{self.resource_type.name}:{self.name}{prefixed}"


@dataclass(frozen=True, slots=True, order=True)
class AccessControlEntry:
    principal: str  # "User:alice", or "User:*" for everyone
    host: str  # an IP address, or "*" for every host
    operation: AclOperation
    permission: AclPermissionType


@dataclass(frozen=True, slots=True, order=True)
class AclBinding:
    pattern: ResourcePattern
    entry: AccessControlEntry

    def __str__(self) -> str:
        e = self.entry
        return f"{e.permission.name} {e.principal} from {e.host} {e.operation.name} on {self.pattern}"


@dataclass(frozen=True, slots=True)
class AclBindingFilter:
    """Selects bindings (Kafka's ``AclBindingFilter``): None or ANY selects every value of a field."""

    resource_type: ResourceType = ResourceType.ANY
    name: str | None = None
    pattern_type: PatternType = PatternType.ANY
    principal: str | None = None
    host: str | None = None
    operation: AclOperation = AclOperation.ANY
    permission: AclPermissionType = AclPermissionType.ANY

    def matches(self, binding: AclBinding) -> bool:
        return self.matches_pattern(binding.pattern) and self.matches_entry(binding.entry)

    def matches_pattern(self, pattern: ResourcePattern) -> bool:
        """Kafka's ResourcePatternFilter.matches: ANY takes the exact name under any pattern type,
        LITERAL or PREFIXED the exact name under that type, MATCH every pattern applying to the name."""
        if self.resource_type not in (ResourceType.ANY, pattern.resource_type):
            return False
        if self.pattern_type not in (PatternType.ANY, PatternType.MATCH, pattern.pattern_type):
            return False
        if self.name is None:
            return True
        if self.pattern_type in (PatternType.ANY, pattern.pattern_type):
            return self.name == pattern.name
        if pattern.pattern_type == PatternType.LITERAL:  # MATCH
            return pattern.name in (self.name, WILDCARD)
        return self.name.startswith(pattern.name)

    def matches_entry(self, entry: AccessControlEntry) -> bool:
        return (
            (self.principal is None or self.principal == entry.principal)
            and (self.host is None or self.host == entry.host)
            and self.operation in (AclOperation.ANY, entry.operation)
            and self.permission in (AclPermissionType.ANY, entry.permission)
        )


def binding_problem(binding: AclBinding) -> str | None:
    """Why ``binding`` cannot be created (Kafka answers INVALID_REQUEST), or None if it can."""
    pattern, entry = binding.pattern, binding.entry
    if pattern.resource_type not in BINDABLE_RESOURCE_TYPES:
        return (
            f"resource type {_label(pattern.resource_type)} cannot be bound: "
            "use TOPIC, GROUP, CLUSTER or TRANSACTIONAL_ID"
        )
    if pattern.pattern_type not in (PatternType.LITERAL, PatternType.PREFIXED):
        return f"pattern type {_label(pattern.pattern_type)} is for filters: an ACL is LITERAL or PREFIXED"
    name_problem = resource_name_problem(pattern.name)
    if name_problem is not None:
        return name_problem
    if pattern.resource_type == ResourceType.CLUSTER and pattern.name != CLUSTER_NAME:
        return f"the only name of the CLUSTER resource is {CLUSTER_NAME!r}, not {pattern.name!r}"
    principal = principal_problem(entry.principal)
    if principal is not None:
        return principal
    if not entry.host:
        return "the host is empty: give an IP address, or * for every host"
    if entry.operation not in BINDABLE_OPERATIONS:
        return f"operation {_label(entry.operation)} cannot be bound (ANY is for filters)"
    if entry.permission not in (AclPermissionType.ALLOW, AclPermissionType.DENY):
        return f"permission {_label(entry.permission)} cannot be bound: ALLOW or DENY"
    return None


def filter_problem(f: AclBindingFilter) -> str | None:
    """Why a filter is refused (an UNKNOWN field, as Kafka refuses it), or None."""
    for value in (f.resource_type, f.pattern_type, f.operation, f.permission):
        if value == 0:
            return f"the filter's {type(value).__name__} is UNKNOWN"
    return None


def resource_name_problem(name: str) -> str | None:
    """A resource name becomes a ZooKeeper node name: it must be one valid path element."""
    if not name:
        return "the resource name is empty"
    if "/" in name or name in (".", ".."):
        return f"the resource name {name!r} may not contain '/' or be '.' or '..'"
    if any(not ch.isprintable() for ch in name):
        return f"the resource name {name!r} contains control characters"
    return None


def principal_problem(principal: str) -> str | None:
    kind, sep, name = principal.partition(":")
    if not sep or not kind or not name:
        return f"principal {principal!r} is not TYPE:NAME (e.g. User:alice, or User:* for everyone)"
    return None


def _label(value: enum.IntEnum) -> str:
    return value.name if value.name != "UNKNOWN" else f"{value.value} (unknown)"


def select_deletions(
    bindings: Iterable[AclBinding], filters: Sequence[AclBindingFilter]
) -> list[list[AclBinding]]:
    """Per filter, the bindings it deletes: each binding counts for the first filter that matches it
    (as Kafka reports a DeleteAcls)."""
    out: list[list[AclBinding]] = [[] for _ in filters]
    for binding in sorted(bindings):
        for i, f in enumerate(filters):
            if f.matches(binding):
                out[i].append(binding)
                break
    return out
