"""ListOffsets MAX_TIMESTAMP (KIP-734, ListOffsets v7) through real clients' admin APIs: confluent-kafka's
``AdminClient.list_offsets`` with ``OffsetSpec.max_timestamp()`` and kafka-python's
``KafkaAdminClient.list_partition_offsets`` with ``OffsetSpec.MAX_TIMESTAMP``. The producer's
timestamps go backwards, so the largest is neither the last record nor a batch's last record."""

from __future__ import annotations

from confluent_kafka import Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec  # type: ignore[attr-defined]
from kafka import KafkaAdminClient  # type: ignore[import-untyped]
from kafka import TopicPartition as KafkaTopicPartition
from kafka.admin import OffsetSpec as KafkaOffsetSpec  # type: ignore[import-untyped]

from tests.broker_process import BrokerProcess

TIMEOUT_S = 10
# (timestamp) per record, in produce order: two batches (a flush between), the largest in the middle of
# the first.
FIRST = [1_700_000_001_000, 1_700_000_005_000, 1_700_000_009_000, 1_700_000_003_000]
SECOND = [1_700_000_008_000, 1_700_000_002_000]
LARGEST = (2, 1_700_000_009_000)  # (offset, timestamp)


def create_and_fill(bootstrap: str, queue: str, replication_factor: int = 1) -> AdminClient:
    """Partition 0 gets FIRST then SECOND; partition 1 stays empty."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topic = NewTopic(queue, num_partitions=2, replication_factor=replication_factor)
    admin.create_topics([topic])[queue].result(TIMEOUT_S)
    producer = Producer(
        {"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all", "linger.ms": 50}
    )
    for batch in (FIRST, SECOND):
        for timestamp in batch:
            producer.produce(queue, value=b"%d" % timestamp, partition=0, timestamp=timestamp)
        assert producer.flush(TIMEOUT_S) == 0
    return admin


def check_max_timestamp(admin: AdminClient) -> None:
    wanted = {TopicPartition("maxts", p): OffsetSpec.max_timestamp() for p in (0, 1)}
    found = {tp.partition: f.result(TIMEOUT_S) for tp, f in admin.list_offsets(wanted).items()}
    assert (found[0].offset, found[0].timestamp) == LARGEST
    assert (found[1].offset, found[1].timestamp) == (-1, -1)  # an empty partition
    latest = admin.list_offsets({TopicPartition("maxts", 0): OffsetSpec.latest()})
    assert next(iter(latest.values())).result(TIMEOUT_S).offset == len(FIRST) + len(SECOND)


def test_confluent_kafka_admin_list_offsets_max_timestamp(broker: BrokerProcess) -> None:
    check_max_timestamp(create_and_fill(broker.bootstrap, "maxts"))


def test_kafka_python_admin_list_partition_offsets_max_timestamp(broker: BrokerProcess) -> None:
    create_and_fill(broker.bootstrap, "maxts")
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=TIMEOUT_S * 1000)
    try:
        wanted = {KafkaTopicPartition("maxts", p): KafkaOffsetSpec.MAX_TIMESTAMP for p in (0, 1)}
        found = {tp.partition: answer for tp, answer in admin.list_partition_offsets(wanted).items()}
    finally:
        admin.close()
    assert (found[0].offset, found[0].timestamp) == LARGEST
    assert (found[1].offset, found[1].timestamp) == (-1, -1)
