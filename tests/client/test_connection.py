"""The client connection against a real broker: version negotiation, pipelining, acks=0, failures."""

from __future__ import annotations

import asyncio

import pytest

from logq import Admin, LogqError, Producer
from logq.client.connection import BrokerConnection, BrokerConnectionError
from logq.error_codes import ErrorCode
from logq.protocol import ApiKey
from logq.protocol import messages as m
from logq.testing import make_batch
from tests.broker_process import BrokerProcess, free_port


def host_port(proc: BrokerProcess) -> tuple[str, int]:
    return "127.0.0.1", proc.port


def test_versions_pipelining_and_acks_zero(broker: BrokerProcess) -> None:
    async def scenario() -> None:
        conn = await BrokerConnection.open(*host_port(broker))
        try:
            assert conn.version_for(ApiKey.METADATA) == 8
            assert conn.version_for(ApiKey.PRODUCE) == 8
            topic = m.CreatableTopic(name="pipe", num_partitions=1, replication_factor=1)
            created = await conn.request(m.CreateTopicsRequest(topics=[topic], timeout_ms=5000), 4)
            assert created.topics[0].error_code == 0
            # 50 requests in flight at once: every answer reaches its own request
            answers = await asyncio.gather(
                *(
                    conn.request(m.MetadataRequest(topics=[m.MetadataRequestTopic(name="pipe")]), 8)
                    for _ in range(50)
                )
            )
            assert all(a.topics[0].name == "pipe" for a in answers)
            data = m.PartitionProduceData(index=0, records=make_batch(2))
            silent = m.ProduceRequest(
                acks=0, timeout_ms=1000, topic_data=[m.TopicProduceData(name="pipe", partition_data=[data])]
            )
            assert await conn.request(silent, 8) is None  # no answer comes, none is awaited
            wanted = m.FetchPartition(partition=0, fetch_offset=0, partition_max_bytes=1 << 20)
            fetch = m.FetchRequest(
                max_wait_ms=0, min_bytes=1, topics=[m.FetchTopic(topic="pipe", partitions=[wanted])]
            )
            answer = await conn.request(fetch, 11)
            assert answer.responses[0].partitions[0].high_watermark == 2
        finally:
            await conn.close()

    asyncio.run(scenario())


def test_a_broker_that_dies_fails_every_waiting_request(broker: BrokerProcess) -> None:
    async def scenario() -> None:
        conn = await BrokerConnection.open(*host_port(broker))
        topic = m.CreatableTopic(name="gone", num_partitions=1, replication_factor=1)
        await conn.request(m.CreateTopicsRequest(topics=[topic], timeout_ms=5000), 4)
        wanted = m.FetchPartition(partition=0, fetch_offset=0, partition_max_bytes=1 << 20)
        poll = m.FetchRequest(
            max_wait_ms=20_000, min_bytes=1, topics=[m.FetchTopic(topic="gone", partitions=[wanted])]
        )
        waiting = asyncio.ensure_future(conn.request(poll, 11))
        await asyncio.sleep(0.3)
        broker.kill()
        with pytest.raises(BrokerConnectionError, match="closed the connection"):
            await asyncio.wait_for(waiting, 10)
        assert conn.closed
        with pytest.raises(BrokerConnectionError):
            await conn.request(m.MetadataRequest(topics=None), 8)
        await conn.close()

    asyncio.run(scenario())


def test_connecting_to_nothing_is_a_clear_error() -> None:
    async def scenario() -> None:
        with pytest.raises(BrokerConnectionError, match="cannot connect"):
            await BrokerConnection.open("127.0.0.1", free_port(), timeout_s=2)

    asyncio.run(scenario())


def test_a_value_the_protocol_cannot_carry_is_a_logq_error(broker: BrokerProcess) -> None:
    """A client_id longer than a Kafka string can be (32,767 bytes) fails at once, as a LogqError that
    says why, with INVALID_REQUEST: not retried, and caught by ``except LogqError`` like any other."""
    for make in (
        lambda: Producer(bootstrap=broker.bootstrap, client_id="x" * 40_000),
        lambda: Admin(bootstrap=broker.bootstrap, client_id="x" * 40_000),
    ):
        with pytest.raises(LogqError, match="exceeds the int16 length limit") as info:
            make()
        assert info.value.code == ErrorCode.INVALID_REQUEST
        assert not info.value.retriable
    with Admin(bootstrap=broker.bootstrap) as admin:  # the broker saw nothing wrong
        admin.create_queue("after", partitions=1)
