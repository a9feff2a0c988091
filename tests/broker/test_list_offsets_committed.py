"""ListOffsets on a leader whose followers have not copied the newest batch yet (three in-process brokers
on real logs, logq.testing.cluster): lookups by timestamp and MAX_TIMESTAMP answer from committed data
only, as Kafka does for consumers."""

from __future__ import annotations

import asyncio
from pathlib import Path

from logq import batch as rb
from logq.broker.partition import MAX_TIMESTAMP, Origin
from tests.broker.test_replication_in_process import cluster, run


def batch_of(timestamps: list[int]) -> bytes:
    records = [rb.Record(value=b"v", timestamp=t) for t in timestamps]
    return rb.build_batch(records, base_timestamp=timestamps[0])


def test_uncommitted_records_are_not_answered(tmp_path: Path) -> None:
    async def scenario() -> None:
        _, brokers, _ = await cluster(tmp_path)
        leader = brokers[1].partition("q", 0)

        async def replicate() -> None:
            for _ in range(2):  # the second fetch tells the leader what the first one copied
                for follower in (2, 3):
                    await brokers[follower].replicate_from(brokers[1], "q", 0)
            await asyncio.sleep(0)

        leader.append_as_leader(batch_of([1_000, 4_000, 2_000]), acks=1, origin=Origin.CLIENT)  # 0-2
        await replicate()
        assert leader.high_watermark == 3
        leader.append_as_leader(batch_of([9_000, 3_000]), acks=1, origin=Origin.CLIENT)  # 3-4: not copied
        assert leader.high_watermark == 3
        assert (await leader.list_offset(MAX_TIMESTAMP))[:2] == (1, 4_000)
        assert (await leader.list_offset(5_000))[:2] == (-1, -1)  # offset 3 has 9_000, but uncommitted
        assert (await leader.list_offset(-1))[0] == 3
        await replicate()
        assert leader.high_watermark == 5
        assert (await leader.list_offset(MAX_TIMESTAMP))[:2] == (3, 9_000)
        assert (await leader.list_offset(5_000))[:2] == (3, 9_000)
        for broker in brokers.values():
            broker.close()

    run(scenario)
