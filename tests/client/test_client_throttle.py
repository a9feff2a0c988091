"""logq's own client honours throttle_time_ms (KIP-219): after a throttled answer a connection sends
nothing to that broker until the throttle time has passed, and a request's timeout starts when it is
sent, so a short timeout does not fail while the client waits out a throttle."""

from __future__ import annotations

import asyncio
import time

from logq import Producer
from logq.client.connection import BrokerConnection
from logq.protocol import messages as m
from logq.testing import make_batch
from tests.broker_process import BrokerProcess
from tests.compat.test_quota_clients import create_queue, set_quota


def test_a_throttled_connection_waits_before_its_next_request(broker: BrokerProcess) -> None:
    create_queue(broker.bootstrap, "slow")
    set_quota(broker.bootstrap, "throttled", "producer_byte_rate", 10_000)

    async def scenario() -> None:
        conn = await BrokerConnection.open("127.0.0.1", broker.port, client_id="throttled")
        try:
            data = m.PartitionProduceData(index=0, records=make_batch(1, value_size=130_000))
            produce = m.ProduceRequest(
                acks=1, timeout_ms=5000, topic_data=[m.TopicProduceData(name="slow", partition_data=[data])]
            )
            answer = await conn.request(produce, 8)
            assert answer.responses[0].partition_responses[0].error_code == 0
            throttle_s = answer.throttle_time_ms / 1000
            assert throttle_s >= 2
            loop = asyncio.get_running_loop()
            assert conn.throttled_until > loop.time()
            # Sent at once, this would time out: the broker reads nothing from us for throttle_s.
            started = time.monotonic()
            metadata = await conn.request(m.MetadataRequest(topics=[]), 8, timeout_s=1.0)
            assert metadata is not None
            assert time.monotonic() - started >= throttle_s * 0.9
        finally:
            await conn.close()

    asyncio.run(scenario())


def test_a_throttled_producer_loses_nothing(broker: BrokerProcess) -> None:
    create_queue(broker.bootstrap, "held")
    # 40,000 B/s: the first 400 KB pass (10 s measured), the rest is throttled for about 2 s
    set_quota(broker.bootstrap, "held-producer", "producer_byte_rate", 40_000)
    with Producer(bootstrap=broker.bootstrap, client_id="held-producer", acks="all") as producer:
        futures = [producer.send("held", b"v" * 1000) for _ in range(480)]
        offsets = sorted(f.result(timeout=30).offset for f in futures)
    assert offsets == list(range(480))
