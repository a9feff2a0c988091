"""Our murmur2 partitioner against kafka-python's Java-compatible one and against confluent-kafka (librdkafka)
producing to a real broker: the same key lands in the same partition."""

from __future__ import annotations

import random

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]
from kafka.partitioner.default import murmur2 as kafka_python_murmur2  # type: ignore[import-untyped]

from logq.client.partitioner import murmur2, partition_for_key
from tests.broker_process import BrokerProcess


def random_keys(count: int, seed: int = 5) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(rng.randint(0, 40)) for _ in range(count)]


def test_murmur2_matches_the_java_algorithm() -> None:
    # Known values of Kafka's Utils.murmur2 (from its unit tests).
    assert murmur2(b"21") == -973932308
    assert murmur2(b"foobar") == -790332482
    assert murmur2(b"a-little-bit-long-string") == -985981536
    assert murmur2(b"a-little-bit-longer-string") == -1486304829
    assert murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8") == -58897971
    assert murmur2(b"abc") == 479470107
    for key in random_keys(2000):
        assert murmur2(key) & 0xFFFFFFFF == kafka_python_murmur2(key) & 0xFFFFFFFF  # it returns unsigned


def test_partitions_equal_confluent_kafka_for_10000_random_keys(broker: BrokerProcess) -> None:
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic("keys", num_partitions=12, replication_factor=1)])["keys"].result(30)
    placed: dict[bytes, int] = {}
    producer = Producer(
        {"bootstrap.servers": broker.bootstrap, "partitioner": "murmur2_random", "linger.ms": 20}
    )
    keys = [key for key in random_keys(10_000, seed=11) if key]  # librdkafka sends null keys elsewhere
    for key in keys:
        producer.produce(
            "keys",
            key=key,
            value=b"",
            on_delivery=lambda err, msg: placed.__setitem__(msg.key(), msg.partition()),
        )
        producer.poll(0)
    assert producer.flush(60) == 0
    assert len(placed) == len(set(keys))
    assert all(placed[key] == partition_for_key(key, 12) for key in keys)
