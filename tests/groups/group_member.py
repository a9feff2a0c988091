"""A consumer-group member in its own process, for tests that kill members.

Usage: python -m tests.groups.group_member BOOTSTRAP QUEUE GROUP CLIENT SECONDS
CLIENT is confluent or kafka-python. Prints one JSON object per line: {"assigned": [partitions]} on every
assignment and {"p": partition, "o": offset} for every record, before committing it (at least once).
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any


def emit(obj: dict[str, Any]) -> None:
    print(json.dumps(obj), flush=True)


def confluent(bootstrap: str, queue: str, group: str, seconds: float) -> None:
    from confluent_kafka import Consumer

    consumer = Consumer({
        "bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
        "enable.auto.commit": False, "session.timeout.ms": 6000, "heartbeat.interval.ms": 500,
    })  # fmt: skip
    consumer.subscribe([queue], on_assign=lambda c, parts: emit({"assigned": [p.partition for p in parts]}))
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        msg = consumer.poll(0.2)
        if msg is not None and not msg.error():
            emit({"p": msg.partition(), "o": msg.offset()})  # process, then commit: at least once
            consumer.commit(msg, asynchronous=False)
    consumer.close()


def kafka_python(bootstrap: str, queue: str, group: str, seconds: float) -> None:
    from kafka import ConsumerRebalanceListener, KafkaConsumer  # type: ignore[import-untyped]

    class Listener(ConsumerRebalanceListener):  # type: ignore[misc]
        def on_partitions_revoked(self, revoked: Any) -> None:
            pass

        def on_partitions_assigned(self, assigned: Any) -> None:
            emit({"assigned": sorted(tp.partition for tp in assigned)})

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest", enable_auto_commit=False,
        session_timeout_ms=6000, heartbeat_interval_ms=500,
    )  # fmt: skip
    consumer.subscribe([queue], listener=Listener())
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=200).values():
            for record in records:
                emit({"p": record.partition, "o": record.offset})
            consumer.commit()
    consumer.close()


if __name__ == "__main__":
    bootstrap, queue, group, client, seconds = sys.argv[1:6]
    (confluent if client == "confluent" else kafka_python)(bootstrap, queue, group, float(seconds))
