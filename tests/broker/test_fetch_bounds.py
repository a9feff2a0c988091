"""Fetch responses are bounded per request (fetch.max.bytes) and per connection: a client that never
reads its answers stops being served once its connection's write buffer is above the high-water mark
(logq/broker/server.py, ``pause_writing``), so slow readers cannot grow the broker's memory."""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from logq import batch as rb
from logq.protocol import encode_request
from logq.protocol import messages as m
from tests.broker.overload import MeteredBroker, MiB, wait_for
from tests.wire_client import WireClient

SLOW_READERS = 8
FETCHES_EACH = 100  # of about 1 MiB each: 800 MiB of answers nobody reads


def random_batch(records: int, value_bytes: int) -> bytes:
    values = [rb.Record(value=os.urandom(value_bytes), timestamp=1_000 + i) for i in range(records)]
    return rb.build_batch(values, base_timestamp=1_000)


def create(client: WireClient, queue: str, partitions: int) -> None:
    topic = m.CreatableTopic(name=queue, num_partitions=partitions, replication_factor=1)
    assert client.call(m.CreateTopicsRequest(topics=[topic], timeout_ms=5000), 4).topics[0].error_code == 0


def produce(client: WireClient, queue: str, partition: int, batch: bytes) -> None:
    data = m.PartitionProduceData(index=partition, records=batch)
    request = m.ProduceRequest(
        acks=1, timeout_ms=5000, topic_data=[m.TopicProduceData(name=queue, partition_data=[data])]
    )
    assert client.call(request, 8).responses[0].partition_responses[0].error_code == 0


def fetch_request(queue: str, partitions: int, max_bytes: int) -> m.FetchRequest:
    wanted = [
        m.FetchPartition(partition=p, fetch_offset=0, partition_max_bytes=max_bytes)
        for p in range(partitions)
    ]
    return m.FetchRequest(
        max_wait_ms=0, min_bytes=1, max_bytes=max_bytes, topics=[m.FetchTopic(topic=queue, partitions=wanted)]
    )


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MeteredBroker]:
    proc = MeteredBroker(
        tmp_path / "data", {"fetch.max.bytes": MiB}, log={"max.message.bytes": 4 * MiB}
    ).start()
    yield proc
    proc.kill()


def test_fetch_max_bytes_caps_a_response_over_partitions(broker: MeteredBroker) -> None:
    with WireClient(broker.bootstrap) as client:
        create(client, "capped", 4)
        for partition in range(4):
            for _ in range(2):
                produce(client, "capped", partition, random_batch(3, 100_000))  # ~300 KB each
        answer = client.call(fetch_request("capped", 4, 64 * MiB), 11)
        sizes = [len(p.records or b"") for p in answer.responses[0].partitions]
        # The client asked for 64 MiB; the broker's fetch.max.bytes (1 MiB) holds across partitions.
        assert 0 < sum(sizes) <= MiB
        # A batch larger than fetch.max.bytes still comes back, alone (KIP-74), so a consumer progresses.
        create(client, "large", 1)
        large = random_batch(2, 1_500_000)
        produce(client, "large", 0, large)
        (got,) = client.call(fetch_request("large", 1, 64 * MiB), 11).responses[0].partitions
        assert len(got.records) == len(large)


def fetches_answered(broker: MeteredBroker) -> float:
    return broker.metric("logq_requests_total", api="Fetch")


def test_slow_readers_do_not_grow_the_broker_memory(broker: MeteredBroker) -> None:
    with WireClient(broker.bootstrap) as client:
        create(client, "slow", 1)
        for _ in range(4):
            produce(client, "slow", 0, random_batch(3, 330_000))  # 4 MiB in all
    request = encode_request(fetch_request("slow", 1, MiB), 11, 1, "slow-reader")
    rss_before = broker.rss_bytes()
    with contextlib.ExitStack() as held:
        for _ in range(SLOW_READERS):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)  # before connect: the window
            sock.settimeout(10)
            held.enter_context(sock)
            sock.connect(("127.0.0.1", broker.port))
            sock.sendall(request * FETCHES_EACH)  # small requests, all sent; no answer is ever read
        # Wait until the broker stops answering them: each connection is held up by its write buffer.
        answered = -1.0
        deadline = time.monotonic() + 20
        while fetches_answered(broker) != answered:
            assert time.monotonic() < deadline, "the broker kept answering clients that never read"
            answered = fetches_answered(broker)
            time.sleep(1)
        assert answered < SLOW_READERS * FETCHES_EACH / 2  # far from all of them
        grew = broker.rss_bytes() - rss_before
        held_answers = answered * MiB
        assert grew < 96 * MiB, (
            f"grew by {grew / MiB:.0f} MiB for {held_answers / MiB:.0f} MiB of unread answers"
        )
        # Other clients are served meanwhile.
        with WireClient(broker.bootstrap, timeout=5) as client:
            (got,) = client.call(fetch_request("slow", 1, MiB), 11).responses[0].partitions
            assert got.error_code == 0
            assert got.records
    wait_for(lambda: broker.metric("logq_connections") == 0, 10, "the slow readers' connections to close")
