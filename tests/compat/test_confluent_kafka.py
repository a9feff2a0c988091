"""confluent-kafka (librdkafka 2.16) against a real broker: admin, idempotent produce in each codec,
assign-and-read from offset 0, ListOffsets, delete."""

from __future__ import annotations

import time
from collections.abc import Sequence

import pytest
from confluent_kafka import (
    OFFSET_BEGINNING,
    TIMESTAMP_CREATE_TIME,
    Consumer,
    KafkaError,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]  # not in its __all__

from tests.broker_process import BrokerProcess
from tests.compat.helpers import (
    CODECS,
    DEADLINE_S,
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


def create_queue(bootstrap: str, queue: str, partitions: int = PARTITIONS) -> AdminClient:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topic = NewTopic(queue, num_partitions=partitions, replication_factor=1)
    admin.create_topics([topic], operation_timeout=10)[queue].result(timeout=10)
    return admin


def produce_all(bootstrap: str, queue: str, sent: Sequence[Sent], codec: str) -> None:
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "compression.type": codec,
            "message.timeout.ms": int(DEADLINE_S * 1000),
        }
    )
    errors: list[KafkaError] = []

    def delivered(err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            errors.append(err)

    for s in sent:
        while True:
            try:
                producer.produce(
                    queue,
                    s.value,
                    s.key,
                    headers=list(s.headers),
                    timestamp=s.timestamp or 0,
                    on_delivery=delivered,
                )
                break
            except BufferError:  # the local queue is full: let deliveries drain it
                producer.poll(0.05)
        producer.poll(0)
    assert producer.flush(DEADLINE_S) == 0, "messages still undelivered at the deadline"
    assert not errors, errors[:5]


def consumer(bootstrap: str) -> Consumer:
    # librdkafka insists on a group.id, but with assign() and no commits it never uses the group APIs
    # (which this broker does not serve yet).
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "unused",
            "enable.auto.commit": False,
            # (librdkafka wants fetch.max.bytes >= message.max.bytes, so only the partition limit)
            "max.partition.fetch.bytes": FETCH_PARTITION_BYTES,
        }
    )


def consume_all(
    bootstrap: str, queue: str, count: int, start: dict[int, int] | None = None
) -> list[Received]:
    """Read ``count`` records from ``start`` (an offset per partition; default: every partition from 0)."""
    c = consumer(bootstrap)
    try:
        offsets = start or dict.fromkeys(range(PARTITIONS), OFFSET_BEGINNING)
        c.assign([TopicPartition(queue, p, offset) for p, offset in offsets.items()])
        received: list[Received] = []
        deadline = time.monotonic() + DEADLINE_S
        while len(received) < count and time.monotonic() < deadline:
            for msg in c.consume(1000, 0.5):
                assert msg.error() is None, msg.error()
                kind, ts = msg.timestamp()
                assert kind == TIMESTAMP_CREATE_TIME
                partition, offset = msg.partition(), msg.offset()
                assert partition is not None
                assert offset is not None
                raw = msg.headers() or []
                assert isinstance(raw, list)  # librdkafka keeps the order and repeats of the record
                headers = tuple((k, v.encode() if isinstance(v, str) else v) for k, v in raw)
                received.append(Received(partition, offset, msg.key(), msg.value(), headers, ts))
        return received
    finally:
        c.close()


@pytest.mark.parametrize("codec", CODECS)
def test_produce_read_list_offsets_delete(broker: BrokerProcess, codec: str) -> None:
    queue = f"compat.confluent.{codec}"
    admin = create_queue(broker.bootstrap, queue)
    sent = make_messages(codec)
    produce_all(broker.bootstrap, queue, sent, codec)

    by_partition = check_round_trip(consume_all(broker.bootstrap, queue, len(sent)), sent)
    check_codec(stored_codecs(broker.bootstrap, queue), codec)

    c = consumer(broker.bootstrap)
    try:
        for p, records in by_partition.items():
            watermarks = c.get_watermark_offsets(TopicPartition(queue, p), timeout=10, cached=False)
            assert watermarks == (0, len(records))
        middle = sent[len(sent) // 2].timestamp
        assert middle is not None
        asked = [TopicPartition(queue, p, middle) for p in range(PARTITIONS)]
        found = c.offsets_for_times(asked, timeout=10)
        expected = first_offsets_at_or_after(by_partition, middle)
        assert {tp.partition: tp.offset for tp in found} == expected
        # after the newest record: no offset (librdkafka reports -1, OFFSET_END)
        later = [TopicPartition(queue, p, (sent[-1].timestamp or 0) + 1) for p in range(PARTITIONS)]
        assert {tp.offset for tp in c.offsets_for_times(later, timeout=10)} == {-1}
    finally:
        c.close()
    start = {p: offset for p, offset in expected.items() if offset is not None}
    tail = consume_all(broker.bootstrap, queue, len(sent) - sum(start.values()), start)
    check_read_from(tail, by_partition, start)

    admin.delete_topics([queue], operation_timeout=10)[queue].result(timeout=10)
    assert queue not in admin.list_topics(timeout=10).topics
