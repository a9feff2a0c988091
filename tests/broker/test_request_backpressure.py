"""queued.max.request.bytes against real broker processes (logq/broker/request_memory.py): a flood of
maximum-size Produce requests from many connections leaves the broker's memory bounded, since past the
bound it stops reading sockets, and every request is still answered; a request larger than the bound
is served rather than left waiting."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from logq import batch as rb
from logq.protocol import messages as m
from tests.broker.overload import MeteredBroker, MiB, create_queue, wait_for
from tests.wire_client import WireClient

FRAME_LIMIT = 4 * MiB + 64 * 1024  # socket.request.max.bytes: a 4 MiB batch and the request around it
QUEUED_LIMIT = 8 * MiB
CONNECTIONS = 16
REQUESTS_EACH = 3  # sent at once on each connection, then the answers are read
RECORDS_PER_BATCH = 4
RECORD_BYTES = MiB - 1024  # a batch just under 4 MiB


def incompressible_batch() -> bytes:
    """A batch just under 4 MiB of random values: the queue's gzip takes a while over each."""
    records = [
        rb.Record(value=os.urandom(RECORD_BYTES), timestamp=1_000 + i) for i in range(RECORDS_PER_BATCH)
    ]
    return rb.build_batch(records, base_timestamp=1_000)


def peak_rss_bytes(broker: MeteredBroker) -> int:
    assert broker.proc is not None
    for line in Path(f"/proc/{broker.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM line")


def produce_request(queue: str, batch: bytes) -> m.ProduceRequest:
    data = m.PartitionProduceData(index=0, records=batch)
    return m.ProduceRequest(
        acks=1, timeout_ms=30_000, topic_data=[m.TopicProduceData(name=queue, partition_data=[data])]
    )


def error_codes(client: WireClient, request: Any, correlations: list[int]) -> list[int]:
    return [
        client.receive(request, 8, c).responses[0].partition_responses[0].error_code for c in correlations
    ]


@pytest.fixture
def bounded(tmp_path: Path) -> Iterator[MeteredBroker]:
    broker = MeteredBroker(
        tmp_path / "data",
        {"socket.request.max.bytes": FRAME_LIMIT, "queued.max.request.bytes": QUEUED_LIMIT},
        # Recompressing each batch makes handling slower than receiving: without the bound, requests
        # would pile up in the broker (up to 8 MiB per connection) as fast as the clients send them.
        log={"max.message.bytes": FRAME_LIMIT, "compression.type": "gzip"},
    ).start()
    yield broker
    broker.kill()


def test_a_flood_of_large_produce_requests_keeps_memory_bounded(bounded: MeteredBroker) -> None:
    broker = bounded
    queue = "flooded"
    create_queue(broker.bootstrap, queue)
    batch = incompressible_batch()
    request = produce_request(queue, batch)
    rss_before = broker.rss_bytes()
    answers: list[list[int]] = []
    problems: list[BaseException] = []

    def flood() -> None:
        try:
            with WireClient(broker.bootstrap, timeout=120) as client:
                correlations = [client.send(request, 8) for _ in range(REQUESTS_EACH)]
                answers.append(error_codes(client, request, correlations))
        except BaseException as exc:  # reported by the test's thread
            problems.append(exc)

    threads = [threading.Thread(target=flood) for _ in range(CONNECTIONS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(180)
    assert not problems, problems
    # Every request was answered, and stored.
    assert answers == [[0] * REQUESTS_EACH] * CONNECTIONS
    with WireClient(broker.bootstrap) as client:
        wanted = m.ListOffsetsPartition(partition_index=0, timestamp=-1)
        latest = client.call(
            m.ListOffsetsRequest(topics=[m.ListOffsetsTopic(name=queue, partitions=[wanted])]), 5
        )
    assert latest.topics[0].partitions[0].offset == CONNECTIONS * REQUESTS_EACH * RECORDS_PER_BATCH
    # 192 MiB were sent at once; the broker held at most about the bound (8 MiB), one request over it,
    # and a read's worth per connection, besides what it holds anyway.
    sent = CONNECTIONS * REQUESTS_EACH * len(batch)
    grew = peak_rss_bytes(broker) - rss_before
    assert grew < 64 * MiB, f"the broker grew by {grew / MiB:.0f} MiB while {sent / MiB:.0f} MiB were sent"
    # Everything answered gave its bytes back.
    wait_for(lambda: broker.metric("logq_queued_request_bytes") == 0, 5, "the queued bytes to drop to 0")
    assert broker.metric("logq_reading_paused_connections") == 0


def test_a_request_larger_than_the_bound_is_served(tmp_path: Path) -> None:
    broker = MeteredBroker(
        tmp_path / "data",
        {"socket.request.max.bytes": FRAME_LIMIT, "queued.max.request.bytes": MiB},
        log={"max.message.bytes": FRAME_LIMIT},
    ).start()
    try:
        queue = "large"
        create_queue(broker.bootstrap, queue)
        request = produce_request(queue, incompressible_batch())
        # Two connections at once, each with two requests of 4x the bound: each is let in alone in turn.
        with WireClient(broker.bootstrap, timeout=60) as one, WireClient(broker.bootstrap, timeout=60) as two:
            sent = [(client, [client.send(request, 8) for _ in range(2)]) for client in (one, two)]
            for client, correlations in sent:
                assert error_codes(client, request, correlations) == [0, 0]
        wait_for(lambda: broker.metric("logq_queued_request_bytes") == 0, 5, "the queued bytes to drop to 0")
    finally:
        broker.kill()
