"""``logq acl add|list|remove`` and the principal-based refusal of ``logq admin delete-queue``, against a
real broker with an authorizer (every client is User:ANONYMOUS, granted ALTER on the cluster only)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner, Result

from logq.client.sync_admin import Admin
from logq_cli.main import main
from tests.broker.test_authorization import start_with_admin_acl
from tests.broker_process import BrokerProcess
from tests.commands.test_admin_cli import assert_one_line_error


@pytest.fixture(scope="module")
def acl_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    proc = start_with_admin_acl(tmp_path_factory.mktemp("acl-cli") / "data")
    yield proc
    proc.kill()


def run(broker: BrokerProcess, *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(main, ["-b", broker.bootstrap, *args], input=input)


def run_json(broker: BrokerProcess, *args: str) -> Any:
    result = run(broker, "--format", "json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def row(resource: str, principal: str, operation: str, **extra: str) -> dict[str, str]:
    rtype, _, name = resource.partition(":")
    return {
        "resource_type": rtype, "resource": name, "pattern_type": extra.get("pattern_type", "LITERAL"),
        "principal": principal, "host": extra.get("host", "*"), "operation": operation,
        "permission": extra.get("permission", "ALLOW"),
    }  # fmt: skip


def test_add_list_remove(acl_broker: BrokerProcess) -> None:
    added = run(
        acl_broker, "acl", "add", "--allow-principal", "User:alice",
        "--operation", "write", "--operation", "Read", "--queue", "orders",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    assert "added 2 ACL(s)" in added.output
    assert "TOPIC:orders" in added.output
    prefixed = run_json(
        acl_broker, "acl", "add", "--deny-principal", "User:mallory", "--deny-host", "10.0.0.7",
        "--operation", "cluster-action", "--topic", "orders-", "--resource-pattern-type", "prefixed",
    )  # fmt: skip
    mallory = row(
        "TOPIC:orders-", "User:mallory", "CLUSTER_ACTION", pattern_type="PREFIXED", host="10.0.0.7",
        permission="DENY",
    )  # fmt: skip
    assert prefixed == {"added": [mallory]}
    assert run_json(acl_broker, "acl", "list", "--queue", "orders")["acls"] == [
        row("TOPIC:orders", "User:alice", "READ"),
        row("TOPIC:orders", "User:alice", "WRITE"),
    ]
    applying = run_json(acl_broker, "acl", "list", "--queue", "orders-eu", "--resource-pattern-type", "match")
    assert applying["acls"] == [mallory]
    everything = run_json(acl_broker, "acl", "list")["acls"]
    assert row("CLUSTER:kafka-cluster", "User:ANONYMOUS", "ALTER") in everything
    assert run_json(acl_broker, "acl", "list", "--principal", "User:mallory")["acls"] == [mallory]
    table = run(acl_broker, "acl", "list", "--queue", "orders")
    assert table.output.splitlines()[0].split() == [
        "RESOURCE",
        "PATTERN",
        "PRINCIPAL",
        "HOST",
        "OPERATION",
        "PERMISSION",
    ]

    declined = run(acl_broker, "acl", "remove", "--queue", "orders", input="n\n")
    assert "Remove these 2 ACL(s)?" in declined.output
    assert_one_line_error(declined)
    assert len(run_json(acl_broker, "acl", "list", "--queue", "orders")["acls"]) == 2
    one = run(
        acl_broker,
        "acl",
        "remove",
        "--allow-principal",
        "User:alice",
        "--operation",
        "write",
        "--queue",
        "orders",
        "--yes",
    )
    assert one.exit_code == 0, one.output
    assert "removed 1 ACL(s)" in one.output
    assert run_json(acl_broker, "acl", "list", "--queue", "orders")["acls"] == [
        row("TOPIC:orders", "User:alice", "READ")
    ]
    rest = run_json(
        acl_broker, "acl", "remove", "--principal", "User:mallory", "--resource-pattern-type", "any", "--yes"
    )
    assert rest == {"removed": [mallory]}
    nothing = run(acl_broker, "acl", "remove", "--principal", "User:nobody", "--yes")
    assert nothing.exit_code == 0
    assert "no ACL matches" in nothing.output


def test_bad_input_is_one_line(acl_broker: BrokerProcess, broker: BrokerProcess) -> None:
    assert_one_line_error(
        run(acl_broker, "acl", "add", "--allow-principal", "User:a", "--operation", "wirte", "--queue", "q"),
        "unknown operation 'wirte'",
    )
    assert_one_line_error(run(acl_broker, "acl", "add", "--allow-principal", "User:a"), "name a resource")
    assert_one_line_error(run(acl_broker, "acl", "add", "--queue", "q"), "name a principal")
    assert_one_line_error(
        run(acl_broker, "acl", "add", "--allow-principal", "alice", "--queue", "q"), "TYPE:NAME"
    )
    assert_one_line_error(
        run(acl_broker, "acl", "add", "--allow-principal", "User:a", "--allow-host", "", "--queue", "q"),
        "host is empty",
    )
    assert_one_line_error(run(acl_broker, "acl", "remove", "--operation", "read"), "name what to remove")
    assert_one_line_error(
        run(
            acl_broker, "acl", "add", "--deny-host", "10.0.0.1", "--allow-principal", "User:a", "--queue", "q"
        ),
        "--deny-host needs --deny-principal",
    )
    # A broker without an authorizer says so.
    assert_one_line_error(
        run(broker, "acl", "add", "--allow-principal", "User:a", "--queue", "q"),
        "no authorizer is configured on this broker (authorizer.enable = false)",
    )
    assert_one_line_error(run(broker, "acl", "list"), "no authorizer is configured")


def test_delete_queue_names_who_was_refused_before_asking(acl_broker: BrokerProcess) -> None:
    granted = run(
        acl_broker, "acl", "add", "--allow-principal", "User:ANONYMOUS",
        "--operation", "create", "--operation", "describe", "--queue", "kept",
    )  # fmt: skip
    assert granted.exit_code == 0, granted.output
    assert run(acl_broker, "queue", "create", "kept").exit_code == 0
    why = "User:ANONYMOUS may not delete queue kept (needs DELETE on TOPIC:kept)"
    refused = run(acl_broker, "admin", "delete-queue", "kept", input="y\n")
    assert_one_line_error(refused, why)
    assert "Delete queue" not in refused.output  # refused before the question
    with Admin(acl_broker.bootstrap) as admin:
        assert admin.may_delete_queue("kept") == (False, why)
        # A queue it may not even see is refused the same way, whether or not it exists.
        hidden = admin.may_delete_queue("invisible")
        assert hidden == (
            False,
            "User:ANONYMOUS may not delete queue invisible (needs DELETE on TOPIC:invisible)",
        )

    assert (
        run(
            acl_broker,
            "acl",
            "add",
            "--allow-principal",
            "User:ANONYMOUS",
            "--operation",
            "delete",
            "--queue",
            "kept",
        ).exit_code
        == 0
    )
    deleted = run(acl_broker, "admin", "delete-queue", "kept", input="y\n")
    assert deleted.exit_code == 0, deleted.output
    assert "deleted queue kept" in deleted.output


def test_admin_client_manages_acls(acl_broker: BrokerProcess) -> None:
    from logq.errors import BrokerError
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

    carol = AclBinding(
        ResourcePattern(ResourceType.GROUP, "team-", PatternType.PREFIXED),
        AccessControlEntry("User:carol", "*", AclOperation.READ, AclPermissionType.ALLOW),
    )
    with Admin(acl_broker.bootstrap) as admin:
        assert admin.principal == "User:ANONYMOUS"
        admin.create_acls([carol])
        assert admin.describe_acls(AclBindingFilter(principal="User:carol")) == [carol]
        assert admin.delete_acls([AclBindingFilter(principal="User:carol")]) == [carol]
        assert admin.describe_acls(AclBindingFilter(principal="User:carol")) == []
        bad = AclBinding(
            ResourcePattern(ResourceType.CLUSTER, "main"),
            AccessControlEntry("User:carol", "*", AclOperation.ALTER, AclPermissionType.ALLOW),
        )
        with pytest.raises(BrokerError, match="the only name of the CLUSTER resource is 'kafka-cluster'"):
            admin.create_acls([bad])


def test_unauthorized_produce_and_consume_are_one_line(acl_broker: BrokerProcess) -> None:
    # logq's producer is idempotent by default: with WRITE on no queue at all, it gets no producer id.
    no_id = run(acl_broker, "produce", "secret-q", input="hello\n")
    assert_one_line_error(no_id, "ACLs refuse this idempotent producer an id", "enable_idempotence=False")
    writes = run(
        acl_broker,
        "acl",
        "add",
        "--allow-principal",
        "User:ANONYMOUS",
        "--operation",
        "write",
        "--queue",
        "other-q",
    )
    assert writes.exit_code == 0, writes.output
    produced = run(acl_broker, "produce", "secret-q", input="hello\n")
    assert_one_line_error(produced, "'secret-q'", "ACLs do not let this client use it")
    consumed = run(acl_broker, "consume", "secret-q", "-e")
    assert_one_line_error(consumed, "'secret-q'", "ACLs do not let this client use it")
