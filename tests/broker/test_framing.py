"""Request framing on a real broker, over PLAINTEXT and over TLS alike: requests split at every byte
position, large requests received in place in any pieces, EOF in the middle of a frame, many requests
in one write, and large Fetch answers written in slices (``logq/broker/server.py``,
``logq/protocol/frames.py``)."""

from __future__ import annotations

import contextlib
import itertools
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from logq import batch as rb
from logq.broker.server import (
    PLAIN_WRITE_JOIN_BYTES,
    TLS_WRITE_JOIN_BYTES,
    TLS_WRITE_SLICE_BYTES,
    plain_write_pieces,
    tls_write_pieces,
)
from logq.error_codes import ErrorCode
from logq.permissions import make_private_dir
from logq.protocol import encode_request
from logq.protocol import messages as m
from logq.protocol.client import decode_response_as
from logq.protocol.frames import SCRATCH_BYTES
from logq.security.certs import write_dev_certificates
from logq.testing import make_batch
from tests.broker_process import BrokerProcess
from tests.wire_client import WireClient

MiB = 1024 * 1024
LISTENERS = ["PLAINTEXT", "SSL"]
# Each part is sent on its own (and under TLS is its own record); this pause lets the broker read it
# before the next one arrives.
PAUSE_S = 0.001


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[BrokerProcess, Path]]:
    root = tmp_path_factory.mktemp("framing")
    certs = write_dev_certificates(root / "certs", [])
    make_private_dir(root / "data")
    proc = BrokerProcess(
        root / "data",
        listeners={"PLAINTEXT": "PLAINTEXT", "SSL": "SSL"},
        broker={
            "ssl.certificate.location": str(certs.broker_cert),
            "ssl.key.location": str(certs.broker_key),
        },
    ).start()
    yield proc, certs.ca
    proc.kill()


@contextlib.contextmanager
def connect(broker: tuple[BrokerProcess, Path], listener: str) -> Iterator[WireClient]:
    proc, ca = broker
    client = WireClient(proc.address(listener), timeout=10)
    client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if listener == "SSL":
        context = ssl.create_default_context(cafile=str(ca))
        client.sock = context.wrap_socket(client.sock, server_hostname="127.0.0.1")
    try:
        yield client
    finally:
        client.close()


_names = itertools.count()


def new_queue(broker: tuple[BrokerProcess, Path]) -> str:
    name = f"framing-{next(_names)}"
    topic = m.CreatableTopic(name=name, num_partitions=1, replication_factor=1)
    with connect(broker, "PLAINTEXT") as client:
        reply = client.call(m.CreateTopicsRequest(topics=[topic], timeout_ms=10_000), 4)
    assert reply.topics[0].error_code == ErrorCode.NONE
    return name


def produce_request(queue: str, records: bytes) -> m.ProduceRequest:
    data = m.PartitionProduceData(index=0, records=records)
    return m.ProduceRequest(
        acks=1, timeout_ms=10_000, topic_data=[m.TopicProduceData(name=queue, partition_data=[data])]
    )


def fetch(client: WireClient, queue: str, offset: int, max_bytes: int = MiB) -> Any:
    wanted = m.FetchPartition(partition=0, fetch_offset=offset, partition_max_bytes=max_bytes)
    request = m.FetchRequest(
        max_wait_ms=0,
        min_bytes=1,
        max_bytes=max_bytes,
        topics=[m.FetchTopic(topic=queue, partitions=[wanted])],
    )
    return client.call(request, 11).responses[0].partitions[0]


def ack(client: WireClient) -> m.PartitionProduceResponse:
    _, response = decode_response_as(client.read_frame(), m.ProduceResponse, 8)
    result: m.PartitionProduceResponse = response.responses[0].partition_responses[0]
    return result


def send_in_pieces(client: WireClient, data: bytes, cuts: list[int]) -> None:
    points = sorted({0, len(data), *(c for c in cuts if 0 < c < len(data))})
    for start, stop in itertools.pairwise(points):
        client.send_raw(data[start:stop])
        time.sleep(PAUSE_S)


def stored_batches(broker: tuple[BrokerProcess, Path], queue: str) -> list[bytes]:
    """Every batch of the queue's partition, whole and valid, from offset 0."""
    with connect(broker, "PLAINTEXT") as client:
        got = fetch(client, queue, 0, 64 * MiB)
    assert got.error_code == ErrorCode.NONE
    data = bytes(got.records)
    batches, position = [], 0
    while position < len(data):
        _, size = rb.read_prefix(data, position)
        rb.validate(data[position : position + size])
        batches.append(data[position : position + size])
        position += size
    return batches


def same_batch(stored: bytes, sent: bytes) -> bool:
    return stored[16:] == sent[16:]  # everything after the base offset and length the broker assigns


@pytest.mark.parametrize("listener", LISTENERS)
def test_a_request_split_at_every_byte_position_is_answered(
    tls_broker: tuple[BrokerProcess, Path], listener: str
) -> None:
    queue = new_queue(tls_broker)
    batch = make_batch(1, tag=7)
    request = encode_request(produce_request(queue, batch), 8, 1, "split")
    with connect(tls_broker, listener) as client:
        for cut in range(1, len(request)):
            send_in_pieces(client, request, [cut])
            answer = ack(client)
            assert (answer.error_code, answer.base_offset) == (ErrorCode.NONE, cut - 1), f"split at {cut}"
    stored = stored_batches(tls_broker, queue)
    assert len(stored) == len(request) - 1
    assert all(same_batch(b, batch) for b in stored)


def large_batch(tag: int) -> bytes:
    """A batch of about 900 KB: its request is several scratch buffers long."""
    batch = make_batch(900, tag=tag, value_size=1000)
    assert 3 * SCRATCH_BYTES < len(batch) < 1_000_000
    return batch


# Where a large request is cut: within its size prefix; just after it, so that the frame's own buffer
# starts with nothing in it and grows; on either side of the scratch's end; into many 64 KiB pieces.
LARGE_CUTS = {
    "whole": [],
    "one byte, then the rest": [1],
    "the size prefix alone": [4],
    "around the scratch's end": [SCRATCH_BYTES - 1, SCRATCH_BYTES, SCRATCH_BYTES + 5],
    "64 KiB pieces": list(range(65536, 1_000_000, 65536)),
}


@pytest.mark.parametrize("cuts", LARGE_CUTS.values(), ids=LARGE_CUTS.keys())
@pytest.mark.parametrize("listener", LISTENERS)
def test_large_requests_in_any_pieces_are_stored_whole(
    tls_broker: tuple[BrokerProcess, Path], listener: str, cuts: list[int]
) -> None:
    queue = new_queue(tls_broker)
    batches = [large_batch(1), large_batch(2)]
    with connect(tls_broker, listener) as client:
        for i, batch in enumerate(batches):
            send_in_pieces(client, encode_request(produce_request(queue, batch), 8, i, "large"), cuts)
            answer = ack(client)
            assert (answer.error_code, answer.base_offset) == (ErrorCode.NONE, 900 * i)
    stored = stored_batches(tls_broker, queue)
    assert [same_batch(s, b) for s, b in zip(stored, batches, strict=True)] == [True, True]


@pytest.mark.parametrize("listener", LISTENERS)
def test_many_requests_in_one_write_are_answered_in_order(
    tls_broker: tuple[BrokerProcess, Path], listener: str
) -> None:
    queue = new_queue(tls_broker)
    count = 1000
    batches = [make_batch(2, tag=i, value_size=250) for i in range(count)]
    stream = b"".join(encode_request(produce_request(queue, b), 8, i, "many") for i, b in enumerate(batches))
    assert len(stream) > 2 * SCRATCH_BYTES  # requests straddle the end of one scratch and the next
    with connect(tls_broker, listener) as client:
        client.send_raw(stream)
        answers = [ack(client) for _ in range(count)]
    assert [(a.error_code, a.base_offset) for a in answers] == [(0, 2 * i) for i in range(count)]
    stored = stored_batches(tls_broker, queue)
    assert [same_batch(s, b) for s, b in zip(stored, batches, strict=True)] == [True] * count


@pytest.mark.parametrize("cut", [3, 4, 5000, SCRATCH_BYTES + 100, 800_000])
@pytest.mark.parametrize("listener", LISTENERS)
def test_eof_in_the_middle_of_a_frame_stores_nothing_and_closes(
    tls_broker: tuple[BrokerProcess, Path], listener: str, cut: int
) -> None:
    queue = new_queue(tls_broker)
    complete = make_batch(3, tag=1)
    request = encode_request(produce_request(queue, large_batch(2)), 8, 2, "eof")
    with connect(tls_broker, listener) as client:
        client.send_raw(encode_request(produce_request(queue, complete), 8, 1, "eof"))
        assert ack(client).base_offset == 0  # the complete request before it is answered
        send_in_pieces(client, request[:cut], [cut // 2])
        if listener == "SSL":
            assert isinstance(client.sock, ssl.SSLSocket)
            client.sock = client.sock.unwrap()  # TLS close_notify: the end of the stream
        client.sock.shutdown(socket.SHUT_WR)
        client.sock.settimeout(5)
        started = time.monotonic()
        assert client.sock.recv(1) == b"", "the broker answered a truncated request"
        assert time.monotonic() - started < 2, "the broker did not notice the end of the stream"
    stored = stored_batches(tls_broker, queue)
    assert len(stored) == 1
    assert same_batch(stored[0], complete)


def test_a_large_fetch_over_tls_is_the_same_bytes_as_over_plaintext(
    tls_broker: tuple[BrokerProcess, Path],
) -> None:
    queue = new_queue(tls_broker)
    with connect(tls_broker, "PLAINTEXT") as client:
        for i in range(4):
            client.send_raw(encode_request(produce_request(queue, large_batch(i)), 8, i, "fetch"))
            assert ack(client).error_code == ErrorCode.NONE
        plain = fetch(client, queue, 0, 8 * MiB)
    with connect(tls_broker, "SSL") as client:
        secured = fetch(client, queue, 0, 8 * MiB)
        again = fetch(client, queue, 900, 8 * MiB)  # the connection goes on after a sliced answer
    assert (plain.error_code, secured.error_code, again.error_code) == (0, 0, 0)
    assert len(plain.records) > 2 * TLS_WRITE_SLICE_BYTES  # answered in several slices under TLS
    assert bytes(secured.records) == bytes(plain.records)
    assert bytes(again.records) == bytes(plain.records)[len(stored_batches(tls_broker, queue)[0]) :]


def rss_mib(proc: BrokerProcess) -> float:
    assert proc.proc is not None
    status = Path(f"/proc/{proc.proc.pid}/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) / 1024


@pytest.mark.parametrize("listener", LISTENERS)
def test_a_large_fetch_leaves_no_answer_sized_buffer_behind(
    tls_broker: tuple[BrokerProcess, Path], listener: str
) -> None:
    # An idle connection must not pin its last answer (55 MiB here, the broker's fetch.max.bytes); under
    # TLS neither may the TLS layer's buffers, which keep their largest size for the life of the
    # connection: encrypting a whole answer at once would grow them to its size.
    proc, _ = tls_broker
    queue = new_queue(tls_broker)
    with connect(tls_broker, "PLAINTEXT") as client:
        for i in range(62):
            client.send_raw(encode_request(produce_request(queue, large_batch(i)), 8, i, "big"))
            assert ack(client).error_code == ErrorCode.NONE
    before = rss_mib(proc)
    with connect(tls_broker, listener) as client:
        answer = fetch(client, queue, 0, 64 * MiB)
        assert answer.error_code == ErrorCode.NONE
        assert len(answer.records) > 50 * MiB
        del answer
        time.sleep(0.2)
        grown = rss_mib(proc) - before
        assert bytes(fetch(client, queue, 0, MiB).records)[16:64] != b""  # the connection still serves
    assert grown < 30, f"the broker kept {grown:.0f} MiB more after answering one Fetch"


# --- the shape of TLS writes (no broker) ---------------------------------------------------------------


def test_tls_writes_join_small_chunks_and_slice_large_ones_without_copying() -> None:
    blob = bytes(range(256)) * (3 * TLS_WRITE_SLICE_BYTES // 256 + 7)  # 3 slices and a bit
    chunks: list[bytes | bytearray | memoryview] = [
        b"\x00\x00\x10\x00",
        b"header",
        bytearray(b"x" * 100),
        memoryview(blob),
        b"tail",
        b"y" * TLS_WRITE_JOIN_BYTES,
        b"z",
    ]
    pieces = tls_write_pieces(chunks)
    assert b"".join(bytes(p) for p in pieces) == b"".join(bytes(c) for c in chunks)
    assert [len(p) for p in pieces] == [
        110,
        TLS_WRITE_SLICE_BYTES,
        TLS_WRITE_SLICE_BYTES,
        TLS_WRITE_SLICE_BYTES,
        len(blob) - 3 * TLS_WRITE_SLICE_BYTES,
        4,
        TLS_WRITE_JOIN_BYTES,
        1,
    ]
    assert all(isinstance(p, memoryview) and p.obj is blob for p in pieces[1:5])  # views, not copies


def test_tls_writes_join_runs_of_small_chunks_into_writes_of_the_join_size() -> None:
    small = [b"a" * 1000] * 200
    pieces = tls_write_pieces(list(small))
    assert b"".join(bytes(p) for p in pieces) == b"".join(small)
    assert all(len(p) >= TLS_WRITE_JOIN_BYTES for p in pieces[:-1])
    assert len(pieces) == len(small) * 1000 // TLS_WRITE_JOIN_BYTES + 1
    assert tls_write_pieces([b"only"]) == [b"only"]
    assert tls_write_pieces([]) == []


def test_plain_writes_join_small_chunks_and_pass_record_blobs_through_uncopied() -> None:
    blob = bytearray(b"r" * PLAIN_WRITE_JOIN_BYTES)
    chunks: list[bytes | bytearray | memoryview] = [
        b"\x00\x00\x10\x00",
        b"header",
        memoryview(blob),
        b"a",
        b"b",
    ]
    pieces = plain_write_pieces(chunks)
    assert b"".join(bytes(p) for p in pieces) == b"".join(bytes(c) for c in chunks)
    assert [len(p) for p in pieces] == [10, PLAIN_WRITE_JOIN_BYTES, 2]
    assert isinstance(pieces[1], memoryview)
    assert pieces[1].obj is blob  # a view, not a copy
    assert plain_write_pieces([b"only"]) == [b"only"]
    assert plain_write_pieces([]) == []
