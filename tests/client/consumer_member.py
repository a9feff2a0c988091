"""A consumer-group member in its own process, for tests that kill members or mix clients.

Usage: python -m tests.client.consumer_member BOOTSTRAP QUEUE GROUP SECONDS [ASSIGNOR] [SESSION_MS] [CLIENT]
CLIENT is logq (the default) or confluent (librdkafka with the same assignor, for cooperative-sticky
groups mixing both). Prints one JSON object per line: {"assigned": [partitions]} after every change of
its assignment, and {"p": partition, "o": offset, "v": value} for every record, before committing it
(at least once: the commit follows the processing).
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from typing import Any, NamedTuple

from logq.client.cluster import QueuePartition
from logq.client.sync_consumer import Consumer
from logq.errors import CommitFailedError, RebalanceInProgressError


class Options(NamedTuple):
    bootstrap: str
    queue: str
    group: str
    seconds: float
    assignor: str = "range"
    session_ms: int = 6000
    client: str = "logq"


def emit(obj: dict[str, Any]) -> None:
    print(json.dumps(obj), flush=True)


def logq_member(opts: Options) -> None:
    consumer = Consumer(
        opts.bootstrap, group_id=opts.group, auto_offset_reset="earliest", enable_auto_commit=False,
        session_timeout_ms=opts.session_ms, heartbeat_interval_ms=min(500, opts.session_ms // 3),
        assignors=(opts.assignor,), fetch_max_wait_ms=200,
    )  # fmt: skip

    def changed(c: Consumer, partitions: list[QueuePartition]) -> None:
        emit({"assigned": sorted(p.partition for p in c.assignment())})

    def revoked(c: Consumer, partitions: list[QueuePartition]) -> None:  # still assigned in the callback
        emit({"assigned": sorted(p.partition for p in c.assignment() if p not in set(partitions))})

    consumer.subscribe([opts.queue], on_assign=changed, on_revoke=revoked, on_lost=revoked)
    deadline = time.monotonic() + opts.seconds
    try:
        while time.monotonic() < deadline:
            records = consumer.poll(0.2)
            for record in records:
                emit({"p": record.partition, "o": record.offset, "v": (record.value or b"").decode()})
            if records:  # commit after processing: at least once (if the partitions moved on meanwhile,
                # their next owner reads these records again)
                with contextlib.suppress(CommitFailedError, RebalanceInProgressError):
                    consumer.commit()
    finally:
        consumer.close()


def confluent_member(opts: Options) -> None:
    from confluent_kafka import Consumer as ConfluentConsumer
    from confluent_kafka import KafkaError, KafkaException, TopicPartition

    consumer = ConfluentConsumer({
        "bootstrap.servers": opts.bootstrap, "group.id": opts.group, "auto.offset.reset": "earliest",
        "enable.auto.commit": False, "session.timeout.ms": opts.session_ms, "heartbeat.interval.ms": 500,
        "partition.assignment.strategy": opts.assignor,
    })  # fmt: skip
    processed: dict[int, int] = {}  # partition -> the next offset to read, not committed yet
    refused_in_a_rebalance = {KafkaError.REBALANCE_IN_PROGRESS, KafkaError.ILLEGAL_GENERATION}

    def commit(partitions: set[int]) -> None:
        """Commit what was processed; a commit refused during a rebalance stays pending and is tried again
        after the next poll: REBALANCE_IN_PROGRESS, or ILLEGAL_GENERATION for a commit sent in the old
        generation and answered after the join completed (it waited behind the parked JoinGroup on the
        coordinator's connection, as it would in Kafka)."""
        offsets = [TopicPartition(opts.queue, p, processed[p]) for p in partitions if p in processed]
        if not offsets:
            return
        try:
            consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            error = exc.args[0]
            if not error.retriable() and error.code() not in refused_in_a_rebalance:
                raise
            return
        for tp in offsets:
            if processed.get(tp.partition) == tp.offset:
                del processed[tp.partition]

    def changed(c: Any, partitions: list[Any]) -> None:  # cooperative: not yet added during the callback
        emit({"assigned": sorted({p.partition for p in c.assignment()} | {p.partition for p in partitions})})

    def revoked(c: Any, partitions: list[Any]) -> None:  # still owned during the callback: list the rest
        gone = {p.partition for p in partitions}
        commit(gone)
        emit({"assigned": sorted(p.partition for p in c.assignment() if p.partition not in gone)})

    consumer.subscribe([opts.queue], on_assign=changed, on_revoke=revoked, on_lost=revoked)
    deadline = time.monotonic() + opts.seconds
    try:
        while time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is not None and not msg.error():
                emit({"p": msg.partition(), "o": msg.offset(), "v": (msg.value() or b"").decode()})
                processed[msg.partition()] = msg.offset() + 1
            commit(set(processed))  # after processing: at least once
    finally:
        consumer.close()


if __name__ == "__main__":
    args = sys.argv[1:]
    options = Options(
        args[0], args[1], args[2], float(args[3]), *args[4:5], *(int(a) for a in args[5:6]), *args[6:7]
    )
    (confluent_member if options.client == "confluent" else logq_member)(options)
