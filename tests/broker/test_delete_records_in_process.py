"""DeleteRecords on the leader of an in-process three-broker cluster (logq.testing.cluster): the answer
waits for the low watermark, the smallest log start over the ISR, and times out without it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from logq.broker.partition import Origin
from logq.error_codes import ErrorCode
from logq.errors import ReplicationError
from logq.testing import make_batch
from tests.broker.test_replication_in_process import cluster, run, settle


def test_the_answer_waits_until_every_isr_member_reports_the_new_start(tmp_path: Path) -> None:
    async def scenario() -> None:
        _, brokers, _ = await cluster(tmp_path)
        leader = brokers[1].partition("q", 0)
        for i in range(4):
            leader.append_as_leader(make_batch(2, tag=i), acks=1, origin=Origin.CLIENT)
        for _ in range(2):  # the first round copies, the second reports the log ends
            for follower in (2, 3):
                assert await brokers[follower].replicate_from(brokers[1], "q", 0) == 0
        assert leader.high_watermark == 8
        waiting = asyncio.ensure_future(leader.delete_records(5, timeout_ms=60_000))
        plog = leader.log
        assert plog is not None
        for _ in range(500):  # the start is made durable in a worker thread
            if plog.log_start_offset == 5:
                break
            await asyncio.sleep(0.01)
        await settle()
        assert plog.log_start_offset == 5
        assert not waiting.done()
        for follower in (2, 3):  # each adopts the leader's start from its fetch answer
            assert await brokers[follower].replicate_from(brokers[1], "q", 0) == 0
            assert brokers[follower].partition("q", 0).log.log_start_offset == 5  # type: ignore[union-attr]
        await settle()
        assert not waiting.done()  # they hold it, but their next fetch is what says so
        assert await brokers[2].replicate_from(brokers[1], "q", 0) == 0
        await settle()
        assert not waiting.done()  # 3 holds the low watermark back
        assert await brokers[3].replicate_from(brokers[1], "q", 0) == 0
        assert await asyncio.wait_for(waiting, 1) == (ErrorCode.NONE, 5)
        # -1 is the high watermark; a timeout answers with the leader's own start
        assert await leader.delete_records(-1, timeout_ms=20) == (ErrorCode.REQUEST_TIMED_OUT, 8)
        with pytest.raises(ReplicationError) as not_leader:
            await brokers[2].partition("q", 0).delete_records(8, timeout_ms=20)
        assert not_leader.value.code == ErrorCode.NOT_LEADER_OR_FOLLOWER

    run(scenario)
