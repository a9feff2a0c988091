"""A queue's compression.type and message.timestamp.type with real clients: queues created by
confluent-kafka's AdminClient with those settings, written by confluent-kafka's producer, read by
confluent-kafka and kafka-python."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import pytest
from confluent_kafka import (
    OFFSET_BEGINNING,
    TIMESTAMP_CREATE_TIME,
    TIMESTAMP_LOG_APPEND_TIME,
    Consumer,
    KafkaError,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]  # not in its __all__
from kafka import KafkaConsumer  # type: ignore[import-untyped]
from kafka import TopicPartition as KafkaTopicPartition

from logq import Consumer as LogqConsumer
from logq import Producer as LogqProducer
from logq import codec
from tests.broker_process import BrokerProcess
from tests.compat.helpers import (
    DEADLINE_S,
    FETCH_PARTITION_BYTES,
    PARTITIONS,
    Received,
    Sent,
    check_round_trip,
    make_messages,
    now_ms,
    stored_codecs,
)

COUNT = 2000
# kafka-python gives the batch's timestamp-type bit; confluent-kafka its own constants
KAFKA_PYTHON_TIMESTAMP_TYPES = {0: TIMESTAMP_CREATE_TIME, 1: TIMESTAMP_LOG_APPEND_TIME}


def create_queue(bootstrap: str, queue: str, config: Mapping[str, str]) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topic = NewTopic(queue, num_partitions=PARTITIONS, replication_factor=1, config=dict(config))
    admin.create_topics([topic], operation_timeout=10)[queue].result(timeout=10)


def produce(bootstrap: str, queue: str, sent: Sequence[Sent], codec: str) -> list[tuple[int, int]]:
    """Idempotent, acks=all; returns each delivery report's (timestamp type, timestamp)."""
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "compression.type": codec,
            "linger.ms": 20,
            "message.timeout.ms": int(DEADLINE_S * 1000),
        }
    )
    errors: list[KafkaError] = []
    reports: list[tuple[int, int]] = []

    def delivered(err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            errors.append(err)
        else:
            reports.append(msg.timestamp())

    for s in sent:
        producer.produce(
            queue, s.value, s.key, headers=list(s.headers), timestamp=s.timestamp or 0, on_delivery=delivered
        )
        producer.poll(0)
    assert producer.flush(DEADLINE_S) == 0, "messages still undelivered at the deadline"
    assert not errors, errors[:5]
    return reports


def read_confluent(bootstrap: str, queue: str, count: int) -> list[tuple[Received, int]]:
    """Every partition from the start: each record with its timestamp type."""
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "unused",  # assign() only: no group APIs
            "enable.auto.commit": False,
            "max.partition.fetch.bytes": FETCH_PARTITION_BYTES,
        }
    )
    try:
        c.assign([TopicPartition(queue, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
        out: list[tuple[Received, int]] = []
        deadline = time.monotonic() + DEADLINE_S
        while len(out) < count and time.monotonic() < deadline:
            for msg in c.consume(1000, 0.5):
                assert msg.error() is None, msg.error()
                kind, ts = msg.timestamp()
                partition, offset = msg.partition(), msg.offset()
                assert partition is not None
                assert offset is not None
                raw = msg.headers() or []
                assert isinstance(raw, list)
                headers = tuple((k, v.encode() if isinstance(v, str) else v) for k, v in raw)
                out.append((Received(partition, offset, msg.key(), msg.value(), headers, ts), kind))
        return out
    finally:
        c.close()


def read_kafka_python(bootstrap: str, queue: str, count: int) -> list[tuple[Received, int]]:
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        request_timeout_ms=int(DEADLINE_S * 1000),
        max_partition_fetch_bytes=FETCH_PARTITION_BYTES,
    )
    try:
        partitions = [KafkaTopicPartition(queue, p) for p in range(PARTITIONS)]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        out: list[tuple[Received, int]] = []
        deadline = time.monotonic() + DEADLINE_S
        while len(out) < count and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500, max_records=5000).values():
                for r in records:
                    received = Received(r.partition, r.offset, r.key, r.value, tuple(r.headers), r.timestamp)
                    out.append((received, KAFKA_PYTHON_TIMESTAMP_TYPES[r.timestamp_type]))
        return out
    finally:
        consumer.close()


def read_logq(bootstrap: str, queue: str, count: int) -> list[tuple[Received, int]]:
    """logq's own consumer; its records carry no timestamp type, so each gets the batch's, read raw."""
    consumer = LogqConsumer(bootstrap, auto_offset_reset="earliest")
    try:
        consumer.assign([(queue, p) for p in range(PARTITIONS)])
        out: list[tuple[Received, int]] = []
        deadline = time.monotonic() + DEADLINE_S
        while len(out) < count and time.monotonic() < deadline:
            for r in consumer.poll(timeout=0.5):
                out.append((Received(r.partition, r.offset, r.key, r.value, r.headers, r.timestamp), -1))
        return out
    finally:
        consumer.close()


@pytest.mark.parametrize(
    ("queue_codec", "producer_codec"),
    [
        ("zstd", "none"),
        ("zstd", "gzip"),
        ("zstd", "lz4"),
        ("zstd", "snappy"),
        ("lz4", "zstd"),
        ("snappy", "none"),
        ("gzip", "lz4"),
    ],
)
def test_a_codec_queue_stores_its_codec_and_every_client_reads_the_records_sent(
    broker: BrokerProcess, queue_codec: str, producer_codec: str
) -> None:
    queue = f"{queue_codec}-from-{producer_codec}"
    create_queue(broker.bootstrap, queue, {"compression.type": queue_codec})
    sent = make_messages(producer_codec, COUNT)
    produce(broker.bootstrap, queue, sent, producer_codec)

    assert stored_codecs(broker.bootstrap, queue) == {codec.COMPRESSION_TYPE_CODECS[queue_codec]: COUNT}
    readers = [read_confluent, read_logq]
    if queue_codec not in ("lz4", "snappy"):  # kafka-python reads those only with libraries not installed
        readers.append(read_kafka_python)
    for read in readers:
        got = read(broker.bootstrap, queue, COUNT)
        assert {kind for _, kind in got} <= {TIMESTAMP_CREATE_TIME, -1}, read.__name__
        # keys, values, headers and the producer's timestamps, each once and in order
        check_round_trip([received for received, _ in got], sent)


def test_log_append_time_is_what_every_client_reads(broker: BrokerProcess) -> None:
    queue = "appended"
    create_queue(broker.bootstrap, queue, {"message.timestamp.type": "LogAppendTime"})
    first = make_messages("zstd", COUNT // 2)  # CreateTime 10 minutes ago, which the queue replaces
    before = now_ms()
    reports = produce(broker.bootstrap, queue, first, "zstd")
    time.sleep(0.05)
    middle = now_ms()
    time.sleep(0.05)
    second = make_messages("none", COUNT)[len(first) :]  # sequence numbers go on from the first
    reports += produce(broker.bootstrap, queue, second, "none")
    after = now_ms()

    # librdkafka takes the delivered timestamp from Produce's log_append_time_ms
    assert {kind for kind, _ in reports} == {TIMESTAMP_LOG_APPEND_TIME}
    assert all(before <= ts <= after for _, ts in reports)

    for read in (read_confluent, read_kafka_python, read_logq):
        got = read(broker.bootstrap, queue, COUNT)
        assert len(got) == COUNT, read.__name__
        assert {kind for _, kind in got} <= {TIMESTAMP_LOG_APPEND_TIME, -1}, read.__name__
        firsts = [r for r, _ in got if r.value is not None and r.value.startswith(b"zstd|")]
        seconds = [r for r, _ in got if r.value is not None and r.value.startswith(b"none|")]
        assert all(before <= r.timestamp < middle for r in firsts), read.__name__
        assert all(middle < r.timestamp <= after for r in seconds), read.__name__
        check_round_trip(
            [Received(r.partition, r.offset, r.key, r.value, r.headers, r.timestamp) for r, _ in got],
            [Sent(s.seq, s.key, s.value, s.headers, None) for s in first + second],
        )

    # ListOffsets by timestamp finds records by the time the broker stamped
    expected = {}
    for r, _ in read_confluent(broker.bootstrap, queue, COUNT):
        if r.timestamp >= middle:
            expected[r.partition] = min(expected.get(r.partition, r.offset), r.offset)
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "unused"})
    try:
        wanted = [TopicPartition(queue, p, middle) for p in range(PARTITIONS)]
        found = c.offsets_for_times(wanted, timeout=10)
    finally:
        c.close()
    assert {tp.partition: tp.offset for tp in found} == expected

    # logq's producer reports the stamped time too
    with LogqProducer(bootstrap=broker.bootstrap, acks="all") as producer:
        before_logq = now_ms()
        stored = producer.send(queue, b"from logq", key=b"k", timestamp=1000).result()
        assert before_logq <= stored.timestamp <= now_ms()
