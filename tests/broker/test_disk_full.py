"""A real broker process whose data directory is on a small loop-mounted filesystem, driven by
confluent-kafka (and logq's producer): a full disk answers every produce with KAFKA_STORAGE_ERROR (acks=0
closes the connection) and resumes once space is freed; acks=all goes on while appends still fit; a
failed fsync takes the data directory offline until a restart; metadata writes that fail are answered
and not half-made. Each is logged once, shows in the metrics, and after SIGKILL and a restart every
acknowledged message is there, in order, and nothing half-written."""

from __future__ import annotations

import collections
import logging
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]  # not in its __all__
from prometheus_client.parser import text_string_to_metric_families

from logq import Producer as LogqProducer
from logq.errors import ClientTimeoutError
from logq.protocol import messages as m
from tests.broker_process import BrokerProcess, free_port
from tests.small_disk import SmallDisk, ThinDisk
from tests.wire_client import WireClient

QUEUE = "q"
DEADLINE_S = 30.0
STORAGE_ERROR = KafkaError.KAFKA_STORAGE_ERROR  # 56


class Broker:
    """A broker process with its metrics endpoint."""

    def __init__(self, data_dir: Path, log: dict[str, int] | None = None) -> None:
        self.data_dir = data_dir
        self.metrics_port = free_port()
        self.proc = BrokerProcess(
            data_dir, broker={"metrics.listen": f"127.0.0.1:{self.metrics_port}"}, log=log
        ).start()
        self.bootstrap = self.proc.bootstrap

    def metric(self, name: str, **labels: str) -> float:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as reply:
            text = reply.read().decode()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and sample.labels == labels:
                    return float(sample.value)
        raise AssertionError(f"no sample {name}{labels}")

    def logged(self, text: str, timeout: float = 5.0) -> bool:
        """Whether the broker logs ``text`` within ``timeout`` (its output is read by another thread)."""
        deadline = time.monotonic() + timeout
        while text not in self.proc.log_text:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def error_lines(self) -> list[str]:
        assert self.logged(" ERROR ")
        return [line for line in self.proc.output if " ERROR " in line]


@pytest.fixture
def full_disk_broker(small_disk: SmallDisk) -> Iterator[Broker]:
    broker = Broker(small_disk.path / "data")
    yield broker
    broker.proc.kill()  # before the disk is unmounted


def create_queue(bootstrap: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(QUEUE, num_partitions=1, replication_factor=1)])[QUEUE].result(timeout=10)


def produce(
    bootstrap: str, acks: str, values: Sequence[bytes], *, until_error: bool = False
) -> list[tuple[KafkaError | None, int]]:
    """Send ``values`` one request each, without retries (the broker's answer reaches us as it is);
    returns (error, offset) per value sent (with ``until_error``, up to the first error)."""
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": acks,
            "retries": 0,
            "enable.idempotence": False,
            "linger.ms": 0,
            "message.timeout.ms": int(DEADLINE_S * 1000),
        }
    )
    results: list[tuple[KafkaError | None, int]] = []

    def delivered(err: KafkaError | None, msg: Message) -> None:
        results.append((err, msg.offset() or -1))

    for value in values:
        producer.produce(QUEUE, value, on_delivery=delivered)
        assert producer.flush(DEADLINE_S) == 0, "no answer within the deadline"
        if until_error and results[-1][0] is not None:
            break
    return results


def codes(results: Sequence[tuple[KafkaError | None, int]]) -> list[int]:
    return [0 if err is None else err.code() for err, _ in results]


class _LastLines(logging.Handler):
    """The last lines of librdkafka's debug log, to say why a consumer read nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: collections.deque[str] = collections.deque(maxlen=40)

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def consume(bootstrap: str, at_least: int) -> list[bytes]:
    """Every message of the queue from the beginning (waiting for ``at_least`` of them)."""
    debug = _LastLines()
    logger = logging.getLogger(f"{__name__}.consumer")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.handlers[:] = [debug]
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "unused",
            "enable.auto.commit": False,
            "debug": "fetch,topic,protocol",
        },
        logger=logger,
    )
    try:
        consumer.assign([TopicPartition(QUEUE, 0, OFFSET_BEGINNING)])
        out: list[bytes] = []
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            batch = consumer.consume(1000, 0.5)
            for msg in batch:
                assert msg.error() is None, msg.error()
                value = msg.value()
                assert isinstance(value, bytes)
                out.append(value)
            if not batch and len(out) >= at_least:
                return out
        tail = "\n".join(debug.lines)
        raise AssertionError(f"read {len(out)} messages, expected at least {at_least}; librdkafka:\n{tail}")
    finally:
        consumer.close()


def high_watermark(bootstrap: str) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused"})
    try:
        _, high = consumer.get_watermark_offsets(TopicPartition(QUEUE, 0), timeout=10, cached=False)
        return int(high)
    finally:
        consumer.close()


def values(start: int, count: int, size: int = 100) -> list[bytes]:
    return [b"%06d:" % i + b"x" * (size - 7) for i in range(start, start + count)]


def test_a_full_disk_answers_every_produce_and_appends_resume_once_space_is_freed(
    small_disk: SmallDisk, full_disk_broker: Broker
) -> None:
    broker = full_disk_broker
    create_queue(broker.bootstrap)
    sent = values(0, 50)
    assert codes(produce(broker.bootstrap, "all", sent)) == [0] * 50

    small_disk.fill()
    big = b"b" * 512 * 1024  # far more than the blocks left
    assert codes(produce(broker.bootstrap, "all", [big])) == [STORAGE_ERROR]  # answered, at once
    assert codes(produce(broker.bootstrap, "1", [big])) == [STORAGE_ERROR]
    produce(broker.bootstrap, "0", [big])  # acks=0: the broker closes the connection, as Kafka does
    assert high_watermark(broker.bootstrap) == 50  # nothing of the three was stored
    assert broker.logged(f"acks=0 produce failed with error {STORAGE_ERROR}")
    assert consume(broker.bootstrap, 50) == sent  # Metadata, ListOffsets and Fetch go on

    [line] = broker.error_lines()  # once, not per request
    assert f"data directory {broker.data_dir} is full (" in line
    assert "bytes free)" in line
    assert broker.metric("logq_log_dir_full") == 1
    assert broker.metric("logq_log_dir_offline") == 0
    assert broker.metric("logq_storage_errors_total", kind="no_space") == 3
    assert broker.metric("logq_errors_total", api="Produce", code=str(STORAGE_ERROR)) == 3

    small_disk.free()  # no restart
    more = values(50, 10)
    assert codes(produce(broker.bootstrap, "all", more)) == [0] * 10
    assert broker.logged("has space again")
    assert broker.metric("logq_log_dir_full") == 0

    broker.proc.kill()  # SIGKILL
    broker.proc.start()
    assert consume(broker.bootstrap, 60) == sent + more
    assert "truncated" not in broker.proc.log_text  # recovery found no torn batch to cut


def test_logqs_producer_names_the_full_disk_when_it_gives_up(
    small_disk: SmallDisk, full_disk_broker: Broker
) -> None:
    """logq's producer retries KAFKA_STORAGE_ERROR (retriable, as in Kafka) until delivery_timeout_ms;
    the timeout then says why, so a full disk is not mistaken for a slow one."""
    broker = full_disk_broker
    create_queue(broker.bootstrap)
    with LogqProducer(bootstrap=broker.bootstrap, acks="all") as producer:
        producer.send(QUEUE, b"before").result(timeout=DEADLINE_S)  # its producer id block is recorded
    small_disk.fill()
    settings = {"delivery_timeout_ms": 3000, "request_timeout_ms": 1000, "compression": "none"}
    with LogqProducer(bootstrap=broker.bootstrap, acks="all", **settings) as producer:
        sent = producer.send(QUEUE, b"x" * 300_000)
        with pytest.raises(ClientTimeoutError, match="last error: no space left in data directory"):
            sent.result(timeout=DEADLINE_S)


def init_producer_id(bootstrap: str) -> m.InitProducerIdResponse:
    with WireClient(bootstrap) as client:
        answer: m.InitProducerIdResponse = client.call(
            m.InitProducerIdRequest(transactional_id=None, transaction_timeout_ms=1000), 1
        )
        return answer


def test_metadata_writes_on_a_full_disk_are_refused_and_never_half_made(
    small_disk: SmallDisk, full_disk_broker: Broker
) -> None:
    """The standalone coordinator records producer-id blocks and queues in coordinator.json. A write that
    fails is answered KAFKA_STORAGE_ERROR and not made in memory either: an id of a block that was never
    recorded would be handed out again after a restart. (It used to close the connection, and the next
    InitProducerId handed out ids of the unrecorded block.)"""
    broker = full_disk_broker
    first = init_producer_id(broker.bootstrap)
    assert first.error_code == 0
    broker.proc.kill()
    broker.proc.start()  # the next InitProducerId needs a new block, recorded before it is used
    small_disk.fill()

    for _ in range(2):
        refused = init_producer_id(broker.bootstrap)
        assert (refused.error_code, refused.producer_id) == (STORAGE_ERROR, -1)
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    created = admin.create_topics([NewTopic("new", num_partitions=1, replication_factor=1)])["new"]
    with pytest.raises(KafkaException) as failure:
        created.result(timeout=10)
    assert failure.value.args[0].code() == STORAGE_ERROR
    assert "new" not in admin.list_topics(timeout=10).topics

    broker.proc.kill()
    small_disk.free()
    broker.proc.start()
    later = init_producer_id(broker.bootstrap)
    assert later.error_code == 0
    assert later.producer_id > first.producer_id
    assert "new" not in admin.list_topics(timeout=10).topics


def test_acks_all_on_a_full_disk_is_answered_and_goes_on_while_appends_fit(
    small_disk: SmallDisk, full_disk_broker: Broker
) -> None:
    """The symptom as reported: the segment still has blocks reserved ahead, so appends fit, but the
    checkpoint an acks=all flush writes to the index (RocksDB) needs a new block. The index write used to
    fail, closing the connection (the producer retried until it timed out) and killing the background
    flush. Now the index write waits for space and the fsync alone makes the batch durable: acks=all
    goes on until the reserved blocks run out, then every produce answers KAFKA_STORAGE_ERROR."""
    broker = full_disk_broker
    create_queue(broker.bootstrap)
    start = values(0, 70, size=64 * 1024)  # 4.4 MiB, and as much reserved ahead of the segment's end
    assert codes(produce(broker.bootstrap, "all", start)) == [0] * 70
    small_disk.fill()

    more = values(70, 500, size=16 * 1024)
    answers = codes(produce(broker.bootstrap, "all", more, until_error=True))
    assert answers[-1] == STORAGE_ERROR  # answered, not left to time out
    assert answers[:-1] == [0] * (len(answers) - 1)
    assert len(answers) > 100  # acknowledged while the reserved blocks lasted, with no index write
    acknowledged = start + more[: len(answers) - 1]
    assert codes(produce(broker.bootstrap, "1", values(9000, 1, size=16 * 1024))) == [STORAGE_ERROR]

    [line] = broker.error_lines()
    assert "is full (" in line
    assert broker.metric("logq_log_dir_offline") == 0
    assert consume(broker.bootstrap, len(acknowledged)) == acknowledged

    small_disk.free()
    assert codes(produce(broker.bootstrap, "all", values(9001, 1))) == [0]
    broker.proc.kill()
    broker.proc.start()
    assert consume(broker.bootstrap, len(acknowledged) + 1) == acknowledged + values(9001, 1)
    assert "truncated" not in broker.proc.log_text


def test_no_acknowledgement_after_a_failed_fsync(thin_disk: ThinDisk) -> None:
    """After a failed fsync the kernel may have dropped the unwritten pages, and a later fsync may report
    success over the hole: the broker acknowledges nothing more until it restarts."""
    broker = Broker(thin_disk.path / "data", log={"log.flush.interval.ms": 600_000})
    try:
        create_queue(broker.bootstrap)
        sent = values(0, 20)
        assert codes(produce(broker.bootstrap, "all", sent)) == [0] * 20
        thin_disk.exhaust()

        page_cache_only = values(20, 40, size=64 * 1024)  # acks=1: written, not fsynced
        assert codes(produce(broker.bootstrap, "1", page_cache_only)) == [0] * 40
        assert codes(produce(broker.bootstrap, "all", values(60, 3))) == [STORAGE_ERROR] * 3
        assert codes(produce(broker.bootstrap, "1", values(63, 1))) == [STORAGE_ERROR]

        [line] = broker.error_lines()
        assert f"data directory {broker.data_dir} is OFFLINE (" in line
        assert "fsync of" in line
        assert broker.metric("logq_log_dir_offline") == 1
        assert broker.metric("logq_storage_errors_total", kind="fsync") == 1
        assert high_watermark(broker.bootstrap) == 20  # reads stop at what was fsynced
        assert consume(broker.bootstrap, 20) == sent

        broker.proc.kill()
        thin_disk.replenish()
        thin_disk.remount()  # what the disk holds after a power cycle
        broker.proc.start()
        recovered = consume(broker.bootstrap, 20)
        assert recovered[:20] == sent  # every acks=all message
        assert recovered[20:] == page_cache_only[: len(recovered) - 20]  # then whole messages, in order
        assert codes(produce(broker.bootstrap, "all", values(64, 1))) == [0]
    finally:
        broker.proc.kill()
