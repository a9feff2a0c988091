"""Growing a queue through real ZooKeeper coordinators: any broker writes the assignment znode
(conditionally: of two growths to the same count one wins, the other is refused), the controller creates
the new partitions' states, and no broker's snapshot ever loses the queue or its old partitions while
that happens. The znode keeps its other keys."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping

import pytest

from logq.coordinator import QueueMetadata
from logq.coordinator.zk_layout import topic_path
from logq.errors import InvalidPartitionsError, InvalidReplicaAssignmentError, UnknownQueueError
from tests.coordinator.test_zookeeper import cluster, eventually, raw_client, run


def test_a_queue_grows_on_every_broker_without_disappearing(zk_connect: str) -> None:
    async def body() -> None:
        async with cluster(zk_connect) as c:
            members = [await c.start(i) for i in (1, 2, 3)]
            counts: dict[int, list[int]] = {m.broker_id: [] for m in members}

            def recorder(broker_id: int) -> object:
                def listener(snapshot: Mapping[str, QueueMetadata]) -> None:
                    queue = snapshot.get("g")
                    if queue is not None or counts[broker_id]:
                        counts[broker_id].append(0 if queue is None else len(queue.partitions))

                return listener

            for member in members:
                member.add_listener(recorder(member.broker_id))  # type: ignore[arg-type]
            await members[0].create_queue("g", 2, 2, {"retention.ms": "60000"})
            raw = await asyncio.to_thread(raw_client, zk_connect)
            try:
                data = json.loads(raw.get(topic_path("g"))[0])
                # a key this version does not know (a newer broker's) survives the rewrite
                raw.set(topic_path("g"), json.dumps({**data, "future_key": 7}).encode())
                controller = next(m for m in members if m.is_controller)
                other = next(m for m in members if not m.is_controller)
                grown = await other.add_partitions("g", 5, None)
                assert len(grown.partitions) == 5
                assert all(len(p.replicas) == 2 and p.leader in p.replicas for p in grown.partitions)
                await c.agreed("five partitions everywhere", lambda m: len(m.queues()["g"].partitions) == 5)
                after = json.loads(raw.get(topic_path("g"))[0])
                assert after["future_key"] == 7
                assert after["settings"] == {"retention.ms": "60000"}
                assert len(after["partitions"]) == 5
            finally:
                raw.stop()
                raw.close()
            for broker_id, seen in counts.items():
                assert 0 not in seen, f"broker {broker_id} lost the queue while it grew: {seen}"
                assert seen == sorted(seen), (broker_id, seen)
                assert seen[-1] == 5, (broker_id, seen)

            # two growths to the same count at once: one writes, the other finds it already done
            results = await asyncio.gather(
                controller.add_partitions("g", 7, None),
                other.add_partitions("g", 7, None),
                return_exceptions=True,
            )
            refused = [r for r in results if isinstance(r, Exception)]
            assert len(refused) == 1, results
            assert isinstance(refused[0], InvalidPartitionsError), results
            assert "already has 7" in str(refused[0])
            await c.agreed("seven partitions everywhere", lambda m: len(m.queues()["g"].partitions) == 7)

            placed = await other.add_partitions("g", 8, [[3, 1]])
            assert placed.partitions[7].replicas == (3, 1)
            with pytest.raises(InvalidReplicaAssignmentError, match="not live"):
                await other.add_partitions("g", 9, [[4, 1]])
            with pytest.raises(UnknownQueueError):
                await other.add_partitions("nope", 3, None)
            await eventually(lambda: len(members[2].queues()["g"].partitions) == 8, "eight on broker 3")

    run(body(), timeout=60)
