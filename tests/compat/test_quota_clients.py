"""Client quotas with a real Kafka client (confluent-kafka / librdkafka, KIP-219): a producer over its
producer_byte_rate and a consumer over its consumer_byte_rate get throttle_time_ms (their throttle_cb
fires) and are held near the quota. Kafka measures a new client over at least 10 s (11 samples of 1 s),
so within the first 10 s a client gets at most ten seconds' worth of its quota."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer

from logq.protocol import messages as m
from tests.broker_process import BrokerProcess
from tests.wire_client import WireClient

QUOTA = 100_000  # bytes per second
MEASURED_S = 10  # the shortest span a rate is measured over
SLACK = 1.15  # request overhead and the one request that takes a client over its quota


def set_quota(bootstrap: str, client_id: str, key: str, value: float) -> None:
    entity = [m.ClientQuotaEntityPart(entity_type="client-id", entity_name=client_id)]
    req = m.AlterClientQuotasRequest(
        entries=[m.AlterClientQuotasEntry(entity=entity, ops=[m.AlterClientQuotasOp(key=key, value=value)])]
    )
    with WireClient(bootstrap) as c:
        assert c.call(req, 0).entries[0].error_code == 0


def create_queue(bootstrap: str, name: str) -> None:
    with WireClient(bootstrap) as c:
        req = m.CreateTopicsRequest(
            topics=[m.CreatableTopic(name=name, num_partitions=1, replication_factor=1)], timeout_ms=10_000
        )
        assert c.call(req, 4).topics[0].error_code == 0


def test_a_producer_over_its_quota_is_throttled_and_held_to_it(tmp_path: Path) -> None:
    broker = BrokerProcess(tmp_path / "data").start()
    try:
        create_queue(broker.bootstrap, "flood")
        set_quota(broker.bootstrap, "flooder", "producer_byte_rate", QUOTA)
        throttles: list[Any] = []
        delivered = 0

        def on_delivery(err: Any, msg: Any) -> None:
            nonlocal delivered
            if err is None:
                delivered += len(msg.value())

        producer = Producer(
            {
                "bootstrap.servers": broker.bootstrap,
                "client.id": "flooder",
                "linger.ms": 5,
                # Requests already sent when the first throttle arrives are still taken: keep them
                # small and one at a time, so what the quota lets through is what is measured.
                "batch.size": 16_384,
                "max.in.flight.requests.per.connection": 1,
                "throttle_cb": throttles.append,
            }
        )
        value = b"v" * 1000
        started = time.monotonic()
        while time.monotonic() - started < 6:
            try:
                producer.produce("flood", value, on_delivery=on_delivery)
            except BufferError:
                producer.poll(0.05)
            producer.poll(0)
        elapsed = time.monotonic() - started
        producer.purge()  # what is still queued is not counted: it was not delivered in time
        producer.flush(10)
        assert throttles, "librdkafka's throttle_cb never fired"
        assert all(t.throttle_time > 0 for t in throttles)
        assert delivered <= SLACK * QUOTA * max(elapsed, MEASURED_S)
        assert delivered >= QUOTA  # held back, not shut out
    finally:
        broker.kill()


def test_a_consumer_over_its_quota_is_throttled_and_held_to_it(tmp_path: Path) -> None:
    broker = BrokerProcess(tmp_path / "data").start()
    try:
        create_queue(broker.bootstrap, "backlog")
        producer = Producer({"bootstrap.servers": broker.bootstrap, "client.id": "loader"})
        for _ in range(3000):
            producer.produce("backlog", b"v" * 1000)
            producer.poll(0)
        assert producer.flush(30) == 0
        set_quota(broker.bootstrap, "slow-reader", "consumer_byte_rate", QUOTA)
        throttles: list[Any] = []
        consumer = Consumer(
            {
                "bootstrap.servers": broker.bootstrap,
                "client.id": "slow-reader",
                "group.id": "quota-test",
                "auto.offset.reset": "earliest",
                "fetch.max.bytes": 64_000,
                "message.max.bytes": 64_000,
                "max.partition.fetch.bytes": 64_000,
                "throttle_cb": throttles.append,
            }
        )
        consumed = 0
        try:
            consumer.subscribe(["backlog"])
            started = time.monotonic()
            while time.monotonic() - started < 5:
                msg = consumer.poll(0.2)
                if msg is not None and msg.error() is None:
                    consumed += len(msg.value())
            elapsed = time.monotonic() - started
        finally:
            consumer.close()
        assert throttles, "librdkafka's throttle_cb never fired"
        # 3 MB wait; the consumer gets about its ten seconds' worth, plus the fetch that went over
        assert QUOTA <= consumed <= SLACK * QUOTA * max(elapsed, MEASURED_S) + 64_000
    finally:
        broker.kill()
