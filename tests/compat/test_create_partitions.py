"""CreatePartitions (37) on a standalone broker, with real clients: confluent-kafka's and kafka-python's
admin grow a queue and get Kafka's error codes for what cannot be done; after growing, a librdkafka
producer and logq's producer write to the new partitions once their metadata shows them, and a
confluent-kafka group and a logq group rebalance to take them; a restart keeps the new count."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer as ConfluentConsumer
from confluent_kafka import KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic  # type: ignore[attr-defined]
from kafka import KafkaAdminClient  # type: ignore[import-untyped]
from kafka.admin import NewPartitions as KafkaPythonNewPartitions  # type: ignore[import-untyped]
from kafka.errors import InvalidPartitionsError as KafkaPythonInvalidPartitions  # type: ignore[import-untyped]

from logq.client.consumer import Consumer
from logq.client.producer import Producer as LogqProducer
from logq.error_codes import ErrorCode
from logq.protocol import messages as m
from tests.broker_process import BrokerProcess
from tests.wire_client import WireClient

GROUP_SETTINGS = {
    "group.initial.rebalance.delay.ms": 100,
    "group.min.session.timeout.ms": 1000,
    "offsets.topic.num.partitions": 3,
}


@pytest.fixture(scope="module")
def gbroker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    proc = BrokerProcess(Path(tmp_path_factory.mktemp("grow")) / "data", broker=GROUP_SETTINGS).start()
    yield proc
    proc.kill()


def admin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap})


def create(bootstrap: str, queue: str, partitions: int) -> None:
    client = admin(bootstrap)  # kept until the answer: a client destroyed early fails its futures
    client.create_topics([NewTopic(queue, partitions, 1)])[queue].result(30)


def grow(bootstrap: str, queue: str, total: int, **options: Any) -> None:
    client = admin(bootstrap)
    client.create_partitions([NewPartitions(queue, total, **options)], operation_timeout=10)[queue].result(30)


def refused(bootstrap: str, queue: str, total: int, **options: Any) -> KafkaError:
    with pytest.raises(KafkaException) as caught:
        grow(bootstrap, queue, total, **options)
    error: KafkaError = caught.value.args[0]
    return error


def partition_count(bootstrap: str, queue: str) -> int:
    return len(admin(bootstrap).list_topics(queue, timeout=10).topics[queue].partitions)


def end_offsets(bootstrap: str, queue: str, partitions: int) -> list[int]:
    probe = ConfluentConsumer({"bootstrap.servers": bootstrap, "group.id": "probe"})
    try:
        return [
            probe.get_watermark_offsets(TopicPartition(queue, p), timeout=10)[1] for p in range(partitions)
        ]
    finally:
        probe.close()


def wait_for(condition: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_confluent_admin_grows_a_queue_and_gets_kafka_s_errors(gbroker: BrokerProcess) -> None:
    bootstrap = gbroker.bootstrap
    create(bootstrap, "grow-c", 2)
    (me,) = admin(bootstrap).list_topics(timeout=10).brokers  # the standalone broker's id
    grow(bootstrap, "grow-c", 3, replica_assignment=[[me]])
    grow(bootstrap, "grow-c", 5)
    assert partition_count(bootstrap, "grow-c") == 5
    shrink = refused(bootstrap, "grow-c", 3)
    assert shrink.code() == KafkaError.INVALID_PARTITIONS
    assert "never removed" in shrink.str()
    assert refused(bootstrap, "grow-c", 5).code() == KafkaError.INVALID_PARTITIONS
    assert refused(bootstrap, "no-such-queue", 5).code() == KafkaError.UNKNOWN_TOPIC_OR_PART
    bad = refused(bootstrap, "grow-c", 7, replica_assignment=[[me], [42]])
    assert bad.code() == KafkaError.INVALID_REPLICA_ASSIGNMENT
    assert "42" in bad.str()
    one_short = refused(bootstrap, "grow-c", 7, replica_assignment=[[me]])
    assert one_short.code() == KafkaError.INVALID_REPLICA_ASSIGNMENT
    internal = refused(bootstrap, "__consumer_offsets", 10)
    assert internal.code() == KafkaError.INVALID_REQUEST
    # validate_only: checked, nothing changed
    client = admin(bootstrap)
    client.create_partitions([NewPartitions("grow-c", 8)], validate_only=True)["grow-c"].result(30)
    assert partition_count(bootstrap, "grow-c") == 5


def test_a_queue_listed_twice_is_an_invalid_request(gbroker: BrokerProcess) -> None:
    create(gbroker.bootstrap, "grow-twice", 1)
    topic = m.CreatePartitionsTopic(name="grow-twice", count=2, assignments=None)
    with WireClient(gbroker.bootstrap) as client:
        answer = client.call(m.CreatePartitionsRequest(topics=[topic, topic], timeout_ms=5000), 1)
    assert [(r.name, r.error_code) for r in answer.results] == [("grow-twice", ErrorCode.INVALID_REQUEST)]
    assert partition_count(gbroker.bootstrap, "grow-twice") == 1


def test_a_growth_outlasting_its_timeout_answers_request_timed_out_and_completes(
    gbroker: BrokerProcess,
) -> None:
    create(gbroker.bootstrap, "grow-slow", 1)
    topic = m.CreatePartitionsTopic(name="grow-slow", count=301, assignments=None)
    with WireClient(gbroker.bootstrap) as client:
        # timeout_ms=1: the broker answers long before 300 logs can exist
        answer = client.call(m.CreatePartitionsRequest(topics=[topic], timeout_ms=1), 0)
    assert answer.results[0].error_code == ErrorCode.REQUEST_TIMED_OUT
    assert "still growing to 301 partitions" in (answer.results[0].error_message or "")
    wait_for(
        lambda: (
            "queue grow-slow grew to 301 partitions after answering REQUEST_TIMED_OUT" in gbroker.log_text
        ),
        60,
        "the growth to complete",
    )
    assert partition_count(gbroker.bootstrap, "grow-slow") == 301


def test_kafka_python_admin_grows_a_queue(gbroker: BrokerProcess) -> None:
    bootstrap = gbroker.bootstrap
    create(bootstrap, "grow-kp", 1)
    client = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        client.create_partitions({"grow-kp": KafkaPythonNewPartitions(4)})
        with pytest.raises(KafkaPythonInvalidPartitions):
            client.create_partitions({"grow-kp": KafkaPythonNewPartitions(2)})
    finally:
        client.close()
    assert partition_count(bootstrap, "grow-kp") == 4


def test_a_librdkafka_producer_and_group_take_the_new_partitions(gbroker: BrokerProcess) -> None:
    bootstrap = gbroker.bootstrap
    create(bootstrap, "grow-rd", 2)
    consumer = ConfluentConsumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "grow-rd-g",
            "auto.offset.reset": "earliest",
            "topic.metadata.refresh.interval.ms": 500,
            "session.timeout.ms": 6000,
        }
    )
    producer = Producer({"bootstrap.servers": bootstrap, "topic.metadata.refresh.interval.ms": 500})
    try:
        consumer.subscribe(["grow-rd"])
        wait_for(lambda: consumer.poll(0.2) is None and len(consumer.assignment()) == 2, 30, "2 partitions")
        grow(bootstrap, "grow-rd", 4)
        # keyless messages go to every partition the producer knows: the new ones once it has seen them
        # (sticky partitioning fills one partition per batch: wait until each of the four has some)
        deadline = time.monotonic() + 20
        sent = 0
        while min(end_offsets(bootstrap, "grow-rd", 4)) == 0:
            assert time.monotonic() < deadline, "the producer never wrote to partitions 2 and 3"
            for _ in range(20):
                producer.produce("grow-rd", value=b"m%d" % sent)
                sent += 1
            producer.flush(10)
            time.sleep(0.2)
        got: set[int] = set()
        deadline = time.monotonic() + 30
        while len(got) < 4 or len(consumer.assignment()) < 4:
            assert time.monotonic() < deadline, f"consumed from {got}, assigned {consumer.assignment()}"
            msg = consumer.poll(0.2)
            if msg is not None and msg.error() is None:
                got.add(msg.partition())
        assert sorted(tp.partition for tp in consumer.assignment()) == [0, 1, 2, 3]
    finally:
        consumer.close()


def test_logq_producer_and_group_take_the_new_partitions(gbroker: BrokerProcess) -> None:
    bootstrap = gbroker.bootstrap
    create(bootstrap, "grow-lq", 2)

    async def scenario() -> None:
        settings: dict[str, Any] = {
            "auto_offset_reset": "earliest",
            "metadata_max_age_ms": 500,
            "session_timeout_ms": 6000,
            "heartbeat_interval_ms": 200,
            "fetch_max_wait_ms": 100,
        }
        async with Consumer(bootstrap, group_id="grow-lq-g", **settings) as consumer:
            consumer.subscribe(["grow-lq"])
            deadline = time.monotonic() + 20
            while len(consumer.assignment()) < 2:
                assert time.monotonic() < deadline, "the group never formed"
                await consumer.poll(0.2)
            async with LogqProducer(bootstrap, metadata_max_age_ms=500, linger_ms=0) as producer:

                async def send_keyed() -> set[int]:
                    """Keyed records, spread by the partition count the producer knows."""
                    futures = [producer.send("grow-lq", b"v", key=b"k%d" % i) for i in range(64)]
                    return {(await asyncio.to_thread(f.result, 10)).partition for f in futures}

                assert await send_keyed() == {0, 1}
                await asyncio.to_thread(grow, bootstrap, "grow-lq", 4)
                grown_at = time.monotonic()
                deadline = time.monotonic() + 20
                while (written := await send_keyed()) != {0, 1, 2, 3}:
                    assert time.monotonic() < deadline, f"the producer wrote only to {written}"
                    await asyncio.sleep(0.2)
            # the leader looks at the subscribed queues' partition counts every metadata_max_age_ms
            got: set[int] = set()
            deadline = grown_at + 10
            while len(got) < 4:
                assert time.monotonic() < deadline, f"consumed from {got}, assigned {consumer.assignment()}"
                got |= {r.partition for r in await consumer.poll(0.2)}
            assert sorted(tp.partition for tp in consumer.assignment()) == [0, 1, 2, 3]

    asyncio.run(asyncio.wait_for(scenario(), 90))


def test_a_restart_keeps_the_new_partition_count(tmp_path: Path) -> None:
    proc = BrokerProcess(tmp_path / "data").start()
    try:
        create(proc.bootstrap, "grow-r", 1)
        grow(proc.bootstrap, "grow-r", 3)
        producer = Producer({"bootstrap.servers": proc.bootstrap})
        producer.produce("grow-r", value=b"in the new partition", partition=2)
        assert producer.flush(10) == 0
        proc.restart()
        assert partition_count(proc.bootstrap, "grow-r") == 3
        assert end_offsets(proc.bootstrap, "grow-r", 3) == [0, 0, 1]
    finally:
        proc.kill()
