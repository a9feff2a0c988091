"""aiokafka 0.14 against a real broker: admin, idempotent produce in each codec, assign-and-read from
offset 0, ListOffsets, delete."""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Sequence

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition  # type: ignore[import-untyped]
from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # type: ignore[import-untyped]

from tests.broker_process import BrokerProcess
from tests.compat.helpers import (
    DEADLINE_S,
    FETCH_BYTES,
    FETCH_PARTITION_BYTES,
    PARTITIONS,
    Received,
    Sent,
    check_codec,
    check_read_from,
    check_round_trip,
    first_offsets_at_or_after,
    make_messages,
    stored_codecs,
)

# aiokafka compresses zstd only through cramjam (in the test extras; skipped where it is missing).
NO_CRAMJAM = importlib.util.find_spec("cramjam") is None
AIOKAFKA_CODECS = [
    "none",
    "gzip",
    pytest.param("zstd", marks=pytest.mark.skipif(NO_CRAMJAM, reason="aiokafka needs cramjam for zstd")),
]


async def produce_all(bootstrap: str, queue: str, sent: Sequence[Sent], codec: str) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        enable_idempotence=True,
        acks="all",
        compression_type=None if codec == "none" else codec,
        linger_ms=5,
    )
    await producer.start()
    try:
        # send() only queues the message (waiting while the accumulator is full); the futures resolve
        # on the broker's acknowledgement
        futures = [
            await producer.send(queue, s.value, s.key, headers=list(s.headers), timestamp_ms=s.timestamp)
            for s in sent
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def consume_all(
    bootstrap: str, queue: str, count: int, start: dict[int, int] | None = None
) -> list[Received]:
    """Read ``count`` records from ``start`` (an offset per partition; default: every partition from 0)."""
    # group_id=None: manual assignment only, no group APIs (this broker does not serve them yet)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        max_partition_fetch_bytes=FETCH_PARTITION_BYTES,
        fetch_max_bytes=FETCH_BYTES,
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(queue, p) for p in range(PARTITIONS) if start is None or p in start]
        consumer.assign(partitions)
        if start is None:
            await consumer.seek_to_beginning(*partitions)
        else:
            for tp in partitions:
                consumer.seek(tp, start[tp.partition])
        received: list[Received] = []
        while len(received) < count:
            for records in (await consumer.getmany(timeout_ms=500, max_records=5000)).values():
                for r in records:
                    assert r.timestamp_type == 0  # CreateTime
                    received.append(
                        Received(r.partition, r.offset, r.key, r.value, tuple(r.headers), r.timestamp)
                    )
        return received
    finally:
        await consumer.stop()


async def round_trip(bootstrap: str, codec: str) -> None:
    queue = f"compat.aiokafka.{codec}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        created = await admin.create_topics([NewTopic(queue, PARTITIONS, 1)], timeout_ms=10_000)
        assert [t[1] for t in created.topic_errors] == [0]
        sent = make_messages(codec)
        await produce_all(bootstrap, queue, sent, codec)

        by_partition = check_round_trip(await consume_all(bootstrap, queue, len(sent)), sent)
        check_codec(await asyncio.to_thread(stored_codecs, bootstrap, queue), codec)

        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
        await consumer.start()
        try:
            partitions = [TopicPartition(queue, p) for p in range(PARTITIONS)]
            assert await consumer.beginning_offsets(partitions) == dict.fromkeys(partitions, 0)
            ends = await consumer.end_offsets(partitions)
            assert {tp.partition: n for tp, n in ends.items()} == {p: len(r) for p, r in by_partition.items()}
            middle = sent[len(sent) // 2].timestamp
            assert middle is not None
            found = await consumer.offsets_for_times(dict.fromkeys(partitions, middle))
            expected = first_offsets_at_or_after(by_partition, middle)
            assert {tp.partition: (o.offset, o.timestamp) for tp, o in found.items()} == {
                p: (offset, by_partition[p][offset].timestamp)
                for p, offset in expected.items()
                if offset is not None
            }
            later = (sent[-1].timestamp or 0) + 1
            assert await consumer.offsets_for_times(dict.fromkeys(partitions, later)) == dict.fromkeys(
                partitions
            )
        finally:
            await consumer.stop()

        start = {p: offset for p, offset in expected.items() if offset is not None}
        tail = await consume_all(bootstrap, queue, len(sent) - sum(start.values()), start)
        check_read_from(tail, by_partition, start)

        deleted = await admin.delete_topics([queue], timeout_ms=10_000)
        assert [t[1] for t in deleted.topic_error_codes] == [0]
        assert queue not in await admin.list_topics()
    finally:
        await admin.close()


@pytest.mark.parametrize("codec", AIOKAFKA_CODECS)
def test_produce_read_list_offsets_delete(broker: BrokerProcess, codec: str) -> None:
    async def bounded() -> None:
        async with asyncio.timeout(2 * DEADLINE_S):  # one bound for the whole exchange
            await round_trip(broker.bootstrap, codec)

    asyncio.run(bounded())
