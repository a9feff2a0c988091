"""The standalone broker's coordinator: queue ids given at creation and kept in coordinator.json, and grown
queues' partition counts."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from logq.coordinator import BrokerInfo
from logq.coordinator.embedded import EmbeddedCoordinator
from logq.errors import InvalidPartitionsError, InvalidReplicaAssignmentError, UnknownQueueError

BROKER = BrokerInfo(0, "127.0.0.1", 9092)


def test_queue_ids_are_new_for_every_creation_and_survive_a_restart(tmp_path: Path) -> None:
    async def body() -> None:
        first = EmbeddedCoordinator(tmp_path, BROKER)
        await first.start()
        orders = await first.create_queue("orders", 2, 1, {})
        other = await first.create_queue("other", 1, 1, {})
        assert len(orders.queue_id) == 32
        assert orders.queue_id != other.queue_id
        again = EmbeddedCoordinator(tmp_path, BROKER)
        await again.start()
        assert again.queues()["orders"].queue_id == orders.queue_id
        await again.delete_queue("orders")
        reborn = await again.create_queue("orders", 2, 1, {})
        assert reborn.queue_id not in ("", orders.queue_id)

    asyncio.run(body())


def test_acls_are_kept_in_coordinator_json_and_survive_a_restart(tmp_path: Path) -> None:
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

    read = AclBinding(
        ResourcePattern(ResourceType.TOPIC, "orders"),
        AccessControlEntry("User:alice", "*", AclOperation.READ, AclPermissionType.ALLOW),
    )
    prefixed = AclBinding(
        ResourcePattern(ResourceType.GROUP, "billing-", PatternType.PREFIXED),
        AccessControlEntry("User:*", "10.0.0.1", AclOperation.ALL, AclPermissionType.DENY),
    )

    async def body() -> None:
        first = EmbeddedCoordinator(tmp_path, BROKER)
        await first.start()
        seen: list[frozenset[AclBinding]] = []
        first.add_acl_listener(seen.append)
        await first.create_acls([read, prefixed])
        assert first.acls() == {read, prefixed}
        assert seen == [{read, prefixed}]
        await first.create_acls([read])  # nothing new: no change, no call
        assert len(seen) == 1
        stored = json.loads((tmp_path / "coordinator.json").read_text())["acls"]
        assert {
            "resource_type": "Group", "name": "billing-", "pattern_type": "Prefixed", "principal": "User:*",
            "host": "10.0.0.1", "operation": "All", "permission": "Deny",
        } in stored  # fmt: skip

        again = EmbeddedCoordinator(tmp_path, BROKER)
        await again.start()
        assert again.acls() == {read, prefixed}
        deleted = await again.delete_acls([AclBindingFilter(principal="User:alice"), AclBindingFilter()])
        assert deleted == [[read], [prefixed]]
        third = EmbeddedCoordinator(tmp_path, BROKER)
        await third.start()
        assert third.acls() == frozenset()

    asyncio.run(body())


def test_a_grown_queue_keeps_its_count_id_and_settings_across_a_restart(tmp_path: Path) -> None:
    async def body() -> None:
        first = EmbeddedCoordinator(tmp_path, BROKER)
        seen: list[int] = []
        first.add_listener(lambda snapshot: seen.append(len(snapshot["orders"].partitions)))
        await first.start()
        orders = await first.create_queue("orders", 2, 1, {"retention.ms": "60000"})
        grown = await first.add_partitions("orders", 5, None)
        assert [p.replicas for p in grown.partitions] == [(0,)] * 5
        assert seen == [2, 5]
        assert (await first.add_partitions("orders", 6, [[0]])).partitions[5].leader == 0
        refusals = (
            (3, None, InvalidPartitionsError),
            (6, None, InvalidPartitionsError),
            (8, [[0]], InvalidReplicaAssignmentError),
            (7, [[1]], InvalidReplicaAssignmentError),
        )
        for total, assignments, error in refusals:
            with pytest.raises(error):
                await first.add_partitions("orders", total, assignments)
        with pytest.raises(UnknownQueueError):
            await first.add_partitions("nope", 3, None)
        again = EmbeddedCoordinator(tmp_path, BROKER)
        await again.start()
        after = again.queues()["orders"]
        assert len(after.partitions) == 6
        assert after.queue_id == orders.queue_id
        assert dict(after.settings) == {"retention.ms": "60000"}
        assert json.loads((tmp_path / "coordinator.json").read_text())["queues"]["orders"]["partitions"] == 6

    asyncio.run(body())


def test_settings_changed_after_creation_are_kept_in_coordinator_json(tmp_path: Path) -> None:
    from logq.dynamic_settings import DynamicBrokerSettings

    async def body() -> None:
        first = EmbeddedCoordinator(tmp_path, BROKER)
        await first.start()
        created = await first.create_queue("orders", 2, 1, {"retention.ms": "1000"})
        snapshots: list[dict[str, str]] = []
        first.add_listener(lambda queues: snapshots.append(dict(queues["orders"].settings)))
        changes: list[DynamicBrokerSettings] = []
        first.add_broker_settings_listener(changes.append)
        altered = await first.alter_queue_settings("orders", {"segment.ms": "60000"})
        assert dict(altered.settings) == {"segment.ms": "60000"}
        assert (altered.queue_id, altered.partitions) == (created.queue_id, created.partitions)
        assert snapshots == [{"segment.ms": "60000"}]
        await first.alter_broker_settings(None, {"retention.ms": "5000"})
        await first.alter_broker_settings(0, {"segment.bytes": "1000000"})
        assert changes[-1] == first.broker_settings()
        assert first.broker_settings().for_broker(0) == {"retention.ms": "5000", "segment.bytes": "1000000"}
        stored = json.loads((tmp_path / "coordinator.json").read_text())
        assert stored["broker_settings"] == {
            "<default>": {"retention.ms": "5000"},
            "0": {"segment.bytes": "1000000"},
        }
        again = EmbeddedCoordinator(tmp_path, BROKER)
        await again.start()
        assert dict(again.queues()["orders"].settings) == {"segment.ms": "60000"}
        assert again.broker_settings() == first.broker_settings()
        await again.alter_broker_settings(0, {})  # an empty level is forgotten
        assert again.broker_settings().per_broker == {}

    asyncio.run(body())
