"""DeleteRecords (21) against a standalone broker process, with confluent-kafka's and kafka-python's
admin clients: the new log start is what consumers, ListOffsets and Fetch see, it survives kill -9, the
retention job removes the segments wholly below it, and bad requests get Kafka's error codes."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaAdminClient  # type: ignore[import-untyped]
from kafka import TopicPartition as KpTopicPartition

from logq.error_codes import ErrorCode
from logq.protocol import messages as m
from tests.broker.test_metrics import MetricsBroker, value
from tests.broker_process import BrokerProcess, free_port
from tests.wire_client import WireClient

RECORDS = 100


def create(bootstrap: str, queue: str, config: dict[str, str] | None = None) -> AdminClient:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topic = NewTopic(queue, num_partitions=1, replication_factor=1, config=config or {})
    admin.create_topics([topic], operation_timeout=10)[queue].result(timeout=10)
    return admin


def produce(bootstrap: str, queue: str, count: int = RECORDS, size: int = 10) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "batch.num.messages": 10})
    for i in range(count):
        # keyed: a compacted queue refuses records without a key
        producer.produce(queue, key=b"k%d" % i, value=b"%d" % i + b"." * size, partition=0)
    assert producer.flush(10) == 0


def delete_before(admin: AdminClient, queue: str, offset: int) -> int:
    futures = admin.delete_records([TopicPartition(queue, 0, offset)], operation_timeout=10)
    return int(next(iter(futures.values())).result(timeout=15).low_watermark)


def first_offset_from_earliest(bootstrap: str, queue: str) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False})
    try:
        consumer.assign([TopicPartition(queue, 0, -2)])  # OFFSET_BEGINNING
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                return int(message.offset())
        raise AssertionError("nothing consumed")
    finally:
        consumer.close()


def earliest(bootstrap: str, queue: str) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused"})
    try:
        return int(consumer.get_watermark_offsets(TopicPartition(queue, 0), timeout=10)[0])
    finally:
        consumer.close()


def fetch_error(bootstrap: str, queue: str, offset: int) -> tuple[int, int]:
    """(error code, log_start_offset) of a consumer Fetch v11 at ``offset``."""
    request = m.FetchRequest(
        replica_id=-1,
        max_wait_ms=0,
        min_bytes=1,
        max_bytes=1 << 20,
        isolation_level=0,
        session_id=0,
        session_epoch=-1,
        topics=[m.FetchTopic(topic=queue, partitions=[m.FetchPartition(partition=0, fetch_offset=offset)])],
        forgotten_topics_data=[],
        rack_id="",
    )
    with WireClient(bootstrap) as client:
        data = client.call(request, 11).responses[0].partitions[0]
    return data.error_code, data.log_start_offset


def delete_records_raw(bootstrap: str, queue: str, offset: int, partition: int = 0) -> tuple[int, int]:
    """(error code, low watermark) of a DeleteRecords v1 for one partition."""
    request = m.DeleteRecordsRequest(
        topics=[
            m.DeleteRecordsTopic(
                name=queue, partitions=[m.DeleteRecordsPartition(partition_index=partition, offset=offset)]
            )
        ],
        timeout_ms=5000,
    )
    with WireClient(bootstrap) as client:
        result = client.call(request, 1).topics[0].partitions[0]
    return result.error_code, result.low_watermark


def test_confluent_delete_records_moves_what_every_reader_sees(broker: BrokerProcess) -> None:
    queue = "records.confluent"
    admin = create(broker.bootstrap, queue)
    produce(broker.bootstrap, queue)
    assert delete_before(admin, queue, 43) == 43  # inside a batch of 10
    assert first_offset_from_earliest(broker.bootstrap, queue) == 43
    assert earliest(broker.bootstrap, queue) == 43  # ListOffsets EARLIEST
    assert fetch_error(broker.bootstrap, queue, 42) == (ErrorCode.OFFSET_OUT_OF_RANGE, 43)
    assert fetch_error(broker.bootstrap, queue, 43) == (ErrorCode.NONE, 43)
    # never backwards; -1 (OFFSET_END) empties the partition up to the high watermark
    assert delete_before(admin, queue, 10) == 43
    assert delete_before(admin, queue, -1) == RECORDS
    assert earliest(broker.bootstrap, queue) == RECORDS


def test_kafka_python_delete_records(broker: BrokerProcess) -> None:
    queue = "records.kafka-python"
    create(broker.bootstrap, queue)
    produce(broker.bootstrap, queue)
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=10_000)
    try:
        answer = admin.delete_records({KpTopicPartition(queue, 0): 25}, timeout_ms=10_000)
    finally:
        admin.close()
    assert answer[KpTopicPartition(queue, 0)]["low_watermark"] == 25
    assert earliest(broker.bootstrap, queue) == 25


def test_the_start_holds_after_kill_9_right_after_the_answer(broker: BrokerProcess) -> None:
    queue = "records.kill"
    admin = create(broker.bootstrap, queue)
    produce(broker.bootstrap, queue)
    assert delete_before(admin, queue, 57) == 57
    broker.kill()
    broker.start()
    assert earliest(broker.bootstrap, queue) == 57
    assert first_offset_from_earliest(broker.bootstrap, queue) == 57


def test_errors_as_kafka_answers_them(broker: BrokerProcess) -> None:
    queue = "records.errors"
    create(broker.bootstrap, queue)
    produce(broker.bootstrap, queue, count=10)
    assert delete_records_raw(broker.bootstrap, queue, 11) == (ErrorCode.OFFSET_OUT_OF_RANGE, -1)
    assert delete_records_raw(broker.bootstrap, queue, -5) == (ErrorCode.OFFSET_OUT_OF_RANGE, -1)
    assert (
        delete_records_raw(broker.bootstrap, queue, 1, partition=7)[0] == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    )
    assert delete_records_raw(broker.bootstrap, "records.none", 1)[0] == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    create(broker.bootstrap, "records.compacted", {"cleanup.policy": "compact"})
    produce(broker.bootstrap, "records.compacted", count=10)
    assert delete_records_raw(broker.bootstrap, "records.compacted", 5) == (ErrorCode.POLICY_VIOLATION, -1)
    create(broker.bootstrap, "records.both", {"cleanup.policy": "compact,delete"})
    produce(broker.bootstrap, "records.both", count=10)
    assert delete_records_raw(broker.bootstrap, "records.both", 5) == (ErrorCode.NONE, 5)
    # confluent-kafka reports the code per partition
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    future = admin.delete_records([TopicPartition(queue, 0, 50)], operation_timeout=5)
    with pytest.raises(KafkaException) as raised:
        next(iter(future.values())).result(timeout=15)
    assert raised.value.args[0].code() == KafkaError.OFFSET_OUT_OF_RANGE


def test_the_retention_job_removes_the_segments_below_the_start(tmp_path: Path) -> None:
    broker = BrokerProcess(
        tmp_path / "data",
        log={"segment.bytes": 1000, "retention.check.interval.ms": 200, "file.delete.delay.ms": 0},
    ).start()
    try:
        queue = "records.retention"
        admin = create(broker.bootstrap, queue)
        produce(broker.bootstrap, queue, size=100)
        directory = tmp_path / "data" / f"{queue}-0"
        before = sorted(directory.glob("*.log"))
        assert len(before) > 5
        holding = max(p for p in before if int(p.stem) <= 55)
        assert delete_before(admin, queue, 55) == 55
        deadline = time.monotonic() + 10
        while sorted(directory.glob("*.log"))[0] != holding and time.monotonic() < deadline:
            time.sleep(0.1)
        assert sorted(directory.glob("*.log"))[0] == holding  # the segment holding the start stays
        assert "below the log start offset 55" in broker.log_text
        assert first_offset_from_earliest(broker.bootstrap, queue) == 55
    finally:
        broker.kill()


def test_counted_in_the_metrics_like_every_api(tmp_path: Path) -> None:
    port = free_port()
    proc = BrokerProcess(tmp_path / "data", broker={"metrics.listen": f"127.0.0.1:{port}"}).start()
    try:
        queue = "records.metrics"
        create(proc.bootstrap, queue)
        produce(proc.bootstrap, queue, count=10)
        assert delete_records_raw(proc.bootstrap, queue, 4) == (ErrorCode.NONE, 4)
        assert delete_records_raw(proc.bootstrap, queue, 99)[0] == ErrorCode.OFFSET_OUT_OF_RANGE
        samples = MetricsBroker(proc, port).scrape()
        assert value(samples, "logq_requests_total", api="DeleteRecords") == 2
        assert value(samples, "logq_errors_total", api="DeleteRecords", code="1") == 1
        assert value(samples, "logq_log_start_offset", partition=f"{queue}-0") == 4
    finally:
        proc.kill()
