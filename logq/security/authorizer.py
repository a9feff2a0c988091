"""The authorization decision, as Kafka's AclAuthorizer (3.x) takes it, memoised.

``authorize(principal, host, operation, resource_type, name)``:

1. a super user (``super.users``) may do anything;
2. the ACLs that apply to the resource are those on its literal name, on the literal ``*`` and on every
   prefix of its name (PREFIXED); if there are none, for anyone, ``allow.everyone.if.no.acl.found``
   decides;
3. a matching DENY refuses (DENY wins); otherwise a matching ALLOW allows; otherwise refused. An entry
   matches when its principal is the caller's or ``User:*``, its host the caller's or ``*``, and its
   operation the one asked or ALL. ALLOW on READ, WRITE, DELETE or ALTER also allows DESCRIBE, and
   ALLOW ALTER_CONFIGS allows DESCRIBE_CONFIGS (a DENY is never implied).

Decisions are cached per (principal, host, operation, resource type, name): a request pays one dict
lookup. ``update`` replaces the ACL set, bumps ``version`` and empties the cache.
"""

from __future__ import annotations

from collections.abc import Iterable

from logq.security.acl import (
    SUPPORTED_OPERATIONS,
    WILDCARD,
    WILDCARD_PRINCIPAL,
    AccessControlEntry,
    AclBinding,
    AclOperation,
    AclPermissionType,
    PatternType,
    ResourceType,
    operations_bitfield,
)

MAX_CACHED_DECISIONS = 100_000  # a client naming endless resources must not grow the cache forever

# An ALLOW of the key's operations also allows the operation itself (Kafka's implied operations).
_ALLOWED_BY: dict[AclOperation, frozenset[AclOperation]] = {
    AclOperation.DESCRIBE: frozenset(
        {
            AclOperation.DESCRIBE,
            AclOperation.READ,
            AclOperation.WRITE,
            AclOperation.DELETE,
            AclOperation.ALTER,
            AclOperation.ALL,
        }
    ),
    AclOperation.DESCRIBE_CONFIGS: frozenset(
        {AclOperation.DESCRIBE_CONFIGS, AclOperation.ALTER_CONFIGS, AclOperation.ALL}
    ),
}

# Kafka's authorizeByResourceType first asks about this literal name: a super user, an ACL on * (or a
# prefix of it) or allow.everyone.if.no.acl.found then allows at once.
_PROBE_NAME = "hardcode"


class AclIndex:
    """The ACLs by resource: literal names in one dict, prefixes in another, per resource type."""

    def __init__(self, bindings: Iterable[AclBinding]) -> None:
        literal: dict[tuple[ResourceType, str], list[AccessControlEntry]] = {}
        prefixed: dict[ResourceType, dict[str, list[AccessControlEntry]]] = {}
        by_type: dict[ResourceType, list[AclBinding]] = {}
        for b in bindings:
            by_type.setdefault(b.pattern.resource_type, []).append(b)
            if b.pattern.pattern_type == PatternType.PREFIXED:
                prefixed.setdefault(b.pattern.resource_type, {}).setdefault(b.pattern.name, []).append(
                    b.entry
                )
            else:
                literal.setdefault((b.pattern.resource_type, b.pattern.name), []).append(b.entry)
        self._literal = {key: tuple(entries) for key, entries in literal.items()}
        self._prefixed = {
            rtype: {name: tuple(entries) for name, entries in names.items()}
            for rtype, names in prefixed.items()
        }
        self.by_type = {rtype: tuple(bs) for rtype, bs in by_type.items()}

    def matching(self, resource_type: ResourceType, name: str) -> list[AccessControlEntry]:
        """Every entry that applies to the resource: its literal name, the literal *, its prefixes."""
        found = list(self._literal.get((resource_type, name), ()))
        if name != WILDCARD:
            found += self._literal.get((resource_type, WILDCARD), ())
        prefixes = self._prefixed.get(resource_type)
        if prefixes:
            if len(prefixes) < len(name):
                for prefix, entries in prefixes.items():
                    if name.startswith(prefix):
                        found += entries
            else:
                for end in range(1, len(name) + 1):
                    found += prefixes.get(name[:end], ())
        return found


class Authorizer:
    def __init__(
        self,
        *,
        super_users: Iterable[str] = (),
        allow_everyone_if_no_acl_found: bool = False,
        bindings: Iterable[AclBinding] = (),
    ) -> None:
        self.super_users = frozenset(super_users)
        self.allow_everyone_if_no_acl_found = allow_everyone_if_no_acl_found
        self.version = 0
        self._bindings: frozenset[AclBinding] = frozenset()
        self._index = AclIndex(())
        self._cache: dict[tuple[str, str, int, int, str], bool] = {}
        self.update(bindings)

    @property
    def bindings(self) -> frozenset[AclBinding]:
        return self._bindings

    def update(self, bindings: Iterable[AclBinding]) -> None:
        """Take a new ACL set (the whole of it); every cached decision is forgotten."""
        bindings = frozenset(bindings)
        if bindings == self._bindings and self.version:
            return
        self._bindings = bindings
        self._index = AclIndex(bindings)
        self._cache = {}
        self.version += 1

    def authorize(
        self, principal: str, host: str, operation: AclOperation, resource_type: ResourceType, name: str
    ) -> bool:
        key = (principal, host, operation, resource_type, name)
        decision = self._cache.get(key)
        if decision is None:
            decision = self._remember(key, self._decide(principal, host, operation, resource_type, name))
        return decision

    def _remember(self, key: tuple[str, str, int, int, str], decision: bool) -> bool:
        if len(self._cache) >= MAX_CACHED_DECISIONS:
            self._cache = {}
        self._cache[key] = decision
        return decision

    def _decide(
        self, principal: str, host: str, operation: AclOperation, resource_type: ResourceType, name: str
    ) -> bool:
        if operation in (AclOperation.ANY, AclOperation.UNKNOWN):
            raise ValueError(f"{operation.name} is not an operation one can be authorized for")
        if principal in self.super_users:
            return True
        entries = self._index.matching(resource_type, name)
        if not entries:
            return self.allow_everyone_if_no_acl_found
        applicable = [
            e
            for e in entries
            if e.principal in (principal, WILDCARD_PRINCIPAL) and e.host in (host, WILDCARD)
        ]
        if any(
            e.permission == AclPermissionType.DENY and e.operation in (operation, AclOperation.ALL)
            for e in applicable
        ):
            return False
        allowed_by = _ALLOWED_BY.get(operation) or frozenset({operation, AclOperation.ALL})
        return any(e.permission == AclPermissionType.ALLOW and e.operation in allowed_by for e in applicable)

    def authorize_by_type(
        self, principal: str, host: str, operation: AclOperation, resource_type: ResourceType
    ) -> bool:
        """Whether the principal may do ``operation`` on *some* resource of the type (Kafka's
        authorizeByResourceType, used by InitProducerId: WRITE on any queue): an ALLOW for it that no
        DENY dominates, where a DENY on the literal * dominates everything."""
        key = (principal, host, operation, resource_type, "\0by-type")
        decision = self._cache.get(key)
        if decision is None:
            decision = self._remember(key, self._decide_by_type(principal, host, operation, resource_type))
        return decision

    def _decide_by_type(
        self, principal: str, host: str, operation: AclOperation, resource_type: ResourceType
    ) -> bool:
        if self._decide(principal, host, operation, resource_type, _PROBE_NAME):
            return True
        denied_literal: set[str] = set()
        denied_prefix: set[str] = set()
        allowed: list[tuple[PatternType, str]] = []
        allowed_everywhere = False
        for b in self._index.by_type.get(resource_type, ()):
            e = b.entry
            if e.host not in (host, WILDCARD) or e.principal not in (principal, WILDCARD_PRINCIPAL):
                continue
            if e.operation not in (operation, AclOperation.ALL):
                continue
            literal = b.pattern.pattern_type == PatternType.LITERAL
            if e.permission == AclPermissionType.DENY:
                if literal and b.pattern.name == WILDCARD:
                    return False
                (denied_literal if literal else denied_prefix).add(b.pattern.name)
            elif literal and b.pattern.name == WILDCARD:
                allowed_everywhere = True  # unless a DENY on * comes later
            else:
                allowed.append((b.pattern.pattern_type, b.pattern.name))
        if allowed_everywhere:
            return True
        for kind, name in allowed:
            if kind == PatternType.LITERAL and name in denied_literal:
                continue
            if not any(name[:end] in denied_prefix for end in range(1, len(name) + 1)):
                return True
        return False

    def authorized_operations(self, principal: str, host: str, resource_type: ResourceType, name: str) -> int:
        """The KIP-430 bit field: the resource type's supported operations that the principal may do."""
        return operations_bitfield(
            op
            for op in SUPPORTED_OPERATIONS.get(resource_type, ())
            if self.authorize(principal, host, op, resource_type, name)
        )
