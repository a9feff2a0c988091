"""Reading a compacted queue from the beginning with real clients, and waiting for the cleaner."""

from __future__ import annotations

import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from logq import Consumer as LogqConsumer
from tests.broker_process import BrokerProcess

DEADLINE_S = 60
Entry = tuple[int, bytes | None, bytes | None]  # offset, key, value


def read_with_confluent(bootstrap: str, queue: str) -> list[Entry]:
    """Every record of partition 0 from the beginning to the end, in the order librdkafka hands them."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "unused",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    try:
        consumer.assign([TopicPartition(queue, 0, OFFSET_BEGINNING)])
        out: list[Entry] = []
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            for msg in consumer.consume(1000, 0.5):
                error = msg.error()
                if error is not None:
                    assert error.code() == KafkaError._PARTITION_EOF, error
                    return out
                offset = msg.offset()
                assert offset is not None
                out.append((offset, msg.key(), msg.value()))
        raise AssertionError(f"no end of partition within {DEADLINE_S} s ({len(out)} records read)")
    finally:
        consumer.close()


def read_with_logq(bootstrap: str, queue: str) -> list[Entry]:
    with LogqConsumer(bootstrap) as consumer:
        end = consumer.end_offsets([(queue, 0)])
        (partition,) = end
        consumer.assign([partition])
        consumer.seek_to_beginning()
        out: list[Entry] = []
        deadline = time.monotonic() + DEADLINE_S
        while consumer.position(partition) < end[partition]:
            assert time.monotonic() < deadline, f"stuck at offset {consumer.position(partition)}"
            out.extend((r.offset, r.key, r.value) for r in consumer.poll(0.5))
        return out


def expected_view(latest: dict[bytes, tuple[int, bytes | None]]) -> list[Entry]:
    """What a consumer of a cleaned queue reads: the latest record of each key not deleted, by offset."""
    return sorted((offset, key, value) for key, (offset, value) in latest.items() if value is not None)


def wait_for_passes(broker: BrokerProcess, count: int) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while broker.log_text.count("cleaned ") < count:
        assert time.monotonic() < deadline, "the log cleaner did not run:\n" + broker.log_text[-3000:]
        time.sleep(0.1)


def wait_until_read_is(bootstrap: str, queue: str, wanted: list[Entry]) -> list[Entry]:
    """Read with librdkafka until it sees exactly ``wanted`` (the cleaner works in the background)."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        got = read_with_confluent(bootstrap, queue)
        if got == wanted or time.monotonic() > deadline:
            return got
        time.sleep(0.5)
