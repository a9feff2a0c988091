"""Broker restarts under real clients: a clean stop between produce and consume loses nothing, and a
SIGKILL in the middle of an acks=all produce loop loses no acknowledged message."""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field

import pytest
from confluent_kafka import KafkaError, Message, Producer, TopicPartition

from tests.broker_process import BrokerProcess
from tests.compat import test_confluent_kafka as ck
from tests.compat import test_kafka_python as kp
from tests.compat.helpers import PARTITIONS, check_round_trip, encode_value, make_messages, seq_of


def test_clean_restart_between_produce_and_consume_loses_nothing(broker: BrokerProcess) -> None:
    queue = "compat.restart"
    ck.create_queue(broker.bootstrap, queue)
    sent = make_messages("restart", 10_100)
    ck.produce_all(broker.bootstrap, queue, sent[:10_000], "gzip")

    assert broker.stop() == 0
    broker.start()
    assert "(clean shutdown)" in broker.log_text

    # a new idempotent producer appends after the recovered log end, overwriting nothing
    ck.produce_all(broker.bootstrap, queue, sent[10_000:], "zstd")
    # read back with another client than the one that wrote
    by_partition = check_round_trip(kp.consume_all(broker.bootstrap, queue, len(sent)), sent)
    assert high_watermarks(broker.bootstrap, queue) == [len(by_partition[p]) for p in range(PARTITIONS)]


def high_watermarks(bootstrap: str, queue: str) -> list[int]:
    c = ck.consumer(bootstrap)
    try:
        return [c.get_watermark_offsets(TopicPartition(queue, p), timeout=10)[1] for p in range(PARTITIONS)]
    finally:
        c.close()


@dataclass
class KillRun:
    """What the background producer saw: (seq, partition, offset) of every acknowledged message."""

    acked: list[tuple[int, int, int]] = field(default_factory=list)
    failed: list[tuple[int, str]] = field(default_factory=list)
    fatal: list[str] = field(default_factory=list)
    produced: int = 0
    acked_at_kill: int = 0
    error: BaseException | None = None


PRODUCE_S = 6.0  # total produce time; the broker is killed KILL_AT_S in and back RESTART_AFTER_S later
KILL_AT_S = 2.0
RESTART_AFTER_S = 0.5
RATE_BATCH = 50  # messages per 10 ms: at most ~5,000/s, so the run stays a bounded size


def produce_loop(bootstrap: str, queue: str, run: KillRun, stop: threading.Event) -> None:
    try:
        producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
                # retry across the outage, but give up well inside the test's deadline
                "message.timeout.ms": 20_000,
                "reconnect.backoff.ms": 50,
                "reconnect.backoff.max.ms": 500,
                # transport errors during the outage are expected; a fatal one ends idempotence
                "error_cb": lambda err: run.fatal.append(str(err)) if err.fatal() else None,
            }
        )

        def delivered(err: KafkaError | None, msg: Message) -> None:
            seq = seq_of(msg.value())
            if err is None:
                partition, offset = msg.partition(), msg.offset()
                assert partition is not None
                assert offset is not None
                run.acked.append((seq, partition, offset))
            else:
                run.failed.append((seq, str(err)))

        end = time.monotonic() + PRODUCE_S
        while time.monotonic() < end and not stop.is_set():
            for _ in range(RATE_BATCH):
                seq = run.produced
                try:
                    producer.produce(
                        queue, encode_value("kill", seq), b"key-%06d" % seq, on_delivery=delivered
                    )
                except BufferError:  # the local queue is full while the broker is down
                    break
                run.produced += 1
            producer.poll(0)
            time.sleep(0.01)
        producer.flush(30)
    except BaseException as exc:  # re-raised by the test thread
        run.error = exc


@pytest.mark.slow
def test_sigkill_during_acks_all_produce_loses_no_acknowledged_message(broker: BrokerProcess) -> None:
    queue = "compat.sigkill"
    ck.create_queue(broker.bootstrap, queue)
    run, stop = KillRun(), threading.Event()
    producer = threading.Thread(target=produce_loop, args=(broker.bootstrap, queue, run, stop), daemon=True)
    producer.start()
    try:
        time.sleep(KILL_AT_S)
        broker.kill()  # SIGKILL: no flush, no clean-shutdown marker
        run.acked_at_kill = len(run.acked)
        time.sleep(RESTART_AFTER_S)
        broker.start()
        recoveries = re.findall(r"loaded (\d+) partitions from .* \((\w+) shutdown\)", broker.log_text)
        loaded, how = recoveries[-1]
        assert how == "unclean"
        assert int(loaded) >= PARTITIONS  # the queue's partitions and those of __consumer_offsets
    finally:
        producer.join(PRODUCE_S + 40)
        stop.set()
    assert not producer.is_alive(), "the producer thread did not finish"
    assert run.error is None, run.error
    assert not run.fatal, f"the idempotent producer hit a fatal error: {run.fatal}"

    ends = high_watermarks(broker.bootstrap, queue)
    stored = ck.consume_all(broker.bootstrap, queue, sum(ends))
    at = {(r.partition, r.offset): seq_of(r.value) for r in stored}
    copies: dict[int, int] = {}
    for r in stored:
        copies[seq_of(r.value)] = copies.get(seq_of(r.value), 0) + 1

    counts = (
        f"produced {run.produced}, acked {len(run.acked)} ({run.acked_at_kill} before the kill), "
        f"failed {len(run.failed)}, stored {len(stored)} of {sum(ends)}"
    )
    print(counts)  # shown with -s / -rP: the numbers behind the verdict
    assert len(stored) == sum(ends), counts
    assert run.acked_at_kill > 0, "the kill came before any acknowledgement: " + counts
    assert len(run.acked) > run.acked_at_kill, "nothing was acknowledged after the restart: " + counts
    lost = [a for a in run.acked if at.get((a[1], a[2])) != a[0]]
    assert not lost, f"{len(lost)} acknowledged messages missing or moved, e.g. {lost[:5]}; {counts}"
    # the producer is idempotent: its retries across the crash must not store a message twice
    twice = sorted(seq for seq, n in copies.items() if n > 1)
    assert not twice, f"{len(twice)} messages stored twice, e.g. {twice[:5]}; {counts}"
