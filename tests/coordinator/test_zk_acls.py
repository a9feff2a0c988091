"""ACL bindings in ZooKeeper, against a real server: Kafka's znodes and change notifications, a change
made through one coordinator in force on another within a second, and what a restart or a lost session
reads back."""

from __future__ import annotations

import asyncio
import json
import time

from logq.coordinator import BrokerInfo
from logq.coordinator.zookeeper import ZooKeeperCoordinator
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
from tests.coordinator.test_zookeeper import cluster, end_session, eventually, raw_client, run

ORDERS = ResourcePattern(ResourceType.TOPIC, "orders")
ORDERS_PREFIX = ResourcePattern(ResourceType.TOPIC, "orders-", PatternType.PREFIXED)
BILLING = ResourcePattern(ResourceType.GROUP, "billing")


def allow(pattern: ResourcePattern, principal: str, op: AclOperation, host: str = "*") -> AclBinding:
    return AclBinding(pattern, AccessControlEntry(principal, host, op, AclPermissionType.ALLOW))


def deny(pattern: ResourcePattern, principal: str, op: AclOperation) -> AclBinding:
    return AclBinding(pattern, AccessControlEntry(principal, "*", op, AclPermissionType.DENY))


ALICE_READS = allow(ORDERS, "User:alice", AclOperation.READ)
BOB_WRITES = allow(ORDERS, "User:bob", AclOperation.WRITE, "10.0.0.1")
EVERYONE_DESCRIBES = allow(ORDERS_PREFIX, "User:*", AclOperation.DESCRIBE)
MALLORY_DENIED = deny(BILLING, "User:mallory", AclOperation.ALL)


def test_acls_are_kafka_znodes_and_reach_the_other_brokers_within_a_second(zk_connect: str) -> None:
    async def body() -> None:
        async with cluster(zk_connect) as c:
            one, two = await c.start(1), await c.start(2)
            seen: list[frozenset[AclBinding]] = []
            two.add_acl_listener(seen.append)

            started = time.monotonic()
            await one.create_acls([ALICE_READS, BOB_WRITES, EVERYONE_DESCRIBES, MALLORY_DENIED])
            wanted = {ALICE_READS, BOB_WRITES, EVERYONE_DESCRIBES, MALLORY_DENIED}
            assert one.acls() == wanted  # in force on the writer when the call returns
            await eventually(lambda: two.acls() == wanted, "broker 2 has the new ACLs", within=1.0)
            assert time.monotonic() - started < 1.0
            assert seen[-1] == wanted

            raw = await asyncio.to_thread(raw_client, zk_connect)
            try:
                orders = json.loads(raw.get("/kafka-acl/Topic/orders")[0])
                assert orders["version"] == 1
                assert sorted(orders["acls"], key=lambda a: a["principal"]) == [
                    {"principal": "User:alice", "permissionType": "Allow", "operation": "Read", "host": "*"},
                    {
                        "principal": "User:bob", "permissionType": "Allow", "operation": "Write",
                        "host": "10.0.0.1",
                    },
                ]  # fmt: skip
                prefixed = json.loads(raw.get("/kafka-acl-extended/prefixed/Topic/orders-")[0])
                assert prefixed["acls"] == [
                    {"principal": "User:*", "permissionType": "Allow", "operation": "Describe", "host": "*"}
                ]
                group = json.loads(raw.get("/kafka-acl/Group/billing")[0])
                assert group["acls"][0]["permissionType"] == "Deny"
                assert group["acls"][0]["operation"] == "All"
                literal_changes = raw.get_children("/kafka-acl-changes")
                assert all(c.startswith("acl_changes_") for c in literal_changes)
                named = {raw.get(f"/kafka-acl-changes/{c}")[0] for c in literal_changes}
                assert named == {b"Topic:orders", b"Group:billing"}
                (prefixed_change,) = raw.get_children("/kafka-acl-extended-changes")
                change = json.loads(raw.get(f"/kafka-acl-extended-changes/{prefixed_change}")[0])
                assert change == {
                    "version": 1, "resourceType": "Topic", "name": "orders-", "patternType": "PREFIXED"
                }  # fmt: skip
            finally:
                raw.stop()
                raw.close()

    run(body())


def test_delete_reports_per_filter_and_removes_empty_znodes(zk_connect: str) -> None:
    async def body() -> None:
        async with cluster(zk_connect) as c:
            one, two = await c.start(1), await c.start(2)
            await one.create_acls([ALICE_READS, BOB_WRITES, EVERYONE_DESCRIBES, MALLORY_DENIED])
            await eventually(lambda: len(two.acls()) == 4, "broker 2 has 4 ACLs")
            # A binding matched by two filters counts for the first; a MATCH filter finds the prefix.
            deleted = await two.delete_acls(
                [
                    AclBindingFilter(principal="User:alice"),
                    AclBindingFilter(resource_type=ResourceType.TOPIC, name="orders"),
                    AclBindingFilter(
                        resource_type=ResourceType.TOPIC, name="orders-eu", pattern_type=PatternType.MATCH
                    ),
                    AclBindingFilter(resource_type=ResourceType.GROUP, name="nothing-here"),
                ]
            )
            assert deleted == [[ALICE_READS], [BOB_WRITES], [EVERYONE_DESCRIBES], []]
            assert two.acls() == {MALLORY_DENIED}
            await eventually(lambda: one.acls() == {MALLORY_DENIED}, "broker 1 sees the deletion", within=1.0)
            raw = await asyncio.to_thread(raw_client, zk_connect)
            try:
                assert raw.exists("/kafka-acl/Topic/orders") is None
                assert raw.exists("/kafka-acl-extended/prefixed/Topic/orders-") is None
                assert raw.exists("/kafka-acl/Group/billing") is not None
            finally:
                raw.stop()
                raw.close()

    run(body())


def test_acls_written_by_kafka_tooling_are_read(zk_connect: str) -> None:
    """Another writer of Kafka's format (e.g. kafka-acls.sh --authorizer-properties zookeeper.connect=...)
    is picked up through its change notification; entries logq does not know are skipped."""

    async def body() -> None:
        async with cluster(zk_connect) as c:
            one = await c.start(1)
            raw = await asyncio.to_thread(raw_client, zk_connect)
            try:
                carol = {"principal": "User:carol", "permissionType": "Allow", "host": "*"}
                acls = {
                    "version": 1,
                    "acls": [{**carol, "operation": "Write"}, {**carol, "operation": "Teleport"}],
                }
                raw.create("/kafka-acl/Topic/audit", json.dumps(acls).encode(), makepath=True)
                raw.create("/kafka-acl-changes/acl_changes_", b"Topic:audit", sequence=True)
                audit = allow(ResourcePattern(ResourceType.TOPIC, "audit"), "User:carol", AclOperation.WRITE)
                await eventually(lambda: one.acls() == {audit}, "the ACL written by another tool", within=1.0)
            finally:
                raw.stop()
                raw.close()

    run(body())


def test_restart_and_lost_session_read_every_acl_again(zk_connect: str) -> None:
    async def body() -> None:
        async with cluster(zk_connect) as c:
            one, two = await c.start(1), await c.start(2)
            await one.create_acls([ALICE_READS, EVERYONE_DESCRIBES])
            fresh = ZooKeeperCoordinator(zk_connect, BrokerInfo(3, "127.0.0.1", 9003))
            c.members.append(fresh)
            await fresh.start()
            assert fresh.acls() == {ALICE_READS, EVERYONE_DESCRIBES}  # loaded before start() returns

            # Broker 2 loses its session; changes made meanwhile are read when it is back.
            await asyncio.to_thread(end_session, zk_connect, two)
            await one.delete_acls([AclBindingFilter(principal="User:alice")])
            await one.create_acls([MALLORY_DENIED])
            await eventually(
                lambda: two.acls() == {EVERYONE_DESCRIBES, MALLORY_DENIED}, "broker 2 caught up", within=10
            )

    run(body())
