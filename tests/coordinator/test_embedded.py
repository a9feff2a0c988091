"""The standalone broker's coordinator: queue ids given at creation and kept in coordinator.json."""

from __future__ import annotations

import asyncio
from pathlib import Path

from logq.coordinator import BrokerInfo
from logq.coordinator.embedded import EmbeddedCoordinator

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
