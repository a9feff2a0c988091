"""``logq acl add|list|remove``: the ACLs of a broker with an authorizer, with kafka-acls.sh's flags."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import click

from logq.client.sync_admin import Admin
from logq.security.acl import (
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
    parse_name,
)
from logq_cli.common import client_options, one_line_errors, print_json, print_table, settings

_OPERATIONS = "read, write, create, delete, alter, describe, cluster-action, describe-configs, alter-configs, idempotent-write, all"  # noqa: E501


def _resource_options(func: Any) -> Any:
    """The resources an ACL or a filter names, and principals, hosts and operations."""
    options = [
        click.option(
            "--queue", "--topic", "queues", multiple=True, metavar="QUEUE", help="A queue; repeatable."
        ),
        click.option(
            "--group", "groups", multiple=True, metavar="GROUP", help="A consumer group; repeatable."
        ),
        click.option("--cluster", is_flag=True, help="The cluster (queue creation, ACL management, ...)."),
        click.option(
            "--transactional-id", "transactional_ids", multiple=True, metavar="ID", help="A transactional id."
        ),
        click.option(
            "--operation",
            "operations",
            multiple=True,
            metavar="OP",
            help=f"Repeatable: {_OPERATIONS}.",
        ),
        click.option("--allow-principal", "allow_principals", multiple=True, metavar="TYPE:NAME"),
        click.option("--deny-principal", "deny_principals", multiple=True, metavar="TYPE:NAME"),
        click.option("--allow-host", "allow_hosts", multiple=True, metavar="IP"),
        click.option("--deny-host", "deny_hosts", multiple=True, metavar="IP"),
    ]
    for option in reversed(options):
        func = option(func)
    return func


_PATTERN_HELP = "literal: the exact name (or * for every name); prefixed: every name starting with it"
_FILTER_HELP = "; any: literal or prefixed, this exact name; match: every ACL that applies to the name"


def _pattern_option(choices: Sequence[str]) -> Callable[[Any], Any]:
    return click.option(
        "--resource-pattern-type",
        "pattern_type",
        type=click.Choice(choices, case_sensitive=False),
        default="literal",
        show_default=True,
        help=_PATTERN_HELP + (_FILTER_HELP if "match" in choices else "") + ".",
    )


def _resources(
    queues: Sequence[str], groups: Sequence[str], cluster: bool, transactional_ids: Sequence[str]
) -> list[tuple[ResourceType, str]]:
    return [
        *((ResourceType.TOPIC, q) for q in queues),
        *((ResourceType.GROUP, g) for g in groups),
        *([(ResourceType.CLUSTER, CLUSTER_NAME)] if cluster else []),
        *((ResourceType.TRANSACTIONAL_ID, t) for t in transactional_ids),
    ]


def _operations(names: Sequence[str], default: Sequence[AclOperation]) -> list[AclOperation]:
    out: list[AclOperation] = []
    for name in names:
        try:
            op = parse_name(AclOperation, name)
        except ValueError:
            op = AclOperation.UNKNOWN
        if op in (
            AclOperation.UNKNOWN,
            AclOperation.ANY,
            AclOperation.CREATE_TOKENS,
            AclOperation.DESCRIBE_TOKENS,
        ):
            raise click.ClickException(f"unknown operation {name!r}: one of {_OPERATIONS}")
        out.append(op)
    return out or list(default)


def _who(
    allow_principals: Sequence[str],
    deny_principals: Sequence[str],
    allow_hosts: Sequence[str],
    deny_hosts: Sequence[str],
    default_host: str | None,
) -> list[tuple[str, str | None, AclPermissionType]]:
    """(principal, host, permission) for every --allow-/--deny-principal and its hosts."""
    if allow_hosts and not allow_principals:
        raise click.ClickException("--allow-host needs --allow-principal")
    if deny_hosts and not deny_principals:
        raise click.ClickException("--deny-host needs --deny-principal")
    allow_at: list[str | None] = [*allow_hosts] or [default_host]
    deny_at: list[str | None] = [*deny_hosts] or [default_host]
    allowed = [(p, h, AclPermissionType.ALLOW) for p in allow_principals for h in allow_at]
    denied = [(p, h, AclPermissionType.DENY) for p in deny_principals for h in deny_at]
    return allowed + denied


def _rows(bindings: Sequence[AclBinding]) -> list[dict[str, str]]:
    return [
        {
            "resource_type": b.pattern.resource_type.name,
            "resource": b.pattern.name,
            "pattern_type": b.pattern.pattern_type.name,
            "principal": b.entry.principal,
            "host": b.entry.host,
            "operation": b.entry.operation.name,
            "permission": b.entry.permission.name,
        }
        for b in bindings
    ]


def _show(bindings: Sequence[AclBinding], fmt: str, key: str = "acls") -> None:
    if fmt == "json":
        print_json({key: _rows(bindings)})
        return
    print_table(
        ["RESOURCE", "PATTERN", "PRINCIPAL", "HOST", "OPERATION", "PERMISSION"],
        [
            [
                f"{b.pattern.resource_type.name}:{b.pattern.name}",
                b.pattern.pattern_type.name,
                b.entry.principal,
                b.entry.host,
                b.entry.operation.name,
                b.entry.permission.name,
            ]
            for b in bindings
        ],
    )


@click.group()
def acl() -> None:
    """Who may do what: the ACLs of brokers with authorizer.enable = true (docs/security.md).

    \b
    Examples:
      logq acl add --allow-principal User:alice --operation write --queue orders
      logq acl list --queue orders
      logq acl remove --allow-principal User:alice --operation write --queue orders --yes
    """


@acl.command("add")
@_resource_options
@_pattern_option(("literal", "prefixed"))
@client_options
@click.pass_context
def acl_add(ctx: click.Context, /, *, pattern_type: str, **flags: Any) -> None:
    """Allow or deny principals operations on queues, groups, the cluster or transactional ids: one ACL
    per principal, host, operation and resource. --operation defaults to all, hosts to * (any), as
    kafka-acls.sh does. Needs ALTER on the cluster.

    \b
    Examples:
      logq acl add --allow-principal User:alice --operation write --queue orders
      logq acl add --allow-principal User:bob --operation read --queue orders --group billing
      logq acl add --allow-principal 'User:*' --operation describe --queue orders- \\
          --resource-pattern-type prefixed
      logq acl add --deny-principal User:mallory --deny-host 10.0.0.7 --operation all --queue orders
      logq acl add --allow-principal User:ops --operation alter --operation create --cluster
    """
    opts = settings(ctx)
    resources = _resources(flags["queues"], flags["groups"], flags["cluster"], flags["transactional_ids"])
    if not resources:
        raise click.ClickException("name a resource: --queue, --group, --cluster or --transactional-id")
    who = _who(
        flags["allow_principals"],
        flags["deny_principals"],
        flags["allow_hosts"],
        flags["deny_hosts"],
        WILDCARD,
    )
    if not who:
        raise click.ClickException(
            "name a principal: --allow-principal or --deny-principal (e.g. User:alice)"
        )
    operations = _operations(flags["operations"], [AclOperation.ALL])
    pattern = parse_name(PatternType, pattern_type)
    bindings = sorted(
        {
            AclBinding(
                ResourcePattern(
                    rtype, name, pattern if rtype != ResourceType.CLUSTER else PatternType.LITERAL
                ),
                AccessControlEntry(principal, WILDCARD if host is None else host, op, permission),
            )
            for rtype, name in resources
            for principal, host, permission in who
            for op in operations
        }
    )
    for binding in bindings:
        problem = binding_problem(binding)
        if problem is not None:
            raise click.ClickException(f"cannot add {binding}: {problem}")
    with one_line_errors(opts.bootstrap), Admin(opts.bootstrap, **opts.security()) as admin:
        admin.create_acls(bindings)
    if opts.fmt == "json":
        print_json({"added": _rows(bindings)})
    else:
        click.echo(f"added {len(bindings)} ACL(s):")
        _show(bindings, opts.fmt)


def _filters(flags: dict[str, Any], pattern_type: str) -> list[AclBindingFilter]:
    """One filter per resource x principal/host x operation named; what is not named matches anything."""
    resources = _resources(flags["queues"], flags["groups"], flags["cluster"], flags["transactional_ids"])
    pattern = parse_name(PatternType, pattern_type)
    wanted: list[tuple[ResourceType, str | None, PatternType]] = [
        (rtype, name, pattern if rtype != ResourceType.CLUSTER else PatternType.LITERAL)
        for rtype, name in resources
    ] or [(ResourceType.ANY, None, PatternType.ANY)]
    who: list[tuple[str | None, str | None, AclPermissionType]] = [
        *_who(
            flags["allow_principals"],
            flags["deny_principals"],
            flags["allow_hosts"],
            flags["deny_hosts"],
            None,
        )
    ]
    principal = flags.get("principal")
    if principal:
        who.append((principal, None, AclPermissionType.ANY))
    if not who:
        who = [(None, None, AclPermissionType.ANY)]
    operations: list[AclOperation] = _operations(flags["operations"], [AclOperation.ANY])
    return [
        AclBindingFilter(rtype, name, ptype, p, host, op, permission)
        for rtype, name, ptype in wanted
        for p, host, permission in who
        for op in operations
    ]


def _matching(admin: Admin, filters: Sequence[AclBindingFilter]) -> list[AclBinding]:
    found: set[AclBinding] = set()
    for f in filters:
        found.update(admin.describe_acls(f))
    return sorted(found)


@acl.command("list")
@_resource_options
@click.option("--principal", metavar="TYPE:NAME", help="Only the ACLs of this principal.")
@_pattern_option(("literal", "prefixed", "any", "match"))
@client_options
@click.pass_context
def acl_list(ctx: click.Context, /, *, pattern_type: str, **flags: Any) -> None:
    """List ACLs: all of them, or those of the resources, principals and operations named. Needs DESCRIBE
    on the cluster.

    \b
    Examples:
      logq acl list
      logq acl list --queue orders
      logq acl list --queue orders-eu --resource-pattern-type match   # every ACL that applies to it
      logq acl list --principal User:alice --format json
    """
    opts = settings(ctx)
    filters = _filters(flags, pattern_type)
    with one_line_errors(opts.bootstrap), Admin(opts.bootstrap, **opts.security()) as admin:
        bindings = _matching(admin, filters)
    _show(bindings, opts.fmt)


@acl.command("remove")
@_resource_options
@click.option("--principal", metavar="TYPE:NAME", help="Every ACL of this principal (allow and deny).")
@_pattern_option(("literal", "prefixed", "any", "match"))
@click.option("--yes", "--force", "yes", is_flag=True, help="Do not ask for confirmation.")
@client_options
@click.pass_context
def acl_remove(ctx: click.Context, /, *, pattern_type: str, yes: bool, **flags: Any) -> None:
    """Remove the ACLs that match: of the resources, principals, hosts and operations named (what is not
    named matches anything). Shows them and asks first unless --yes. Needs ALTER on the cluster.

    \b
    Examples:
      logq acl remove --allow-principal User:alice --operation write --queue orders
      logq acl remove --queue orders --yes                  # every ACL of queue orders
      logq acl remove --principal User:bob --yes            # every ACL of User:bob
    """
    opts = settings(ctx)
    filters = _filters(flags, pattern_type)
    if not any(
        flags[k]
        for k in ("queues", "groups", "cluster", "transactional_ids", "allow_principals", "deny_principals")
    ) and not flags.get("principal"):
        raise click.ClickException(
            "name what to remove: a resource (--queue, --group, --cluster, --transactional-id) or a principal"
        )
    with one_line_errors(opts.bootstrap), Admin(opts.bootstrap, **opts.security()) as admin:
        matching = _matching(admin, filters)
        if not matching:
            click.echo("no ACL matches: nothing removed")
            return
        if not yes:
            _show(matching, "table")
            click.confirm(f"Remove these {len(matching)} ACL(s)?", abort=True)
        removed = admin.delete_acls(filters)
    if opts.fmt == "json":
        print_json({"removed": _rows(removed)})
    else:
        click.echo(f"removed {len(removed)} ACL(s)")
