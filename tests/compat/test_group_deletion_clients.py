"""Deleting groups and their offsets with real Kafka clients: confluent-kafka's AdminClient
``delete_consumer_groups`` (DeleteGroups; librdkafka aborts the process on a group API the broker does not
serve) and kafka-python's ``delete_groups`` and ``delete_group_offsets`` (OffsetDelete, which
confluent-kafka 2.16's Python API does not expose)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]  # not in its __all__
from kafka import KafkaAdminClient  # type: ignore[import-untyped]
from kafka import TopicPartition as KpTopicPartition
from kafka.errors import GroupSubscribedToTopicError, NoError  # type: ignore[import-untyped]
from kafka.structs import OffsetAndMetadata  # type: ignore[import-untyped]

from tests.broker_process import BrokerProcess
from tests.compat.helpers import DEADLINE_S

QUEUE = "orders"
MESSAGES = 20


@pytest.fixture
def gbroker(tmp_path: Path) -> Iterator[BrokerProcess]:
    proc = BrokerProcess(tmp_path / "data", broker={"group.initial.rebalance.delay.ms": 0}).start()
    yield proc
    proc.kill()


def make_queue(bootstrap: str, name: str = QUEUE) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])[name].result(DEADLINE_S)
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for i in range(MESSAGES):
        producer.produce(name, value=b"%d" % i)
    assert producer.flush(DEADLINE_S) == 0


def member(bootstrap: str, group: str, queue: str = QUEUE) -> Consumer:
    consumer = Consumer({
        "bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
        "enable.auto.commit": False, "session.timeout.ms": 6000,
    })  # fmt: skip
    consumer.subscribe([queue])
    return consumer


def first_offset(consumer: Consumer) -> int:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        msg = consumer.poll(0.2)
        if msg is not None and msg.error() is None:
            return int(msg.offset())
    raise AssertionError("nothing consumed before the deadline")


def consume_and_commit(bootstrap: str, group: str, count: int) -> None:
    consumer = member(bootstrap, group)
    last = -1
    while last < count - 1:
        last = first_offset(consumer)
    consumer.commit(asynchronous=False)
    consumer.close()


def delete_error(admin: AdminClient, group: str) -> int | None:
    """The error code ``delete_consumer_groups`` fails with, None when the group was deleted."""
    try:
        admin.delete_consumer_groups([group], request_timeout=DEADLINE_S)[group].result(DEADLINE_S)
    except KafkaException as exc:
        error: KafkaError = exc.args[0]
        return int(error.code())
    return None


def test_confluent_admin_deletes_an_empty_group_and_refuses_a_live_one(gbroker: BrokerProcess) -> None:
    bootstrap = gbroker.bootstrap
    make_queue(bootstrap)
    consume_and_commit(bootstrap, "done", 10)
    admin = AdminClient({"bootstrap.servers": bootstrap})

    live = member(bootstrap, "live")
    try:
        first_offset(live)  # joined and assigned
        assert delete_error(admin, "live") == KafkaError.NON_EMPTY_GROUP
    finally:
        live.close()

    assert delete_error(admin, "done") is None
    assert delete_error(admin, "done") == KafkaError.GROUP_ID_NOT_FOUND
    listed = admin.list_consumer_groups(request_timeout=DEADLINE_S).result(DEADLINE_S)
    assert "done" not in {g.group_id for g in listed.valid}

    # the offsets really went: a new member of the group starts where auto.offset.reset says
    fresh = member(bootstrap, "done")
    try:
        assert first_offset(fresh) == 0
    finally:
        fresh.close()  # never committed: the group is empty again, with nothing stored
    assert delete_error(admin, "done") is None
    gbroker.kill()
    gbroker.start()
    again = member(bootstrap, "done")
    try:
        assert first_offset(again) == 0  # and still gone after a restart
    finally:
        again.close()


def test_kafka_python_deletes_groups_and_the_offsets_of_unsubscribed_queues(gbroker: BrokerProcess) -> None:
    bootstrap = gbroker.bootstrap
    make_queue(bootstrap)
    make_queue(bootstrap, "retired")
    consume_and_commit(bootstrap, "old", 5)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        # a live member subscribes to "orders": its offsets stay, those of "retired" may go
        retired = KpTopicPartition("retired", 0)
        admin.alter_group_offsets(
            "app",
            {
                KpTopicPartition(QUEUE, 0): OffsetAndMetadata(3, "", None),
                retired: OffsetAndMetadata(4, "", None),
            },
        )
        live = member(bootstrap, "app")
        try:
            first_offset(live)
            answer = admin.delete_group_offsets("app", [KpTopicPartition(QUEUE, 0), retired])
        finally:
            live.close()
        assert answer == {KpTopicPartition(QUEUE, 0): GroupSubscribedToTopicError, retired: NoError}
        assert set(admin.list_group_offsets("app")["app"]) == {KpTopicPartition(QUEUE, 0)}

        assert admin.delete_groups(["old", "never"]) == {"old": "OK", "never": "GroupIdNotFoundError"}
        assert "old" not in {g["group_id"] for g in admin.list_groups()}
    finally:
        admin.close()
