"""Compacted queues on a real broker process, created, written and read by real clients: confluent-kafka
(librdkafka) and logq's own. The broker's cleaner is made quick: small segments that roll after half a
second, a low min.cleanable.dirty.ratio, a short log.cleaner.backoff.ms."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, Message, Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]  # not in its __all__

from logq import Producer as LogqProducer
from logq.config import LogConfig
from logq.groups.offsets import offsets_log_config
from tests.broker.test_metrics import MetricsBroker
from tests.broker.test_metrics import value as sample
from tests.broker_process import BrokerProcess, free_port
from tests.compaction.helpers import (
    DEADLINE_S,
    Entry,
    expected_view,
    read_with_logq,
    wait_for_passes,
    wait_until_read_is,
)

BROKER_LOG = {"log.cleaner.backoff.ms": 100, "retention.check.interval.ms": 200}
QUEUE_SETTINGS = {
    "cleanup.policy": "compact",
    "segment.bytes": "16384",
    "segment.ms": "500",
    "min.cleanable.dirty.ratio": "0.01",
    "delete.retention.ms": "1000",
    "file.delete.delay.ms": "1000",  # a Kafka queue setting too (librdkafka's 0077 sets it)
}
KEYS = 50
ROUNDS = 30


@pytest.fixture
def compacting_broker(tmp_path: Path) -> Iterator[BrokerProcess]:
    proc = BrokerProcess(tmp_path / "broker-data", log=BROKER_LOG).start()
    yield proc
    proc.kill()


def create_compacted(bootstrap: str, queue: str, **overrides: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topic = NewTopic(queue, num_partitions=1, replication_factor=1, config=QUEUE_SETTINGS | overrides)
    admin.create_topics([topic], operation_timeout=10)[queue].result(timeout=10)


class Writer:
    """One idempotent confluent-kafka producer for the whole test, remembering the latest (offset, value)
    of every key as the broker acknowledged it."""

    def __init__(self, bootstrap: str, queue: str) -> None:
        self.queue = queue
        self.latest: dict[bytes, tuple[int, bytes | None]] = {}
        self.errors: list[KafkaError] = []
        self._producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
                "message.timeout.ms": DEADLINE_S * 1000,
            }
        )

    def _delivered(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self.errors.append(err)
            return
        key, offset = msg.key(), msg.offset()
        assert isinstance(key, bytes)
        assert offset is not None
        if offset > self.latest.get(key, (-1, None))[0]:
            self.latest[key] = (offset, msg.value())

    def write(self, pairs: list[tuple[bytes, bytes | None]]) -> None:
        for key, value in pairs:
            self._producer.produce(self.queue, value, key, partition=0, on_delivery=self._delivered)
            self._producer.poll(0)
        assert self._producer.flush(DEADLINE_S) == 0
        assert not self.errors, self.errors[:5]

    def updates(self, rounds: int, tag: str) -> None:
        self.write(
            [
                (b"key-%03d" % k, f"{tag}-{r}-{k}".encode() + b"v" * 100)
                for r in range(rounds)
                for k in range(KEYS)
            ]
        )


def test_readers_see_exactly_the_latest_value_of_each_key_and_an_idempotent_producer_continues(
    compacting_broker: BrokerProcess,
) -> None:
    bootstrap, queue = compacting_broker.bootstrap, "compacted.values"
    create_compacted(bootstrap, queue)
    writer = Writer(bootstrap, queue)
    writer.updates(ROUNDS, "first")
    writer.write([(b"key-%03d" % k, None) for k in range(0, KEYS, 5)])  # deletes
    writer.updates(1, "again")  # the last records are not tombstones: every reader reaches the end
    writer.write([(b"key-%03d" % k, None) for k in range(1, KEYS, 5)])
    writer.write([(b"key-%03d" % k, b"last") for k in range(2, KEYS, 5)])
    time.sleep(0.6)  # segment.ms: the active segment rolls, so that all of it can be cleaned
    wanted = expected_view(writer.latest)
    got = wait_until_read_is(bootstrap, queue, wanted)
    assert got == wanted
    assert read_with_logq(bootstrap, queue) == wanted
    # The same producer (same producer id, its sequences continuing) keeps writing to the cleaned
    # partition: no OUT_OF_ORDER_SEQUENCE, no duplicate.
    writer.updates(3, "after")
    time.sleep(0.6)
    wanted = expected_view(writer.latest)
    assert wait_until_read_is(bootstrap, queue, wanted) == wanted
    assert read_with_logq(bootstrap, queue) == wanted
    assert "cleaned compacted.values-0" in compacting_broker.log_text


def test_deleted_keys_disappear_after_delete_retention_ms(compacting_broker: BrokerProcess) -> None:
    bootstrap, queue = compacting_broker.bootstrap, "compacted.deletes"
    create_compacted(bootstrap, queue)
    writer = Writer(bootstrap, queue)
    writer.updates(5, "v")
    writer.write([(b"key-%03d" % k, None) for k in range(KEYS - 10)])
    writer.write([(b"key-%03d" % k, b"last") for k in range(KEYS - 10, KEYS)])
    time.sleep(0.6)
    wanted = expected_view(writer.latest)  # tombstones aside: they stay delete.retention.ms
    deadline = time.monotonic() + DEADLINE_S
    while True:
        got = read_with_logq(bootstrap, queue)
        if [e for e in got if e[2] is not None] == wanted and all(e[2] is not None for e in got):
            break
        assert time.monotonic() < deadline, got[:20]
        time.sleep(0.5)
    assert [e for e in got if e[1] is not None] == wanted


def test_records_without_a_key_are_refused_with_invalid_record(compacting_broker: BrokerProcess) -> None:
    bootstrap, queue = compacting_broker.bootstrap, "compacted.keyless"
    create_compacted(bootstrap, queue)
    producer = Producer({"bootstrap.servers": bootstrap, "message.timeout.ms": 10_000})
    errors: list[KafkaError | None] = []

    def delivered(err: KafkaError | None, _msg: Message) -> None:
        errors.append(err)

    # one batch each: Kafka refuses the whole batch that holds a record without a key
    producer.produce(queue, b"no key", partition=0, on_delivery=delivered)
    assert producer.flush(10) == 0
    producer.produce(queue, b"keyed", b"k", partition=0, on_delivery=delivered)
    assert producer.flush(10) == 0
    refused, accepted = errors
    assert refused is not None
    assert refused.code() == KafkaError.INVALID_RECORD
    assert accepted is None
    assert read_with_logq(bootstrap, queue) == [(0, b"k", b"keyed")]


def test_a_batch_with_keyless_records_names_them_so_clients_fail_only_those(
    compacting_broker: BrokerProcess,
) -> None:
    """KIP-467: the batch is refused, and the answer lists the keyless records by index; librdkafka fails
    those with INVALID_RECORD and the others with _INVALID_DIFFERENT_RECORD."""
    bootstrap, queue = compacting_broker.bootstrap, "compacted.mixed"
    create_compacted(bootstrap, queue)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 1000, "message.timeout.ms": 10_000})
    outcomes: dict[bytes, int] = {}

    def delivered(err: KafkaError | None, msg: Message) -> None:
        outcomes[msg.value() or b""] = 0 if err is None else err.code()

    for i in range(10):  # one batch: the linger outlasts the loop
        producer.produce(
            queue, b"%d" % i, None if i % 3 == 0 else b"k%d" % i, partition=0, on_delivery=delivered
        )
    assert producer.flush(15) == 0
    assert outcomes == {
        b"%d" % i: KafkaError.INVALID_RECORD if i % 3 == 0 else KafkaError._INVALID_DIFFERENT_RECORD
        for i in range(10)
    }
    assert read_with_logq(bootstrap, queue) == []


def test_compact_delete_also_ages_segments_out(compacting_broker: BrokerProcess) -> None:
    bootstrap, queue = compacting_broker.bootstrap, "compacted.aged"
    create_compacted(bootstrap, queue, **{"cleanup.policy": "compact,delete", "retention.ms": "2000"})
    writer = Writer(bootstrap, queue)
    writer.updates(10, "old")
    wait_for_passes(compacting_broker, 1)
    deadline = time.monotonic() + DEADLINE_S
    while read_with_logq(bootstrap, queue):  # everything ages out: retention.ms applies too
        assert time.monotonic() < deadline, "retention did not delete the compacted segments"
        time.sleep(0.5)
    writer.updates(1, "new")
    got: list[Entry] = read_with_logq(bootstrap, queue)
    assert [v for _, _, v in got] == [f"new-0-{k}".encode() + b"v" * 100 for k in range(KEYS)]


def test_passes_and_bytes_are_in_the_metrics_and_the_log(tmp_path: Path) -> None:
    port = free_port()
    proc = BrokerProcess(
        tmp_path / "broker-data", broker={"metrics.listen": f"127.0.0.1:{port}"}, log=BROKER_LOG
    ).start()
    try:
        bootstrap, queue = proc.bootstrap, "compacted.metrics"
        create_compacted(bootstrap, queue)
        Writer(bootstrap, queue).updates(ROUNDS, "m")
        wait_for_passes(proc, 1)
        samples = MetricsBroker(proc, port).scrape()
        assert sample(samples, "logq_cleaner_passes_total") >= 1
        assert sample(samples, "logq_cleaner_bytes_read_total") > 0
        assert sample(samples, "logq_cleaner_bytes_reclaimed_total") > 0
        assert 0.0 <= sample(samples, "logq_cleaner_max_dirty_ratio") <= 1.0
        line = next(line for line in proc.log_text.splitlines() if "cleaned compacted.metrics-0" in line)
        assert "bytes ->" in line
        assert " s (" in line
    finally:
        proc.kill()


def test_consumer_offsets_is_left_to_the_offset_store() -> None:
    """Even with compact as the broker's default policy, the offsets queue keeps one compaction: the
    offset store's own (docs/architecture.md, "Compacted queues")."""
    assert offsets_log_config(LogConfig(cleanup_policy="compact")).cleanup_policy == "delete"


def test_a_clean_shutdown_with_the_cleaner_at_work_stops_it_and_loses_nothing(tmp_path: Path) -> None:
    broker = BrokerProcess(tmp_path / "broker-data", log=BROKER_LOG).start()
    try:
        bootstrap, queue = broker.bootstrap, "compacted.shutdown"
        create_compacted(bootstrap, queue, **{"segment.bytes": str(1 << 20)})
        with LogqProducer(bootstrap, acks="all", compression="none") as producer:
            for i in range(200_000):  # a pass of a second or more
                producer.send(queue, b"update-%d" % (i // 1000), b"key-%d" % (i % 1000), partition=0)
            producer.flush()
        time.sleep(0.7)  # segment.ms: the last segment rolls; the cleaner is at work
        assert broker.stop() == 0  # SIGTERM: the cleaner is stopped, then the logs are closed
        assert "stopped cleanly" in broker.log_text
        broker.start()
        records = read_with_logq(broker.bootstrap, queue)
        assert {key: value for _, key, value in records} == {
            b"key-%d" % k: b"update-199" for k in range(1000)
        }
        offsets = [offset for offset, _, _ in records]
        assert offsets == sorted(set(offsets))
    finally:
        broker.kill()
