"""kafka-python 3.0 against a real broker: admin, idempotent produce in each codec, assign-and-read from
offset 0, ListOffsets, delete."""

from __future__ import annotations

import time
from collections.abc import Sequence

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition  # type: ignore[import-untyped]
from kafka.admin import NewTopic  # type: ignore[import-untyped]

from tests.broker_process import BrokerProcess
from tests.compat.helpers import (
    CODECS,
    DEADLINE_S,
    FETCH_BYTES,
    FETCH_PARTITION_BYTES,
    PARTITIONS,
    Received,
    Sent,
    check_codec,
    check_read_from,
    check_round_trip,
    first_offsets_at_or_after,
    make_messages,
    stored_codecs,
)

TIMEOUT_MS = 10_000


def produce_all(bootstrap: str, queue: str, sent: Sequence[Sent], codec: str) -> None:
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        enable_idempotence=True,
        acks="all",
        compression_type=None if codec == "none" else codec,
        linger_ms=5,
        request_timeout_ms=TIMEOUT_MS,
    )
    try:
        futures = [
            producer.send(queue, value=s.value, key=s.key, headers=list(s.headers), timestamp_ms=s.timestamp)
            for s in sent
        ]
        producer.flush(timeout=DEADLINE_S)
        failed = [f.exception for f in futures if not f.succeeded()]
        assert not failed, f"{len(failed)} sends failed: {failed[:5]}"
    finally:
        producer.close(timeout=10)


def consume_all(
    bootstrap: str, queue: str, count: int, start: dict[int, int] | None = None
) -> list[Received]:
    """Read ``count`` records from ``start`` (an offset per partition; default: every partition from 0)."""
    # group_id=None: manual assignment only, no group APIs (this broker does not serve them yet)
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        request_timeout_ms=TIMEOUT_MS,
        max_partition_fetch_bytes=FETCH_PARTITION_BYTES,
        fetch_max_bytes=FETCH_BYTES,
    )
    try:
        partitions = [TopicPartition(queue, p) for p in range(PARTITIONS) if start is None or p in start]
        consumer.assign(partitions)
        if start is None:
            consumer.seek_to_beginning(*partitions)
        else:
            for tp in partitions:
                consumer.seek(tp, start[tp.partition])
        received: list[Received] = []
        deadline = time.monotonic() + DEADLINE_S
        while len(received) < count and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500, max_records=5000).values():
                for r in records:
                    assert r.timestamp_type == 0  # CreateTime
                    received.append(
                        Received(r.partition, r.offset, r.key, r.value, tuple(r.headers), r.timestamp)
                    )
        return received
    finally:
        consumer.close()


@pytest.mark.parametrize("codec", CODECS)
def test_produce_read_list_offsets_delete(broker: BrokerProcess, codec: str) -> None:
    queue = f"compat.kafka-python.{codec}"
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=TIMEOUT_MS)
    try:
        created = admin.create_topics([NewTopic(queue, PARTITIONS, 1)])
        assert [t["error_code"] for t in created["topics"]] == [0]
        sent = make_messages(codec)
        produce_all(broker.bootstrap, queue, sent, codec)

        by_partition = check_round_trip(consume_all(broker.bootstrap, queue, len(sent)), sent)
        check_codec(stored_codecs(broker.bootstrap, queue), codec)

        consumer = KafkaConsumer(
            bootstrap_servers=broker.bootstrap, group_id=None, request_timeout_ms=TIMEOUT_MS
        )
        try:
            partitions = [TopicPartition(queue, p) for p in range(PARTITIONS)]
            assert consumer.beginning_offsets(partitions) == dict.fromkeys(partitions, 0)
            ends = consumer.end_offsets(partitions)
            assert {tp.partition: n for tp, n in ends.items()} == {p: len(r) for p, r in by_partition.items()}
            middle = sent[len(sent) // 2].timestamp
            assert middle is not None
            found = consumer.offsets_for_times(dict.fromkeys(partitions, middle))
            expected = first_offsets_at_or_after(by_partition, middle)
            assert {tp.partition: (o.offset, o.timestamp) for tp, o in found.items()} == {
                p: (offset, by_partition[p][offset].timestamp)
                for p, offset in expected.items()
                if offset is not None
            }
            later = (sent[-1].timestamp or 0) + 1
            assert consumer.offsets_for_times(dict.fromkeys(partitions, later)) == dict.fromkeys(partitions)
        finally:
            consumer.close()

        start = {p: offset for p, offset in expected.items() if offset is not None}
        tail = consume_all(broker.bootstrap, queue, len(sent) - sum(start.values()), start)
        check_read_from(tail, by_partition, start)

        deleted = admin.delete_topics([queue])
        assert [t["error_code"] for t in deleted["topics"]] == [0]
        assert queue not in admin.list_topics()
    finally:
        admin.close()
