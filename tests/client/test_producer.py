"""logq's Producer (asyncio, and the synchronous wrapper) against real broker processes.

What was stored is read back with a raw Fetch through the client's Cluster and ``decode_fetched`` (which
also shows the batch headers: codec, producer id, sequences) or with confluent-kafka's Consumer."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka import Producer as ConfluentProducer

from logq import batch as rb
from logq.client import records as client_records
from logq.client.cluster import Cluster
from logq.client.partitioner import partition_for_key
from logq.client.producer import BufferFullError, Producer, RecordFuture
from logq.client.records import PYTHON_CODEC, ConsumerRecord, RecordMetadata, decode_fetched, encode_headers
from logq.client.sync_admin import Admin as SyncAdmin
from logq.client.sync_producer import Producer as SyncProducer
from logq.error_codes import ErrorCode
from logq.errors import (
    BatchTooLargeError,
    BrokerUnavailableError,
    ClientError,
    ClientTimeoutError,
    InvalidQueueNameError,
    LogqError,
    UnknownQueueError,
)
from logq.protocol import messages as m
from tests.broker_process import BrokerProcess, free_port
from tests.wire_client import WireClient

T = TypeVar("T")
DEADLINE_S = 30.0  # every wait below is bounded by this


def run(coro: Awaitable[T]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, DEADLINE_S)

    return asyncio.run(bounded())


async def create_queue(
    bootstrap: str, name: str, partitions: int = 1, configs: dict[str, str] | None = None
) -> None:
    cluster = Cluster(bootstrap)
    try:
        topic = m.CreatableTopic(
            name=name,
            num_partitions=partitions,
            replication_factor=1,
            configs=[m.CreatableTopicConfig(name=k, value=v) for k, v in (configs or {}).items()],
        )
        answer = await cluster.send(
            await cluster.any_connection(), m.CreateTopicsRequest(topics=[topic], timeout_ms=5000)
        )
        assert answer.topics[0].error_code == 0, answer
    finally:
        await cluster.close()


def make_queue(broker: BrokerProcess, name: str, partitions: int = 1, **configs: str) -> str:
    run(
        create_queue(broker.bootstrap, name, partitions, {k.replace("_", "."): v for k, v in configs.items()})
    )
    return name


async def fetch_partition(
    bootstrap: str, queue: str, partition: int
) -> tuple[list[ConsumerRecord], list[bytes]]:
    """Every record of a partition and every stored batch, with raw Fetch v11 requests."""
    cluster = Cluster(bootstrap)
    records: list[ConsumerRecord] = []
    batches: list[bytes] = []
    try:
        conn = await cluster.leader_connection(queue, partition)
        offset, high_watermark = 0, 1
        while offset < high_watermark:
            wanted = m.FetchPartition(partition=partition, fetch_offset=offset, partition_max_bytes=8 << 20)
            answer = await cluster.send(
                conn,
                m.FetchRequest(
                    max_wait_ms=0,
                    min_bytes=1,
                    max_bytes=8 << 20,
                    topics=[m.FetchTopic(topic=queue, partitions=[wanted])],
                ),
            )
            got = answer.responses[0].partitions[0]
            assert got.error_code == 0
            high_watermark = got.high_watermark
            data = bytes(got.records or b"")
            pos = 0
            while len(data) - pos >= rb.HEADER_SIZE:
                header = rb.parse_header(data, pos)
                if pos + header.size > len(data):
                    break
                batches.append(data[pos : pos + header.size])
                pos += header.size
            fetched = decode_fetched(data, queue, partition, offset)
            records += fetched.records
            assert fetched.next_offset > offset or offset >= high_watermark
            offset = fetched.next_offset
    finally:
        await cluster.close()
    return records, batches


def read_queue(broker: BrokerProcess, queue: str, partitions: int = 1) -> dict[int, list[ConsumerRecord]]:
    async def read() -> dict[int, list[ConsumerRecord]]:
        return {p: (await fetch_partition(broker.bootstrap, queue, p))[0] for p in range(partitions)}

    return run(read())


def batch_headers(broker: BrokerProcess, queue: str, partition: int = 0) -> list[rb.BatchHeader]:
    return [rb.parse_header(b) for b in run(fetch_partition(broker.bootstrap, queue, partition))[1]]


async def produce_all(
    bootstrap: str, queue: str, sends: list[dict[str, Any]], **settings: Any
) -> list[RecordMetadata]:
    """Send every record (the first one alone: it waits for the queue's metadata; the others take the
    fast path) and return where each one went."""
    async with Producer(bootstrap, **settings) as producer:
        futures = [producer.send(queue, **sends[0])]
        await producer.flush()
        futures += [producer.send(queue, **send) for send in sends[1:]]
        await producer.flush()
        return [await future for future in futures]


# --- round trips ------------------------------------------------------------------------------------------


def test_round_trip_with_keys_headers_nulls_and_timestamps(broker: BrokerProcess) -> None:
    # Every compression; records on the fast path and on the general one (large, null, older timestamps).
    now = int(time.time() * 1000)
    sends: list[dict[str, Any]] = [
        {"value": b"v%d" % i, "key": b"k%d" % (i % 13), "headers": {"i": b"%d" % i, "none": None}}
        for i in range(300)
    ]
    sends += [
        {"value": None, "key": b"tombstone"},
        {"value": b"no key"},
        {"value": b"", "key": b""},
        {"value": b"x" * 20_000, "key": b"big", "headers": [("a", b"1"), ("a", b"2")]},  # varints > 1 byte
        {"value": b"old", "key": b"k1", "timestamp": now - 3_600_000},  # before the batch's base
        {"value": bytearray(b"ba"), "key": memoryview(b"mv")},
    ]
    for compression, codec in (("none", rb.CODEC_NONE), ("gzip", rb.CODEC_GZIP), ("zstd", rb.CODEC_ZSTD)):
        queue = make_queue(broker, f"round-{compression}", 4)
        results = run(produce_all(broker.bootstrap, queue, sends, compression=compression))
        stored = read_queue(broker, queue, 4)
        for send, meta in zip(sends, results, strict=True):
            record = stored[meta.partition][meta.offset]
            assert record.offset == meta.offset
            assert record.value == (None if send["value"] is None else bytes(send["value"]))
            key = send.get("key")
            assert record.key == (None if key is None else bytes(key))
            headers = send.get("headers") or {}
            items = list(headers.items()) if isinstance(headers, dict) else headers
            assert list(record.headers) == items
            assert record.timestamp == meta.timestamp
            if "timestamp" in send:
                assert meta.timestamp == send["timestamp"]
            else:
                assert abs(meta.timestamp - now) < 60_000
        assert sum(len(records) for records in stored.values()) == len(sends)
        codecs = {h.attributes & rb.CODEC_MASK for p in range(4) for h in batch_headers(broker, queue, p)}
        assert codecs == {codec}


def test_records_are_encoded_exactly_as_batch_builder_encodes_them(broker: BrokerProcess) -> None:
    # send's fast path (the compiled append, or with the pure-Python codec an inlined copy of its append)
    # and its fall-backs give the bytes of the pure-Python BatchBuilder.
    queue = make_queue(broker, "bytes", 1)
    now = int(time.time() * 1000)
    sends: list[dict[str, Any]] = [{"value": b"warm-up: its own batch"}]
    sends += [
        {"value": b"v" * (i * 37 % 300), "key": None if i % 3 else b"key %d" % i, "headers": {"h": b"%d" % i}}
        for i in range(200)
    ]
    sends += [
        {"value": None, "key": b"null value"},
        {"value": b"big" * 6000, "key": b"k" * 9000},
        {"value": b"older", "timestamp": now - 10},
        {"value": b"much older", "timestamp": now - 100_000},
        {"value": b"later", "timestamp": now + 100_000},
        {"value": b"last"},
    ]
    results = run(produce_all(broker.bootstrap, queue, sends, compression="none", linger_ms=2000))
    _warm, batch = run(fetch_partition(broker.bootstrap, queue, 0))[1]
    header = rb.parse_header(batch)
    assert header.records_count == len(sends) - 1
    builder = PYTHON_CODEC.new_builder(results[1].timestamp, 1 << 20)
    for send, meta in zip(sends[1:], results[1:], strict=True):
        builder.append(send.get("key"), send["value"], encode_headers(send.get("headers")), meta.timestamp)
    expected = builder.build(rb.CODEC_NONE, header.producer_id, header.producer_epoch, header.base_sequence)
    assert batch[16:] == expected[16:]  # all but the offset and leader epoch the broker wrote
    assert batch[8:12] == expected[8:12]


def test_send_encodes_the_same_bytes_with_the_pure_python_codec() -> None:
    """The test above again, in a process that uses the pure-Python codec (LOGQ_PURE_PYTHON=1)."""
    if client_records.CODEC is PYTHON_CODEC:
        pytest.skip("this process uses the pure-Python codec already: the test above is that run")
    test = f"{__file__}::test_records_are_encoded_exactly_as_batch_builder_encodes_them"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider", test],
        env={**os.environ, client_records.PURE_PYTHON_ENV: "1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "1 passed" in done.stdout


def test_confluent_kafka_reads_what_it_produced(broker: BrokerProcess) -> None:
    queue = make_queue(broker, "ck-read", 2)
    sends = [
        {"value": b"value-%d" % i, "key": b"key-%d" % i, "headers": {"h": b"%d" % i}} for i in range(500)
    ]
    results = run(produce_all(broker.bootstrap, queue, sends))
    consumer = Consumer(
        {"bootstrap.servers": broker.bootstrap, "group.id": "ck-read", "enable.auto.commit": False}
    )
    try:
        consumer.assign([TopicPartition(queue, p, 0) for p in range(2)])
        got: dict[tuple[int, int], Any] = {}
        deadline = time.monotonic() + DEADLINE_S
        while len(got) < len(sends) and time.monotonic() < deadline:
            for message in consumer.consume(500, timeout=1):
                assert message.error() is None, message.error()
                got[(message.partition(), message.offset())] = message
    finally:
        consumer.close()
    for send, meta in zip(sends, results, strict=True):
        message = got[(meta.partition, meta.offset)]
        assert (message.key(), message.value(), message.headers()) == (
            send["key"],
            send["value"],
            list(send["headers"].items()),
        )


def test_keys_land_where_confluent_kafka_puts_them(broker: BrokerProcess) -> None:
    queue = make_queue(broker, "placement", 7)
    keys = [b"user-%d" % i for i in range(400)] + [bytes([i]) * i for i in range(1, 40)]
    # every key twice: the second time its partition comes from the producer's cache of recent keys
    ours = run(produce_all(broker.bootstrap, queue, [{"value": b"", "key": k} for k in keys + keys]))
    placed: dict[bytes, int] = {}
    producer = ConfluentProducer({"bootstrap.servers": broker.bootstrap, "partitioner": "murmur2_random"})
    for key in keys:
        producer.produce(
            queue,
            key=key,
            value=b"",
            on_delivery=lambda err, msg: placed.__setitem__(msg.key(), msg.partition()),
        )
    assert producer.flush(DEADLINE_S) == 0
    assert [meta.partition for meta in ours] == [placed[key] for key in keys + keys]
    assert [meta.partition for meta in ours] == [partition_for_key(key, 7) for key in keys + keys]


def test_keyless_records_stick_to_a_partition_per_batch(broker: BrokerProcess) -> None:
    queue = make_queue(broker, "sticky", 3)
    sends = [{"value": b"%05d" % i + b"." * 90} for i in range(3000)]
    results = run(produce_all(broker.bootstrap, queue, sends, batch_size=4096, linger_ms=1000))
    runs: list[tuple[int, int]] = []  # (partition, records) of consecutive records in one partition
    for meta in results[1:]:  # (the first one went alone, before the others were sent)
        if runs and runs[-1][0] == meta.partition:
            runs[-1] = (meta.partition, runs[-1][1] + 1)
        else:
            runs.append((meta.partition, 1))
    # one run per batch: ~40 records of ~100 bytes fill a 4 KiB batch, then another partition is picked
    assert all(count <= 4096 // 100 for _p, count in runs)
    assert all(count >= 30 for _p, count in runs[:-1])
    assert {p for p, _count in runs} == {0, 1, 2}
    stored = read_queue(broker, queue, 3)
    for p in range(3):
        batches = batch_headers(broker, queue, p)
        assert sum(h.records_count for h in batches) == len(stored[p])
        assert len(batches) == sum(1 for q, _count in runs if q == p) + (p == results[0].partition)


def test_explicit_partition_and_one_out_of_range(broker: BrokerProcess) -> None:
    queue = make_queue(broker, "explicit", 3)

    async def scenario() -> None:
        async with Producer(broker.bootstrap) as producer:
            futures = [producer.send(queue, b"%d" % i, key=b"same", partition=i % 3) for i in range(30)]
            assert [(await f).partition for f in futures] == [i % 3 for i in range(30)]
            bad = producer.send(queue, b"x", partition=3)
            assert bad.done()
            with pytest.raises(UnknownQueueError, match="no partition 3"):
                await bad

    run(scenario())
    assert [len(records) for records in read_queue(broker, queue, 3).values()] == [10, 10, 10]


def test_metadata_is_read_again_every_metadata_max_age(broker: BrokerProcess) -> None:
    """A producer that keeps running learns a queue's new partitions without an error to prompt it."""
    queue = make_queue(broker, "regrown", 1)

    async def scenario() -> None:
        async with Producer(broker.bootstrap, metadata_max_age_ms=300) as producer:
            assert (await producer.send(queue, b"first")).partition == 0
            with SyncAdmin(broker.bootstrap) as admin:  # the queue comes back with three partitions
                admin.delete_queue(queue)
                admin.create_queue(queue, partitions=3)
            deadline = time.monotonic() + 10
            while True:
                try:
                    assert (await producer.send(queue, b"third", partition=2)).partition == 2
                    break
                except UnknownQueueError:
                    assert time.monotonic() < deadline, "the producer never saw the new partitions"
                    await asyncio.sleep(0.1)

    run(scenario())


# --- acks, futures, callbacks -----------------------------------------------------------------------------


@pytest.mark.parametrize("acks", [0, 1, -1, "all", "1", "0"])
def test_acks(broker: BrokerProcess, acks: int | str) -> None:
    queue = make_queue(broker, "acks", 2)
    results = run(produce_all(broker.bootstrap, queue, [{"value": b"%d" % i} for i in range(200)], acks=acks))
    stored = read_queue(broker, queue, 2)
    assert sorted(r.value for records in stored.values() for r in records) == sorted(
        b"%d" % i for i in range(200)
    )
    if acks in (0, "0"):
        assert {meta.offset for meta in results} == {-1}  # nothing is known without an answer
    else:
        for i, meta in enumerate(results):
            assert stored[meta.partition][meta.offset].value == b"%d" % i


def test_futures_and_callbacks_report_offsets(broker: BrokerProcess) -> None:
    queue = make_queue(broker, "callbacks", 2)
    delivered: list[tuple[int, LogqError | None, RecordMetadata | None, str]] = []
    done: list[RecordFuture] = []

    async def scenario() -> list[RecordFuture]:
        async with Producer(broker.bootstrap, linger_ms=20) as producer:
            futures = []
            for i in range(100):

                def on_delivery(err: LogqError | None, meta: RecordMetadata | None, i: int = i) -> None:
                    delivered.append((i, err, meta, threading.current_thread().name))

                future = producer.send(queue, b"%d" % i, key=b"%d" % (i % 5), on_delivery=on_delivery)
                future.add_done_callback(done.append)
                futures.append(future)
            assert not futures[0].done()
            first = await futures[0]
            assert first == futures[0].result()
            await producer.flush()
            assert all(f.done() and f.exception() is None for f in futures)
            late: list[RecordFuture] = []
            futures[1].add_done_callback(late.append)  # already done: called at once
            assert late == [futures[1]]
            return futures

    futures = run(scenario())
    assert sorted(i for i, *_ in delivered) == list(range(100))  # each exactly once
    assert {name for *_, name in delivered} == {threading.current_thread().name}  # on the loop's thread
    assert {id(f) for f in done} == {id(f) for f in futures}
    stored = read_queue(broker, queue, 2)
    for i, err, meta, _thread in delivered:
        assert err is None
        assert meta is not None
        assert meta == futures[i].result()
        assert stored[meta.partition][meta.offset].value == b"%d" % i
    # offsets within a partition follow the send order
    for p in range(2):
        offsets = [f.result().offset for f in futures if f.result().partition == p]
        assert offsets == sorted(offsets) == list(range(len(offsets)))


def test_a_raising_callback_is_logged_and_harms_nothing(
    broker: BrokerProcess, caplog: pytest.LogCaptureFixture
) -> None:
    queue = make_queue(broker, "raising", 1)

    def bad(err: LogqError | None, meta: RecordMetadata | None) -> None:
        raise ValueError("user bug")

    async def scenario() -> None:
        async with Producer(broker.bootstrap) as producer:
            futures = [producer.send(queue, b"%d" % i, on_delivery=bad if i % 2 else None) for i in range(10)]
            with pytest.raises(RuntimeError, match="await the future"):
                futures[0].result()  # would block the loop
            assert [(await f).offset for f in futures] == list(range(10))
            futures[0].add_done_callback(lambda f: None)

    run(scenario())
    assert "on_delivery callback raised" in caplog.text


def test_flush_waits_for_everything_sent_before_it_and_close_flushes(broker: BrokerProcess) -> None:
    queue = make_queue(broker, "flush", 1)

    async def scenario() -> None:
        producer = Producer(broker.bootstrap, linger_ms=60_000, delivery_timeout_ms=200_000)
        await producer.start()
        futures = [producer.send(queue, b"%d" % i) for i in range(50)]
        await asyncio.sleep(0.2)
        assert not any(f.done() for f in futures)  # lingering
        await producer.flush(timeout=10)
        assert all(f.done() for f in futures)
        await producer.flush()  # nothing to wait for
        more = [producer.send(queue, b"more %d" % i) for i in range(50)]
        await producer.close()
        assert [f.result().offset for f in more] == list(range(50, 100))
        await producer.close()  # idempotent
        with pytest.raises(ClientError, match="closed"):
            producer.send(queue, b"after close")

    run(scenario())
    assert len(read_queue(broker, queue)[0]) == 100


EXITS_WITHOUT_CLOSE = """
import sys
from logq import Producer
producer = Producer(sys.argv[1], linger_ms=30_000, delivery_timeout_ms=200_000)
for i in range(100):
    producer.send(sys.argv[2], b"%d" % i)
# neither flush nor close: the script just ends
"""


def test_a_sync_producer_left_open_delivers_its_records_when_the_interpreter_exits(
    broker: BrokerProcess,
) -> None:
    queue = make_queue(broker, "left-open", 1)
    done = subprocess.run(
        [sys.executable, "-c", EXITS_WITHOUT_CLOSE, broker.bootstrap, queue],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert [r.value for r in read_queue(broker, queue)[0]] == [b"%d" % i for i in range(100)]


def test_send_before_start_is_a_clear_error() -> None:
    producer = Producer("127.0.0.1:1")
    with pytest.raises(ClientError, match="start"):
        producer.send("q", b"x")


# --- idempotence and retries ------------------------------------------------------------------------------


def test_idempotent_batches_carry_producer_id_and_consecutive_sequences(broker: BrokerProcess) -> None:
    queue = make_queue(broker, "sequences", 2)

    async def scenario() -> int:
        async with Producer(broker.bootstrap, batch_size=2048) as producer:
            assert producer.idempotent
            for i in range(2000):
                producer.send(queue, b"%d" % i + b"-" * 50, key=b"%d" % i)
                if i % 100 == 0:
                    await asyncio.sleep(0)
            await producer.flush()
            return producer.producer_id

    producer_id = run(scenario())
    assert producer_id >= 0
    for p in range(2):
        headers = batch_headers(broker, queue, p)
        assert len(headers) > 5
        assert {(h.producer_id, h.producer_epoch) for h in headers} == {(producer_id, 0)}
        expected = 0
        for h in headers:
            assert h.base_sequence == expected
            expected += h.records_count


def test_not_idempotent_batches_have_no_producer_id(broker: BrokerProcess) -> None:
    queue = make_queue(broker, "plain", 1)
    run(produce_all(broker.bootstrap, queue, [{"value": b"x"}], acks=1))
    (header,) = batch_headers(broker, queue)
    assert (header.producer_id, header.base_sequence) == (rb.NO_PRODUCER_ID, rb.NO_SEQUENCE)


@pytest.mark.parametrize("stop", ["stop", "kill"])
def test_a_broker_restart_mid_stream_loses_and_duplicates_nothing(tmp_path: Path, stop: str) -> None:
    proc = BrokerProcess(tmp_path / "data", port=free_port()).start()  # the same port after a restart
    try:
        queue = make_queue(proc, "restart", 3)

        def restart() -> None:
            proc.stop() if stop == "stop" else proc.kill()
            time.sleep(0.3)  # records pile up meanwhile, and requests fail against the closed port
            proc.start()

        async def scenario() -> list[RecordMetadata]:
            async with Producer(
                proc.bootstrap, batch_size=4096, linger_ms=2, retry_backoff_ms=20
            ) as producer:
                futures: list[RecordFuture] = []

                async def send_some(count: int) -> None:
                    for _ in range(count):
                        i = len(futures)
                        futures.append(producer.send(queue, b"%06d" % i, key=b"%d" % (i % 50)))
                    await asyncio.sleep(0.002)

                for _ in range(50):
                    await send_some(40)
                restarting = asyncio.ensure_future(asyncio.to_thread(restart))
                while not restarting.done():  # keep sending all through the restart
                    await send_some(20)
                await restarting
                for _ in range(50):
                    await send_some(40)
                return [await f for f in futures]

        results = run(scenario())
        count = len(results)
        assert count > 5000
        stored = read_queue(proc, queue, 3)
        values = [r.value for records in stored.values() for r in records]
        assert sorted(values) == [b"%06d" % i for i in range(count)]  # each exactly once
        for p, records in stored.items():
            in_order = [r.value for r in records]
            assert in_order == sorted(in_order), f"partition {p} is out of order"
        for i, meta in enumerate(results):
            assert stored[meta.partition][meta.offset].value == b"%06d" % i
    finally:
        proc.kill()


def test_a_batch_the_broker_refuses_fails_alone_and_sending_continues(broker: BrokerProcess) -> None:
    # The queue takes batches of at most 2000 bytes: a 3000-byte record gets MESSAGE_TOO_LARGE from the
    # broker. The producer takes a new producer id and renumbers, so the records after it still go.
    queue = make_queue(broker, "refused", 1, max_message_bytes="2000")

    async def scenario() -> tuple[list[RecordFuture], int]:
        async with Producer(broker.bootstrap, linger_ms=0, compression="none") as producer:
            first_id = producer.producer_id
            futures = [producer.send(queue, b"small %d" % i) for i in range(5)]
            await asyncio.wait_for(asyncio.gather(*(asyncio.ensure_future(_await(f)) for f in futures)), 10)
            futures.append(producer.send(queue, b"L" * 3000))
            for i in range(5):  # batches of their own, in flight behind the refused one
                await asyncio.sleep(0)
                futures.append(producer.send(queue, b"after %d" % i))
            await producer.flush()
            return futures, first_id

    futures, first_id = run(scenario())
    error = futures[5].exception()
    assert isinstance(error, BatchTooLargeError)
    assert error.code == ErrorCode.MESSAGE_TOO_LARGE
    assert [f.result().offset for f in futures[:5] + futures[6:]] == list(range(10))
    headers = batch_headers(broker, queue)
    assert headers[0].producer_id == first_id
    assert headers[-1].producer_id != first_id  # after the failure: a new producer id, from sequence 0


async def _await(future: RecordFuture) -> RecordMetadata:
    return await future


def test_a_broker_that_does_not_answer_fails_records_after_the_delivery_timeout(
    broker: BrokerProcess,
) -> None:
    queue = make_queue(broker, "timeout", 1)

    async def scenario() -> None:
        async with Producer(
            broker.bootstrap,
            linger_ms=0,
            request_timeout_ms=300,
            delivery_timeout_ms=1000,
            retry_backoff_ms=50,
        ) as producer:
            await producer.send(queue, b"before")
            broker.pause()
            try:
                started = time.monotonic()
                future = producer.send(queue, b"lost")
                with pytest.raises(ClientTimeoutError, match="delivery_timeout_ms"):
                    await future
                assert 0.9 < time.monotonic() - started < 5
            finally:
                broker.resume()
            assert (await producer.send(queue, b"after")).partition == 0

    run(scenario())


# --- errors -----------------------------------------------------------------------------------------------


def test_an_unknown_queue_fails_the_future(broker: BrokerProcess) -> None:
    async def scenario() -> None:
        async with Producer(broker.bootstrap) as producer:
            errors: list[LogqError | None] = []
            future = producer.send("no-such-queue", b"x", on_delivery=lambda err, meta: errors.append(err))
            with pytest.raises(UnknownQueueError, match="no-such-queue"):
                await future
            assert isinstance(future.exception(), UnknownQueueError)
            await producer.flush()
            assert len(errors) == 1
            assert isinstance(errors[0], UnknownQueueError)
            with pytest.raises(UnknownQueueError):
                await producer.partitions_for("no-such-queue")

    run(scenario())


@pytest.mark.parametrize("auto_create", [False, True])
def test_an_invalid_queue_name_is_invalid_not_unknown(tmp_path: Path, auto_create: bool) -> None:
    """Metadata answers INVALID_TOPIC_EXCEPTION for a name no queue could have, as Kafka 3 does, and the
    producer fails with InvalidQueueNameError saying why, rather than "does not exist"."""
    proc = BrokerProcess(tmp_path / "data", broker={"auto.create.queues": auto_create}).start()
    try:
        with WireClient(proc.bootstrap) as wire:
            for version in (1, 4, 8):
                fine = f"fine-{version}"  # v0-3 always ask for auto-creation
                answer = wire.call(
                    m.MetadataRequest(
                        topics=[m.MetadataRequestTopic(name="bad name!"), m.MetadataRequestTopic(name=fine)],
                        allow_auto_topic_creation=False,
                    ),
                    version,
                )
                codes = {t.name: t.error_code for t in answer.topics}
                created = auto_create and version < 4
                assert codes == {
                    "bad name!": ErrorCode.INVALID_TOPIC_EXCEPTION,
                    fine: ErrorCode.NONE if created else ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                }

        async def scenario() -> None:
            async with Producer(proc.bootstrap) as producer:
                errors: list[LogqError | None] = []
                future = producer.send("bad name!", b"x", on_delivery=lambda err, meta: errors.append(err))
                with pytest.raises(InvalidQueueNameError, match="may only contain letters, digits"):
                    await future
                assert future.exception().code == ErrorCode.INVALID_TOPIC_EXCEPTION  # type: ignore[union-attr]
                await producer.flush()
                assert isinstance(errors[0], InvalidQueueNameError)
                with pytest.raises(InvalidQueueNameError, match="249"):
                    await producer.partitions_for("x" * 250)

        run(scenario())
    finally:
        proc.kill()


def test_a_queue_is_created_on_first_send_when_the_broker_allows_it(tmp_path: Path) -> None:
    """As Kafka's producers: Metadata asks for auto-creation by default and the broker decides."""
    proc = BrokerProcess(tmp_path / "data", broker={"auto.create.queues": True, "num.partitions": 2}).start()
    try:

        async def scenario() -> None:
            async with Producer(proc.bootstrap) as producer:
                meta = await producer.send("created-on-use", b"x", key=b"k")
                assert meta.offset == 0
                assert await producer.partitions_for("created-on-use") == 2
            async with Producer(proc.bootstrap, allow_auto_create=False) as producer:
                with pytest.raises(UnknownQueueError, match="not-created"):
                    await producer.send("not-created", b"x")

        run(scenario())
        with SyncProducer(proc.bootstrap) as producer:
            assert producer.send("created-by-sync", b"y").result(DEADLINE_S).offset == 0
        with SyncAdmin(proc.bootstrap) as admin:
            names = {q.name for q in admin.list_queues()}
        assert {"created-on-use", "created-by-sync"} <= names
        assert "not-created" not in names
    finally:
        proc.kill()


def test_a_record_larger_than_max_request_size_fails_at_once(broker: BrokerProcess) -> None:
    queue = make_queue(broker, "oversize", 1)

    async def scenario() -> None:
        async with Producer(broker.bootstrap, max_request_size=10_000) as producer:
            await producer.send(queue, b"warm")
            errors: list[LogqError | None] = []
            future = producer.send(queue, b"x" * 10_000, on_delivery=lambda err, meta: errors.append(err))
            assert future.done()
            error = future.exception()
            assert isinstance(error, BatchTooLargeError)
            assert error.code == ErrorCode.MESSAGE_TOO_LARGE
            with pytest.raises(BatchTooLargeError, match="max_request_size"):
                future.result()
            await asyncio.sleep(0.01)
            assert errors == [error]  # the callback too, on the loop
            assert (await producer.send(queue, b"y" * 9_000)).offset == 1  # smaller ones still go

    run(scenario())


BAD_SETTINGS: list[tuple[dict[str, Any], str]] = [
    ({"acks": 2}, "acks"),
    ({"acks": "none"}, "acks"),
    ({"acks": True}, "acks"),
    ({"linger_ms": -1}, "linger_ms"),
    ({"batch_size": 0}, "batch_size"),
    ({"compression": "lz4"}, "compression"),
    ({"compression": "ZSTD"}, "compression"),
    ({"retries": -1}, "retries"),
    ({"retry_backoff_ms": 1.5}, "retry_backoff_ms"),
    ({"request_timeout_ms": 0}, "request_timeout_ms"),
    ({"delivery_timeout_ms": 1000}, "delivery_timeout_ms"),
    ({"max_in_flight": 0}, "max_in_flight"),
    ({"buffer_memory": "big"}, "buffer_memory"),
    ({"max_request_size": 10}, "max_request_size"),
    ({"enable_idempotence": True, "acks": 1}, "acks"),
    ({"enable_idempotence": True, "max_in_flight": 6}, "max_in_flight"),
    ({"enable_idempotence": True, "retries": 0}, "retries"),
    ({"enable_idempotence": "yes"}, "enable_idempotence"),
    ({"client_id": ""}, "client_id"),
    ({"bootstrap": "no-port"}, "bootstrap"),
]


@pytest.mark.parametrize(("settings", "named"), BAD_SETTINGS)
def test_bad_settings_are_value_errors(settings: dict[str, Any], named: str) -> None:
    settings = dict(settings)
    bootstrap = settings.pop("bootstrap", "127.0.0.1:9092")
    with pytest.raises(ValueError, match=named) as info:
        Producer(bootstrap, **settings)
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match=named):
        SyncProducer(bootstrap, **settings)


def test_idempotence_follows_acks_unless_asked_for() -> None:
    assert Producer().idempotent
    assert Producer(acks=-1).idempotent
    assert not Producer(acks=1).idempotent
    assert not Producer(acks="0").idempotent
    assert not Producer(max_in_flight=10).idempotent
    assert not Producer(retries=0).idempotent
    assert not Producer(enable_idempotence=False).idempotent
    assert Producer(enable_idempotence=True).idempotent


def test_wrong_types_are_type_errors(broker: BrokerProcess) -> None:
    queue = make_queue(broker, "types", 1)

    async def scenario() -> None:
        async with Producer(broker.bootstrap) as producer:
            await producer.send(queue, b"warm")
            with pytest.raises(TypeError, match="value must be bytes"):
                producer.send(queue, "text")  # type: ignore[arg-type]
            with pytest.raises(TypeError, match="key must be bytes"):
                producer.send(queue, b"x", key=7)  # type: ignore[arg-type]
            with pytest.raises(TypeError, match="partition must be an int"):
                producer.send(queue, b"x", partition="0")  # type: ignore[arg-type]
            with pytest.raises(TypeError, match="timestamp must be an int"):
                producer.send(queue, b"x", timestamp=1.5)  # type: ignore[arg-type]
            assert (await producer.send(queue, b"fine")).offset == 1

    run(scenario())


# --- buffer memory ----------------------------------------------------------------------------------------


def test_a_full_buffer_raises_in_the_loop_until_there_is_room(broker: BrokerProcess) -> None:
    queue = make_queue(broker, "room", 4)

    async def scenario() -> int:
        async with Producer(broker.bootstrap, buffer_memory=8192, batch_size=1024) as producer:
            sent = full = 0
            futures = []
            while sent < 2000:
                try:
                    futures.append(producer.send(queue, b"%d" % sent + b"." * 100))
                    sent += 1
                except BufferFullError:
                    full += 1
                    await producer.wait_for_room()
            await producer.flush()
            assert all(f.exception() is None for f in futures)
            return full

    assert run(scenario()) > 0
    assert sum(len(records) for records in read_queue(broker, queue, 4).values()) == 2000


# --- the synchronous producer -----------------------------------------------------------------------------


def test_sync_producer_from_a_plain_thread(broker: BrokerProcess) -> None:
    queue = make_queue(broker, "sync", 3)
    outcome: dict[str, Any] = {}
    callback_threads: set[str] = set()
    delivered: list[int] = []

    def work() -> None:
        # a small buffer: send() blocks (rather than fails) until batches are acknowledged
        with SyncProducer(broker.bootstrap, buffer_memory=16_384, batch_size=2048) as producer:
            assert producer.partitions_for(queue) == 3
            futures = []
            for i in range(3000):

                def on_delivery(err: LogqError | None, meta: RecordMetadata | None, i: int = i) -> None:
                    assert err is None
                    callback_threads.add(threading.current_thread().name)
                    delivered.append(i)

                futures.append(
                    producer.send(queue, b"%d" % i + b"." * 50, key=b"%d" % i, on_delivery=on_delivery)
                )
            producer.flush()
            assert all(f.done() for f in futures)
            outcome["results"] = [f.result(timeout=1) for f in futures]
            outcome["late"] = producer.send(queue, b"at close")
        outcome["late_result"] = outcome["late"].result(timeout=1)  # close() flushed it
        with pytest.raises(ClientError, match="closed"):
            producer.send(queue, b"after close")
        producer.close()  # idempotent

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(DEADLINE_S)
    assert not thread.is_alive()
    results: list[RecordMetadata] = outcome["results"]
    assert len(results) == 3000
    assert sorted(delivered) == list(range(3000))
    assert callback_threads == {"logq-producer"}
    stored = read_queue(broker, queue, 3)
    for i, meta in enumerate(results):
        assert stored[meta.partition][meta.offset].key == b"%d" % i
    assert sum(len(records) for records in stored.values()) == 3001


def test_sync_producer_shared_by_threads(broker: BrokerProcess) -> None:
    queue = make_queue(broker, "threads", 3)
    results: dict[int, list[RecordMetadata]] = {}
    with SyncProducer(broker.bootstrap, buffer_memory=32_768, batch_size=4096) as producer:

        def work(k: int) -> None:
            futures = [
                producer.send(queue, b"%d-%05d" % (k, i), key=b"%d" % i if k % 2 else None)
                for i in range(5000)
            ]
            results[k] = [f.result(DEADLINE_S) for f in futures]

        threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(DEADLINE_S)
    stored = read_queue(broker, queue, 3)
    assert sum(len(records) for records in stored.values()) == 20_000
    for k, metas in results.items():
        for i, meta in enumerate(metas):
            assert stored[meta.partition][meta.offset].value == b"%d-%05d" % (k, i)
    for records in stored.values():  # each thread's records keep their order within a partition
        last: dict[bytes, int] = {}
        for record in records:
            assert record.value is not None
            k, i = record.value.split(b"-")
            assert last.get(k, -1) < int(i)
            last[k] = int(i)


def test_sync_result_waits_and_times_out(broker: BrokerProcess) -> None:
    queue = make_queue(broker, "sync-wait", 1)
    with SyncProducer(broker.bootstrap, linger_ms=300, delivery_timeout_ms=100_000) as producer:
        future = producer.send(queue, b"x")
        with pytest.raises(ClientTimeoutError):
            future.result(timeout=0.05)
        assert future.result(timeout=10).offset == 0
        assert producer.producer_id >= 0


def test_sync_producer_without_a_broker_fails_to_start() -> None:
    port = free_port()
    with pytest.raises(BrokerUnavailableError) as info:
        SyncProducer(f"127.0.0.1:{port}")
    assert str(info.value) == f"cannot reach a broker at 127.0.0.1:{port}: connection refused"


def test_sync_flush_timeout(broker: BrokerProcess) -> None:
    queue = make_queue(broker, "sync-flush", 1)
    with SyncProducer(broker.bootstrap, request_timeout_ms=5000, delivery_timeout_ms=20_000) as producer:
        producer.send(queue, b"warm").result(10)
        broker.pause()
        try:
            producer.send(queue, b"stuck")
            with pytest.raises(ClientTimeoutError, match="flush"):
                producer.flush(timeout=0.2)
        finally:
            broker.resume()
        producer.flush(timeout=10)
