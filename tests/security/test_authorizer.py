"""The authorization decision against a plain model of Kafka's rules (hypothesis), with its cache kept
honest across ACL changes, plus the filters, the validation and the by-resource-type decision."""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from logq.security.acl import (
    BINDABLE_OPERATIONS,
    CLUSTER_NAME,
    WILDCARD,
    AccessControlEntry,
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    PatternType,
    ResourcePattern,
    ResourceType,
    binding_problem,
    display_name,
    filter_problem,
    operations_bitfield,
    operations_of_bitfield,
    parse_name,
    select_deletions,
)
from logq.security.authorizer import Authorizer

ALLOW, DENY = AclPermissionType.ALLOW, AclPermissionType.DENY
OP = AclOperation
TOPIC, GROUP = ResourceType.TOPIC, ResourceType.GROUP

# Small alphabets, so that names share prefixes, principals and hosts meet their wildcards often.
NAMES = ["a", "ab", "abc", "b", "ba"]
PRINCIPALS = ["User:alice", "User:bob", "User:*"]
CALLERS = ["User:alice", "User:bob", "User:carol"]
HOSTS = ["10.0.0.1", "10.0.0.2", WILDCARD]
CALLER_HOSTS = ["10.0.0.1", "10.0.0.2"]
CHECKED_OPS = [op for op in BINDABLE_OPERATIONS if op != OP.ALL]

patterns = st.builds(
    ResourcePattern,
    st.sampled_from([TOPIC, GROUP]),
    st.sampled_from([*NAMES, WILDCARD]),
    st.sampled_from([PatternType.LITERAL, PatternType.PREFIXED]),
)
entries = st.builds(
    AccessControlEntry,
    st.sampled_from(PRINCIPALS),
    st.sampled_from(HOSTS),
    st.sampled_from(BINDABLE_OPERATIONS),
    st.sampled_from([ALLOW, DENY]),
)
bindings = st.builds(AclBinding, patterns, entries)
requests = st.tuples(
    st.sampled_from(CALLERS),
    st.sampled_from(CALLER_HOSTS),
    st.sampled_from(CHECKED_OPS),
    st.sampled_from([TOPIC, GROUP]),
    st.sampled_from(NAMES),
)


def model(
    acls: Iterable[AclBinding],
    super_users: frozenset[str],
    open_if_none: bool,
    request: tuple[str, str, AclOperation, ResourceType, str],
) -> bool:
    """Kafka's rules written plainly: a scan of every binding, no index, no cache."""
    principal, host, op, rtype, name = request
    if principal in super_users:
        return True
    applying = [
        b.entry
        for b in acls
        if b.pattern.resource_type == rtype
        and (
            (b.pattern.pattern_type == PatternType.LITERAL and b.pattern.name in (name, WILDCARD))
            or (b.pattern.pattern_type == PatternType.PREFIXED and name.startswith(b.pattern.name))
        )
    ]
    if not applying:
        return open_if_none
    mine = [e for e in applying if e.principal in (principal, "User:*") and e.host in (host, WILDCARD)]
    if any(e.permission == DENY and e.operation in (op, OP.ALL) for e in mine):
        return False
    implied = {op, OP.ALL}
    if op == OP.DESCRIBE:
        implied |= {OP.READ, OP.WRITE, OP.DELETE, OP.ALTER}
    if op == OP.DESCRIBE_CONFIGS:
        implied.add(OP.ALTER_CONFIGS)
    return any(e.permission == ALLOW and e.operation in implied for e in mine)


@settings(max_examples=300)
@given(
    acls=st.frozensets(bindings, max_size=12),
    request=requests,
    open_if_none=st.booleans(),
    supers=st.frozensets(st.sampled_from(CALLERS), max_size=1),
)
def test_decision_matches_the_model(
    acls: frozenset[AclBinding],
    request: tuple[str, str, AclOperation, ResourceType, str],
    open_if_none: bool,
    supers: frozenset[str],
) -> None:
    authorizer = Authorizer(super_users=supers, allow_everyone_if_no_acl_found=open_if_none, bindings=acls)
    assert authorizer.authorize(*request) == model(acls, supers, open_if_none, request)
    assert authorizer.authorize(*request) == model(acls, supers, open_if_none, request)  # cached


@given(acls=st.frozensets(bindings, max_size=12), request=requests)
def test_deny_wins_over_any_allow(
    acls: frozenset[AclBinding], request: tuple[str, str, OP, ResourceType, str]
) -> None:
    principal, host, op, rtype, name = request
    denied = AclBinding(ResourcePattern(rtype, name), AccessControlEntry(principal, host, op, DENY))
    everyone = AclBinding(
        ResourcePattern(rtype, WILDCARD), AccessControlEntry("User:*", WILDCARD, OP.ALL, ALLOW)
    )
    authorizer = Authorizer(bindings=acls | {denied, everyone}, allow_everyone_if_no_acl_found=True)
    assert not authorizer.authorize(*request)


@given(acls=st.frozensets(bindings, max_size=12), request=requests)
def test_super_users_may_do_anything(
    acls: frozenset[AclBinding], request: tuple[str, str, OP, ResourceType, str]
) -> None:
    authorizer = Authorizer(super_users={request[0]}, bindings=acls)
    assert authorizer.authorize(*request)


class AclChanges(RuleBasedStateMachine):
    """ACLs added and removed while decisions are cached: every answer agrees with the model, so the
    cache is never stale after an update."""

    @initialize(open_if_none=st.booleans())
    def start(self, open_if_none: bool) -> None:
        self.acls: set[AclBinding] = set()
        self.open_if_none = open_if_none
        self.authorizer = Authorizer(allow_everyone_if_no_acl_found=open_if_none)
        self.version = self.authorizer.version

    @rule(binding=bindings)
    def add(self, binding: AclBinding) -> None:
        changes = binding not in self.acls
        self.acls.add(binding)
        self.authorizer.update(self.acls)
        assert (self.authorizer.version > self.version) == changes
        self.version = self.authorizer.version

    @rule(data=st.data())
    def remove(self, data: st.DataObject) -> None:
        if self.acls:
            self.acls.discard(data.draw(st.sampled_from(sorted(self.acls))))
            self.authorizer.update(self.acls)
            assert self.authorizer.version > self.version
            self.version = self.authorizer.version

    @rule(request=requests)
    def check(self, request: tuple[str, str, OP, ResourceType, str]) -> None:
        assert self.authorizer.authorize(*request) == model(
            self.acls, frozenset(), self.open_if_none, request
        )

    @invariant()
    def same_set(self) -> None:
        if hasattr(self, "acls"):
            assert self.authorizer.bindings == self.acls


TestAclChanges = AclChanges.TestCase
TestAclChanges.settings = settings(max_examples=60, stateful_step_count=30)


# --- named cases -----------------------------------------------------------------------------------


def binding(
    name: str,
    principal: str,
    op: OP,
    permission: AclPermissionType = ALLOW,
    *,
    rtype: ResourceType = TOPIC,
    pattern: PatternType = PatternType.LITERAL,
    host: str = WILDCARD,
) -> AclBinding:
    return AclBinding(
        ResourcePattern(rtype, name, pattern), AccessControlEntry(principal, host, op, permission)
    )


@pytest.mark.parametrize("granted", [OP.READ, OP.WRITE, OP.DELETE, OP.ALTER, OP.ALL])
def test_describe_is_implied_by(granted: OP) -> None:
    authorizer = Authorizer(bindings=[binding("orders", "User:alice", granted)])
    assert authorizer.authorize("User:alice", "h", OP.DESCRIBE, TOPIC, "orders")
    assert not Authorizer(bindings=[binding("orders", "User:alice", OP.CREATE)]).authorize(
        "User:alice", "h", OP.DESCRIBE, TOPIC, "orders"
    )


def test_implied_describe_and_describe_configs() -> None:
    authorizer = Authorizer(
        bindings=[binding("orders", "User:alice", OP.WRITE), binding("orders", "User:bob", OP.ALTER_CONFIGS)]
    )
    assert authorizer.authorize("User:alice", "1.2.3.4", OP.DESCRIBE, TOPIC, "orders")
    assert not authorizer.authorize("User:alice", "1.2.3.4", OP.DESCRIBE_CONFIGS, TOPIC, "orders")
    assert authorizer.authorize("User:bob", "1.2.3.4", OP.DESCRIBE_CONFIGS, TOPIC, "orders")
    assert not authorizer.authorize("User:bob", "1.2.3.4", OP.DESCRIBE, TOPIC, "orders")
    # A DENY is never implied: denying READ leaves DESCRIBE to the WRITE allowance.
    authorizer.update([*authorizer.bindings, binding("orders", "User:alice", OP.READ, DENY)])
    assert authorizer.authorize("User:alice", "1.2.3.4", OP.DESCRIBE, TOPIC, "orders")


def test_no_acl_found_default_is_per_resource() -> None:
    closed = Authorizer(bindings=[binding("orders", "User:alice", OP.READ)])
    assert not closed.authorize("User:bob", "h", OP.READ, TOPIC, "other")
    opened = Authorizer(
        bindings=[binding("orders", "User:alice", OP.READ)], allow_everyone_if_no_acl_found=True
    )
    assert opened.authorize("User:bob", "h", OP.READ, TOPIC, "other")  # nobody has an ACL on it
    assert not opened.authorize("User:bob", "h", OP.READ, TOPIC, "orders")  # someone has


def test_by_resource_type_as_kafka() -> None:
    """InitProducerId's check: WRITE on some queue, not dominated by a DENY."""

    def some_write(*acls: AclBinding) -> bool:
        return Authorizer(bindings=acls).authorize_by_type("User:alice", "h", OP.WRITE, TOPIC)

    assert not some_write()
    assert some_write(binding("orders", "User:alice", OP.WRITE))
    assert some_write(binding("orders-", "User:alice", OP.ALL, pattern=PatternType.PREFIXED))
    assert not some_write(
        binding("orders", "User:alice", OP.WRITE), binding("orders", "User:alice", OP.WRITE, DENY)
    )
    assert not some_write(
        binding("orders-eu", "User:alice", OP.WRITE),
        binding("orders-", "User:alice", OP.WRITE, DENY, pattern=PatternType.PREFIXED),
    )
    # A prefixed DENY longer than the allowed prefix does not dominate it: orders-x is still writable.
    assert some_write(
        binding("orders-", "User:alice", OP.WRITE, pattern=PatternType.PREFIXED),
        binding("orders-eu", "User:alice", OP.WRITE, DENY, pattern=PatternType.PREFIXED),
    )
    assert not some_write(
        binding(WILDCARD, "User:*", OP.WRITE), binding(WILDCARD, "User:alice", OP.ALL, DENY)
    )
    assert some_write(binding(WILDCARD, "User:*", OP.WRITE))
    assert not some_write(binding("orders", "User:bob", OP.WRITE), binding("orders", "User:alice", OP.READ))
    assert Authorizer(super_users={"User:alice"}).authorize_by_type("User:alice", "h", OP.WRITE, TOPIC)


def test_authorized_operations_bitfield() -> None:
    authorizer = Authorizer(
        bindings=[binding("orders", "User:alice", OP.READ), binding("orders", "User:alice", OP.DELETE)]
    )
    ops = operations_of_bitfield(authorizer.authorized_operations("User:alice", "h", TOPIC, "orders"))
    assert ops == {OP.READ, OP.DELETE, OP.DESCRIBE}
    everything = Authorizer(super_users={"User:root"}).authorized_operations("User:root", "h", GROUP, "g")
    assert operations_of_bitfield(everything) == {
        OP.READ,
        OP.DESCRIBE,
        OP.DELETE,
        OP.DESCRIBE_CONFIGS,
        OP.ALTER_CONFIGS,
    }
    assert operations_bitfield([OP.READ, OP.WRITE]) == 0b11000


def test_filters_select_as_kafka() -> None:
    literal = binding("orders", "User:alice", OP.READ)
    wildcard = binding(WILDCARD, "User:bob", OP.WRITE)
    prefixed = binding("ord", "User:alice", OP.DESCRIBE, pattern=PatternType.PREFIXED)
    group = binding("orders", "User:alice", OP.READ, rtype=GROUP)
    everything = [literal, wildcard, prefixed, group]

    def selected(f: AclBindingFilter) -> list[AclBinding]:
        return [b for b in everything if f.matches(b)]

    assert selected(AclBindingFilter()) == everything
    assert selected(AclBindingFilter(TOPIC, "orders", PatternType.ANY)) == [literal]
    assert selected(AclBindingFilter(TOPIC, "orders", PatternType.MATCH)) == [literal, wildcard, prefixed]
    assert selected(AclBindingFilter(TOPIC, "ord", PatternType.PREFIXED)) == [prefixed]
    assert selected(AclBindingFilter(TOPIC, None, PatternType.LITERAL)) == [literal, wildcard]
    assert selected(AclBindingFilter(principal="User:alice", operation=OP.READ)) == [literal, group]
    assert selected(AclBindingFilter(host="10.0.0.1")) == []
    assert select_deletions(
        everything, [AclBindingFilter(principal="User:alice"), AclBindingFilter(TOPIC)]
    ) == [
        sorted([literal, prefixed, group]),
        [wildcard],
    ]


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (binding("", "User:a", OP.READ), "empty"),
        (binding("a/b", "User:a", OP.READ), "'/'"),
        (binding("..", "User:a", OP.READ), "'..'"),
        (binding("orders", "alice", OP.READ), "TYPE:NAME"),
        (binding("orders", "User:a", OP.ANY), "ANY is for filters"),
        (binding("orders", "User:a", OP.READ, AclPermissionType.ANY), "ALLOW or DENY"),
        (binding("orders", "User:a", OP.READ, pattern=PatternType.MATCH), "for filters"),
        (binding("main", "User:a", OP.ALTER, rtype=ResourceType.CLUSTER), CLUSTER_NAME),
        (binding("t", "User:a", OP.READ, rtype=ResourceType.DELEGATION_TOKEN), "cannot be bound"),
        (binding("orders", "User:a", OP.READ, host=""), "host is empty"),
    ],
)
def test_invalid_bindings_say_why(bad: AclBinding, reason: str) -> None:
    problem = binding_problem(bad)
    assert problem is not None
    assert reason in problem


def test_valid_bindings_and_filters() -> None:
    assert binding_problem(binding(CLUSTER_NAME, "User:ops", OP.ALTER, rtype=ResourceType.CLUSTER)) is None
    assert binding_problem(binding("orders-", "User:*", OP.ALL, pattern=PatternType.PREFIXED)) is None
    assert filter_problem(AclBindingFilter()) is None
    assert filter_problem(AclBindingFilter(operation=OP.UNKNOWN)) is not None


def test_names_in_every_spelling() -> None:
    for text in ("ClusterAction", "cluster-action", "CLUSTER_ACTION", "clusteraction"):
        assert parse_name(OP, text) == OP.CLUSTER_ACTION
    assert display_name(OP.IDEMPOTENT_WRITE) == "IdempotentWrite"
    assert display_name(ResourceType.TRANSACTIONAL_ID) == "TransactionalId"
    with pytest.raises(ValueError, match="unknown AclOperation"):
        parse_name(OP, "teleport")
