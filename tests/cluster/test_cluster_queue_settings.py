"""compression.type and message.timestamp.type in a cluster of three: the leader rewrites a batch once and
the followers copy its bytes, so every replica is byte-identical (a follower that recompressed or stamped
its own append time would differ)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from confluent_kafka import KafkaError, Message, Producer

from logq import batch as rb
from logq.error_codes import ErrorCode
from tests.cluster.conftest import Cluster, wait_for
from tests.cluster.test_replication import create, full_isr, replicas_identical, segment_bytes

QUEUE = "recompressed"
PARTITIONS = 2


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, zookeeper: str) -> Iterator[Cluster]:
    chroot = tmp_path_factory.mktemp("settings").name
    c = Cluster(tmp_path_factory.mktemp("brokers"), f"{zookeeper}/logq-{chroot}")
    try:
        yield c.start()
    finally:
        c.stop()


def stored_headers(data: bytes) -> list[rb.BatchHeader]:
    headers, pos = [], 0
    while len(data) - pos >= rb.HEADER_SIZE:
        header = rb.parse_header(data, pos)
        if header.batch_length <= 0:  # the zeroed, preallocated tail of the active segment
            break
        headers.append(header)
        pos += header.size
    return headers


def test_replicas_of_a_recompressed_log_append_time_queue_are_byte_identical(cluster: Cluster) -> None:
    configs = {"compression.type": "zstd", "message.timestamp.type": "LogAppendTime"}
    created = create(cluster, QUEUE, PARTITIONS, 3, configs)
    assert created.error_code == ErrorCode.NONE, created.error_message
    wait_for(lambda: full_isr(cluster, QUEUE, PARTITIONS), "an ISR of 3 everywhere")

    failed: list[KafkaError] = []

    def delivered(error: KafkaError | None, _msg: Message) -> None:
        if error is not None:
            failed.append(error)

    producer = Producer(
        {
            "bootstrap.servers": cluster.bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "compression.type": "none",
            "linger.ms": 5,
            "message.timeout.ms": 60_000,
        }
    )
    before = int(time.time() * 1000)
    for partition in range(PARTITIONS):
        for i in range(500):
            value = b"value-%d-%04d " % (partition, i) * 4
            producer.produce(QUEUE, value, partition=partition, timestamp=1000, on_delivery=delivered)
            producer.poll(0)
    assert producer.flush(60) == 0
    after = int(time.time() * 1000)
    assert not failed, failed[:5]

    for partition in range(PARTITIONS):
        wait_for(
            lambda p=partition: replicas_identical(cluster, QUEUE, p), f"identical replicas of {partition}"
        )
        copy = segment_bytes(cluster.brokers[1].data_dir, QUEUE, partition)
        headers = stored_headers(copy)
        assert sum(h.records_count for h in headers) == 500
        assert {h.codec for h in headers} == {rb.CODEC_ZSTD}
        assert all(h.attributes & rb.ATTR_LOG_APPEND_TIME for h in headers)
        assert all(before <= h.max_timestamp <= after and h.base_timestamp == 1000 for h in headers)
