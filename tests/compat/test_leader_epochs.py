"""Leader epochs seen by a real client of a standalone broker: messages carry the partition's leader epoch,
a restart starts a newer one, and a consumer that seeks with the epoch of a message it read (KIP-320:
librdkafka validates that position with OffsetForLeaderEpoch before fetching) reads on from there."""

from __future__ import annotations

import time

from confluent_kafka import OFFSET_BEGINNING, Message, TopicPartition

from tests.broker_process import BrokerProcess
from tests.compat import test_confluent_kafka as ck
from tests.compat.helpers import DEADLINE_S, make_messages


def read(bootstrap: str, start: TopicPartition, count: int) -> list[Message]:
    consumer = ck.consumer(bootstrap)
    got: list[Message] = []
    try:
        consumer.assign([start])
        deadline = time.monotonic() + DEADLINE_S
        while len(got) < count and time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=count - len(got), timeout=1):
                assert msg.error() is None, msg.error()
                got.append(msg)
    finally:
        consumer.close()
    assert len(got) == count, f"read {len(got)} of {count} messages"
    return got


def test_a_consumer_seeks_with_the_leader_epoch_of_a_message_it_read(broker: BrokerProcess) -> None:
    queue = "compat.epochs"
    ck.create_queue(broker.bootstrap, queue, partitions=1)
    sent = make_messages("epochs", 200)
    ck.produce_all(broker.bootstrap, queue, sent[:100], "none")

    first = read(broker.bootstrap, TopicPartition(queue, 0, OFFSET_BEGINNING), 100)
    epoch = first[50].leader_epoch()
    assert epoch is not None
    assert epoch >= 0
    assert {m.leader_epoch() for m in first} == {epoch}

    broker.restart()  # a new leader epoch for every partition
    ck.produce_all(broker.bootstrap, queue, sent[100:], "none")

    resumed = read(broker.bootstrap, TopicPartition(queue, 0, 50, leader_epoch=epoch), 150)
    assert [m.offset() for m in resumed] == list(range(50, 200))
    assert [m.value() for m in resumed] == [s.value for s in sent[50:]]
    newer = resumed[-1].leader_epoch()
    assert newer is not None
    assert newer > epoch
