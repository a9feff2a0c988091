"""Bad input over the wire against real broker processes (docs/reliability.md, "Bad input").

The broker must never crash, store a partial batch or ack what it did not store. Each test checks the
queue it attacked (whole batches only, exactly the acked records); after every test an autouse check
makes sure both brokers are alive, logged no traceback, and still serve a produce and a fetch on a NEW
connection.

Two brokers serve the whole module: ``small`` has small limits (frames, batches, idle time) so the
boundaries are cheap to reach; ``default`` keeps the shipped defaults (100 MiB frames).
"""

from __future__ import annotations

import contextlib
import itertools
import random
import socket
import struct
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from logq import batch as rb
from logq.error_codes import ErrorCode
from logq.protocol import encode_request
from logq.protocol import messages as m
from logq.protocol.client import decode_response_as
from logq.testing import make_batch
from tests.broker import bad_bytes as bad
from tests.broker_process import BrokerProcess, free_port
from tests.wire_client import WireClient

SMALL_FRAME_LIMIT = 64 * 1024  # socket.request.max.bytes of the small broker
SMALL_MAX_MESSAGE = 8 * 1024  # its max.message.bytes
SMALL_IDLE_MS = 3000  # its connections.max.idle.ms
DEFAULT_FRAME_LIMIT = 100 * 1024 * 1024
HEALTH = "health"
MiB = 1024 * 1024
METRICS_PORTS: dict[str, int] = {}  # broker bootstrap -> its metrics port


# --- brokers and the after-each-test check ------------------------------------------------------------


def _start(data_dir: Path, broker: dict[str, Any], log: dict[str, Any]) -> BrokerProcess:
    metrics_port = free_port()
    proc = BrokerProcess(data_dir, broker={**broker, "metrics.listen": f"127.0.0.1:{metrics_port}"}, log=log)
    proc.start()
    METRICS_PORTS[proc.bootstrap] = metrics_port
    with WireClient(proc.bootstrap) as client:
        assert _create(client, HEALTH) == 0
    return proc


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    proc = _start(
        tmp_path_factory.mktemp("small") / "data",
        {"socket.request.max.bytes": SMALL_FRAME_LIMIT, "connections.max.idle.ms": SMALL_IDLE_MS},
        {"max.message.bytes": SMALL_MAX_MESSAGE},
    )
    yield proc
    proc.kill()


@pytest.fixture(scope="module")
def default(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    proc = _start(tmp_path_factory.mktemp("default") / "data", {}, {})
    yield proc
    proc.kill()


@pytest.fixture(autouse=True)
def _still_serving(small: BrokerProcess, default: BrokerProcess) -> Iterator[None]:
    marks = {proc: len(proc.output) for proc in (small, default)}
    yield
    for proc, mark in marks.items():
        assert proc.proc is not None
        assert proc.proc.poll() is None, "the broker died:\n" + proc.log_text[-3000:]
        control_round_trip(proc)
        logged = "".join(proc.output[mark:])
        assert "Traceback" not in logged, logged
        assert " ERROR " not in logged, logged


def control_round_trip(proc: BrokerProcess) -> None:
    """A normal produce and fetch on a new connection."""
    batch = make_batch(2, tag=7)
    with WireClient(proc.bootstrap, timeout=5) as client:
        ack = produce_at(client, HEALTH, batch, acks=-1)
        assert ack.error_code == 0
        got = client.call(fetch_request(HEALTH, ack.base_offset), 11).responses[0].partitions[0]
    assert got.error_code == 0
    assert bytes(got.records)[16 : len(batch)] == batch[16:]


# --- requests, checks ---------------------------------------------------------------------------------


def _create(client: WireClient, name: str, partitions: int = 1) -> int:
    topic = m.CreatableTopic(name=name, num_partitions=partitions, replication_factor=1)
    return int(client.call(m.CreateTopicsRequest(topics=[topic], timeout_ms=5000), 4).topics[0].error_code)


_queue_numbers = itertools.count()


def new_queue(proc: BrokerProcess, partitions: int = 1) -> str:
    """A fresh queue; names all have 6 characters, so tests can patch them in encoded requests."""
    name = f"u{next(_queue_numbers):05d}"
    with WireClient(proc.bootstrap) as client:
        assert _create(client, name, partitions) == 0
    return name


def produce_request(
    queue: str, records: bytes | None, *, acks: int = 1, partition: int = 0
) -> m.ProduceRequest:
    data = m.PartitionProduceData(index=partition, records=records)
    return m.ProduceRequest(
        acks=acks, timeout_ms=5000, topic_data=[m.TopicProduceData(name=queue, partition_data=[data])]
    )


def produce_at(
    client: WireClient,
    queue: str,
    records: bytes | None,
    *,
    acks: int = 1,
    version: int = 8,
    partition: int = 0,
) -> m.PartitionProduceResponse:
    response = client.call(produce_request(queue, records, acks=acks, partition=partition), version)
    result: m.PartitionProduceResponse = response.responses[0].partition_responses[0]
    return result


def fetch_request(
    queue: str, offset: int, *, partition: int = 0, max_wait_ms: int = 0, min_bytes: int = 1
) -> m.FetchRequest:
    wanted = m.FetchPartition(partition=partition, fetch_offset=offset, partition_max_bytes=MiB)
    return m.FetchRequest(
        max_wait_ms=max_wait_ms,
        min_bytes=min_bytes,
        max_bytes=MiB,
        topics=[m.FetchTopic(topic=queue, partitions=[wanted])],
    )


def list_latest_request(queue: str, partition: int = 0) -> m.ListOffsetsRequest:
    wanted = m.ListOffsetsPartition(partition_index=partition, timestamp=-1)
    return m.ListOffsetsRequest(topics=[m.ListOffsetsTopic(name=queue, partitions=[wanted])])


def assert_stored(proc: BrokerProcess, queue: str, records: int, partition: int = 0) -> None:
    """The partition holds exactly ``records`` records, in whole valid batches from offset 0, and its log
    end offset says so: no partial batch, nothing unacked."""
    with WireClient(proc.bootstrap) as client:
        latest = client.call(list_latest_request(queue, partition), 5).topics[0].partitions[0]
        got = client.call(fetch_request(queue, 0, partition=partition), 11).responses[0].partitions[0]
    assert (latest.error_code, latest.offset) == (0, records)
    assert (got.error_code, got.high_watermark) == (0, records)
    data = bytes(got.records)
    position, next_offset = 0, 0
    while position < len(data):
        _, size = rb.read_prefix(data, position)
        header = rb.validate(data[position : position + size])
        assert header.base_offset == next_offset
        next_offset = header.last_offset + 1
        position += size
    assert next_offset == records


# Client port -> how many broker output lines there were when it connected: log lines about an earlier
# connection that happened to use the same ephemeral port are not counted.
_OUTPUT_MARKS: dict[int, int] = {}


def raw_client(proc: BrokerProcess, timeout: float = 5.0) -> WireClient:
    client = WireClient(proc.bootstrap, timeout=timeout)
    client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    _OUTPUT_MARKS[client.sock.getsockname()[1]] = len(proc.output)
    return client


def read_response(client: WireClient, response_type: type[Any], version: int) -> tuple[int, Any]:
    return decode_response_as(client.read_frame(), response_type, version)


def closing_lines(proc: BrokerProcess, port: int) -> list[str]:
    needle = f"closing connection from ('127.0.0.1', {port})"
    return [line for line in proc.output[_OUTPUT_MARKS[port] :] if needle in line]


def expect_close(proc: BrokerProcess, client: WireClient, detail: str = "", within: float = 2.0) -> None:
    """The broker closes this connection (made by ``raw_client``) promptly and logs exactly one line
    about it."""
    port = client.sock.getsockname()[1]
    assert client.is_closed_by_peer(within), "the broker kept the connection open"
    deadline = time.monotonic() + 5
    while not closing_lines(proc, port) and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.1)  # a second line would follow the first at once
    lines = closing_lines(proc, port)
    assert len(lines) == 1, lines
    assert detail in lines[0]


def rss_bytes(proc: BrokerProcess) -> int:
    assert proc.proc is not None
    for line in Path(f"/proc/{proc.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS line")


def scrape(proc: BrokerProcess) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    url = f"http://127.0.0.1:{METRICS_PORTS[proc.bootstrap]}/metrics"
    with urllib.request.urlopen(url, timeout=5) as reply:
        text = reply.read().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


# --- framing: length prefixes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"GET ", id="GET-prefix-only"),
        pytest.param(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", id="http-request"),
        pytest.param(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", id="tls-client-hello"),
        pytest.param(b"\x7f\xff\xff\xff", id="int32-max"),
    ],
)
def test_length_prefix_above_the_limit_closes_before_reading_the_body(
    default: BrokerProcess, data: bytes
) -> None:
    size = struct.unpack(">i", data[:4])[0]
    assert size > DEFAULT_FRAME_LIMIT
    rss_before = rss_bytes(default)
    with raw_client(default) as client:
        started = time.monotonic()
        client.send_raw(data)  # for "GET " only the prefix: the broker must not wait for the body
        expect_close(default, client, f"length prefix {size} (limit {DEFAULT_FRAME_LIMIT})")
        assert time.monotonic() - started < 3
    assert rss_bytes(default) - rss_before < 32 * MiB, "the broker allocated for the announced frame"


@pytest.mark.parametrize("size", [SMALL_FRAME_LIMIT, SMALL_FRAME_LIMIT + 1])
def test_the_frame_size_limit_is_exact(small: BrokerProcess, size: int) -> None:
    with raw_client(small) as client:
        if size > SMALL_FRAME_LIMIT:
            client.send_raw(bad.size_prefix(size))
            expect_close(small, client, f"length prefix {size} (limit {SMALL_FRAME_LIMIT})")
            return
        # ApiVersions v2 padded to exactly the limit: trailing bytes are ignored, as Kafka does.
        payload = encode_request(m.ApiVersionsRequest(), 2, 5, "pad")[4:]
        client.send_raw(bad.frame(payload + bytes(size - len(payload))))
        correlation, response = read_response(client, m.ApiVersionsResponse, 2)
        assert (correlation, response.error_code) == (5, 0)


@pytest.mark.parametrize("size", [0, -1, -(2**31)])
def test_zero_or_negative_length_prefix_closes(small: BrokerProcess, size: int) -> None:
    with raw_client(small) as client:
        client.send_raw(bad.size_prefix(size))
        expect_close(small, client, f"length prefix {size} ")


def test_requests_before_a_bad_prefix_in_the_same_packet_are_answered(small: BrokerProcess) -> None:
    # Kafka reads one request at a time, so it answers these before it sees the bad prefix.
    queue = new_queue(small)
    stream = (
        encode_request(produce_request(queue, make_batch(2)), 8, 1, "c")
        + encode_request(m.ApiVersionsRequest(), 2, 2, "c")
        + bad.size_prefix(-7)
    )
    with raw_client(small) as client:
        client.send_raw(stream)
        correlation, produced = read_response(client, m.ProduceResponse, 8)
        assert (correlation, produced.responses[0].partition_responses[0].error_code) == (1, 0)
        assert read_response(client, m.ApiVersionsResponse, 2)[0] == 2
        expect_close(small, client, "length prefix -7 ")
    assert_stored(small, queue, 2)


@pytest.mark.parametrize("how", ["half-close", "close", "reset"])
@pytest.mark.parametrize("cut", [2, 30, -20])
def test_truncated_frame_then_eof_stores_nothing(small: BrokerProcess, how: str, cut: int) -> None:
    queue = new_queue(small)
    request = encode_request(produce_request(queue, make_batch(3)), 8, 1, "cut")
    with raw_client(small) as client:
        client.send_raw(request[:cut])  # inside the prefix, the header, the batch
        if how == "half-close":
            client.sock.shutdown(socket.SHUT_WR)
            started = time.monotonic()
            assert client.sock.recv(1) == b"", "the broker answered a truncated request"
            assert time.monotonic() - started < 2, "the broker did not notice the EOF"
        elif how == "reset":
            client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    assert_stored(small, queue, 0)


def test_a_complete_request_then_half_close_is_still_answered(small: BrokerProcess) -> None:
    # What `printf ... | nc -N` does: the EOF ends the connection only after the answer.
    with raw_client(small) as client:
        client.send_raw(encode_request(m.ApiVersionsRequest(), 2, 4, "nc"))
        client.sock.shutdown(socket.SHUT_WR)
        assert read_response(client, m.ApiVersionsResponse, 2)[0] == 4
        assert client.sock.recv(1) == b""


def test_truncated_frame_without_eof_is_dropped_at_the_idle_timeout(small: BrokerProcess) -> None:
    request = encode_request(m.ApiVersionsRequest(), 2, 1, "stall")
    with raw_client(small, timeout=SMALL_IDLE_MS / 1000 + 10) as client:
        client.send_raw(request[:-3])
        started = time.monotonic()
        assert client.is_closed_by_peer(SMALL_IDLE_MS / 1000 + 5), "no read timeout: the broker hangs"
        waited = time.monotonic() - started
    assert SMALL_IDLE_MS / 1000 - 0.5 < waited < SMALL_IDLE_MS / 1000 + 3


def test_requests_sent_one_byte_at_a_time_are_answered(small: BrokerProcess) -> None:
    queue = new_queue(small)
    batch = make_batch(3, tag=1)
    stream = encode_request(produce_request(queue, batch), 8, 1, "slow") + encode_request(
        fetch_request(queue, 0), 11, 2, "slow"
    )
    with raw_client(small) as client:
        for byte in stream:
            client.send_raw(bytes([byte]))
            time.sleep(0.0003)  # let the broker see (most) bytes in separate reads
        correlation, produced = read_response(client, m.ProduceResponse, 8)
        ack = produced.responses[0].partition_responses[0]
        assert (correlation, ack.error_code, ack.base_offset) == (1, 0, 0)
        correlation, fetched = read_response(client, m.FetchResponse, 11)
        assert correlation == 2
        assert bytes(fetched.responses[0].partitions[0].records)[16:] == batch[16:]
    assert_stored(small, queue, 3)


@pytest.fixture(scope="module")
def split_queue(small: BrokerProcess) -> str:
    return new_queue(small)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=st.lists(st.integers(min_value=0, max_value=100_000), max_size=10))
def test_any_fragmentation_of_a_pipelined_stream_is_answered_in_order(
    small: BrokerProcess, split_queue: str, cuts: list[int]
) -> None:
    # The broker must reassemble frames whatever the TCP segmentation; the fetch sees the produce
    # before it because requests on one connection are handled in order.
    with WireClient(small.bootstrap) as client:
        end = client.call(list_latest_request(split_queue), 5).topics[0].partitions[0].offset
    batch = make_batch(2, tag=end)
    requests: list[tuple[Any, int, type[Any]]] = [
        (m.ApiVersionsRequest(), 2, m.ApiVersionsResponse),
        (produce_request(split_queue, batch), 8, m.ProduceResponse),
        (m.MetadataRequest(topics=[m.MetadataRequestTopic(name=split_queue)]), 8, m.MetadataResponse),
        (fetch_request(split_queue, end), 11, m.FetchResponse),
        (list_latest_request(split_queue), 5, m.ListOffsetsResponse),
    ]
    stream = b"".join(encode_request(body, v, 100 + i, "split") for i, (body, v, _) in enumerate(requests))
    points = sorted({0, len(stream), *(c % len(stream) for c in cuts)})
    with raw_client(small) as client:
        for start, stop in itertools.pairwise(points):
            client.send_raw(stream[start:stop])
            time.sleep(0.002)
        replies = [read_response(client, kind, v) for _, v, kind in requests]
    assert [correlation for correlation, _ in replies] == [100, 101, 102, 103, 104]
    ack = replies[1][1].responses[0].partition_responses[0]
    assert (ack.error_code, ack.base_offset) == (0, end)
    assert bytes(replies[3][1].responses[0].partitions[0].records)[16:] == batch[16:]
    assert replies[4][1].topics[0].partitions[0].offset == end + 2


def test_pipelined_requests_are_answered_in_order(small: BrokerProcess) -> None:
    queue = new_queue(small)
    first, second = make_batch(2, tag=1), make_batch(3, tag=2)
    requests: list[tuple[Any, int, type[Any] | None]] = [
        # A long poll at the head holds back everything behind it, so it sees an empty queue.
        (fetch_request(queue, 0, max_wait_ms=400), 11, m.FetchResponse),
        (produce_request(queue, first, acks=0), 8, None),  # acks=0: no response at all
        (produce_request(queue, second, acks=1), 7, m.ProduceResponse),
        (fetch_request(queue, 0), 4, m.FetchResponse),
        (list_latest_request(queue), 1, m.ListOffsetsResponse),
        (m.ApiVersionsRequest(), 0, m.ApiVersionsResponse),
    ]
    stream = b"".join(encode_request(body, v, i + 1, "pipe") for i, (body, v, _) in enumerate(requests))
    with raw_client(small) as client:
        started = time.monotonic()
        client.send_raw(stream)
        replies = [read_response(client, kind, v) for _, v, kind in requests if kind is not None]
        elapsed = time.monotonic() - started
    assert [correlation for correlation, _ in replies] == [1, 3, 4, 5, 6]
    assert elapsed >= 0.35, "the long poll did not hold back the requests behind it"
    head = replies[0][1].responses[0].partitions[0]
    assert (head.high_watermark, bytes(head.records)) == (0, b"")
    assert replies[1][1].responses[0].partition_responses[0].base_offset == 2
    assert replies[2][1].responses[0].partitions[0].high_watermark == 5
    assert replies[3][1].topics[0].partitions[0].offset == 5
    assert_stored(small, queue, 5)


# --- APIs and versions ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("api_key", "version"),
    [
        pytest.param(99, 0, id="unknown-key-99"),
        pytest.param(-1, 0, id="negative-key"),
        pytest.param(23, 4, id="OffsetForLeaderEpoch-v4-flexible"),
        pytest.param(68, 0, id="ConsumerGroupHeartbeat"),
        pytest.param(1, 3, id="Fetch-v3-below-min"),
        pytest.param(1, 12, id="Fetch-v12-flexible"),
        pytest.param(0, 9, id="Produce-v9-flexible"),
        pytest.param(3, 9, id="Metadata-v9-flexible"),
        pytest.param(19, 5, id="CreateTopics-v5"),
        pytest.param(22, -1, id="InitProducerId-v-1"),
    ],
)
def test_unknown_api_or_version_closes_and_api_versions_still_works(
    small: BrokerProcess, api_key: int, version: int
) -> None:
    with raw_client(small) as client:
        client.send_raw(bad.raw_request(api_key, version, 9, b"\x00" * 32))
        expect_close(small, client, f"unsupported api_key {api_key} version {version}")
    with WireClient(small.bootstrap) as client:
        response = client.call(m.ApiVersionsRequest(), 2)
    assert response.error_code == 0
    assert (18, 0, 2) in {(k.api_key, k.min_version, k.max_version) for k in response.api_keys}


@pytest.mark.parametrize("version", [3, 4, 5, 127])
def test_api_versions_above_v2_gets_the_v0_fallback_and_the_connection_stays_usable(
    small: BrokerProcess, version: int
) -> None:
    queue = new_queue(small)
    request = bad.api_versions_v3(11) if version == 3 else bad.raw_request(18, version, 11, b"\x00\x00")
    with WireClient(small.bootstrap) as client:
        client.send_raw(request)
        assert client.read_frame() == bad.fallback_reply(11)
        # What librdkafka (v0) and kafka-python (v2) do next, on the same connection:
        for retry in (0, 2):
            response = client.call(m.ApiVersionsRequest(), retry)
            assert response.error_code == 0
            assert len(response.api_keys) > 1
        assert produce_at(client, queue, make_batch(1)).error_code == 0
    assert_stored(small, queue, 1)


@pytest.mark.parametrize("version", [0, 1, 2])
def test_produce_below_v3_closes_and_stores_nothing(small: BrokerProcess, version: int) -> None:
    queue = new_queue(small)
    request = produce_request(queue, bad.legacy_message_set(b"old value", b"k"))
    with raw_client(small) as client:
        client.send_raw(encode_request(request, version, 3, "old"))
        expect_close(small, client, f"Produce v{version} (message format < 2) is not served")
    assert_stored(small, queue, 0)


# --- record batches ---------------------------------------------------------------------------------------


def _flip_record_byte(batch: bytes) -> bytes:
    out = bytearray(batch)
    out[-3] ^= 0x01
    return bytes(out)


def _with_batch_length(batch: bytes, delta: int) -> bytes:
    out = bytearray(batch)
    struct.pack_into(">i", out, 8, len(batch) - rb.LOG_OVERHEAD + delta)
    return bytes(out)


CORRUPT: list[Any] = [
    pytest.param(bad.with_bad_crc, id="wrong-crc"),
    pytest.param(_flip_record_byte, id="record-byte-flipped"),
    pytest.param(lambda b: _with_batch_length(b, +10), id="batch-length-past-the-end"),
    pytest.param(lambda b: bad.with_last_offset_delta(b, 7), id="last-offset-delta-vs-count"),
    pytest.param(lambda b: bad.with_attributes(b, 5), id="unknown-codec-5"),
    pytest.param(lambda b: b[:40], id="shorter-than-a-batch-header"),
    pytest.param(lambda b: None, id="null-records"),
]


@pytest.mark.parametrize("acks", [1, -1])
@pytest.mark.parametrize("corrupt", CORRUPT)
def test_corrupt_batch_is_corrupt_message_and_nothing_is_appended(
    small: BrokerProcess, corrupt: Callable[[bytes], bytes | None], acks: int
) -> None:
    queue = new_queue(small)
    good = make_batch(3)
    with WireClient(small.bootstrap) as client:
        assert produce_at(client, queue, corrupt(good), acks=acks).error_code == ErrorCode.CORRUPT_MESSAGE
        # the same connection goes on: the good batch lands at offset 0
        ack = produce_at(client, queue, good, acks=acks)
        assert (ack.error_code, ack.base_offset) == (0, 0)
    assert_stored(small, queue, 3)


def _batch_of_size(size: int) -> bytes:
    for value_size in range(size - 120, size):  # bounded search: varint widths make sizes skip
        batch = make_batch(1, value_size=value_size)
        if len(batch) == size:
            return batch
    raise AssertionError(f"no one-record batch of {size} bytes")


def test_batch_over_max_message_bytes_is_message_too_large(small: BrokerProcess) -> None:
    queue = new_queue(small)
    with WireClient(small.bootstrap) as client:
        over = produce_at(client, queue, _batch_of_size(SMALL_MAX_MESSAGE + 1))
        assert over.error_code == ErrorCode.MESSAGE_TOO_LARGE
        assert produce_at(client, queue, _batch_of_size(SMALL_MAX_MESSAGE)).error_code == 0
    assert_stored(small, queue, 1)


INVALID: list[Any] = [
    pytest.param(make_batch(2) + make_batch(1), id="two-batches"),
    pytest.param(bad.legacy_message_set(b"v" * 100, b"k"), id="magic-1-long"),
    pytest.param(bad.legacy_message_set(b"v", b"k"), id="magic-1-short"),
    pytest.param(bad.with_attributes(make_batch(2), rb.ATTR_CONTROL), id="control-bit"),
    pytest.param(bad.with_attributes(make_batch(2), rb.ATTR_TRANSACTIONAL), id="transactional-bit"),
    pytest.param(
        bad.with_attributes(make_batch(1), rb.ATTR_CONTROL | rb.ATTR_TRANSACTIONAL), id="commit-marker"
    ),
]


@pytest.mark.parametrize("records", INVALID)
def test_invalid_batch_is_invalid_record_and_nothing_is_appended(
    small: BrokerProcess, records: bytes
) -> None:
    queue = new_queue(small)
    with WireClient(small.bootstrap) as client:
        assert produce_at(client, queue, records).error_code == ErrorCode.INVALID_RECORD
    assert_stored(small, queue, 0)


@pytest.mark.parametrize("version", [3, 4, 5, 6, 7, 8])
def test_zstd_needs_produce_v7(small: BrokerProcess, version: int) -> None:
    queue = new_queue(small)
    with WireClient(small.bootstrap) as client:
        code = produce_at(client, queue, make_batch(3, compression=rb.CODEC_ZSTD), version=version).error_code
    if version < 7:
        assert code == ErrorCode.UNSUPPORTED_COMPRESSION_TYPE
        assert_stored(small, queue, 0)
    else:
        assert code == 0
        assert_stored(small, queue, 3)


@pytest.mark.parametrize("acks", [2, -2, 3, 32767])
def test_invalid_acks_fails_every_partition(small: BrokerProcess, acks: int) -> None:
    queue = new_queue(small, 2)
    parts = [m.PartitionProduceData(index=i, records=make_batch(1)) for i in (0, 1)]
    request = m.ProduceRequest(
        acks=acks, timeout_ms=1000, topic_data=[m.TopicProduceData(name=queue, partition_data=parts)]
    )
    with WireClient(small.bootstrap) as client:
        response = client.call(request, 8)
        assert [p.error_code for p in response.responses[0].partition_responses] == [21, 21]
        assert produce_at(client, queue, make_batch(1)).error_code == 0  # still usable
    assert_stored(small, queue, 1)
    assert_stored(small, queue, 0, partition=1)


def test_acks_zero_with_a_bad_batch_stores_nothing(small: BrokerProcess) -> None:
    queue = new_queue(small)
    with WireClient(small.bootstrap) as client:
        client.send(produce_request(queue, bad.with_bad_crc(make_batch(2)), acks=0), 8)
        client.send(produce_request(queue, make_batch(1, value_size=SMALL_MAX_MESSAGE), acks=0), 8)
        # Answered only after both produces were handled (in order). Closing instead is right too
        # (Kafka does; see the xfail below), and also comes after handling.
        with contextlib.suppress(ConnectionError):
            assert client.call(list_latest_request(queue), 5).topics[0].partitions[0].offset == 0
    assert_stored(small, queue, 0)


def test_acks_zero_produce_that_fails_closes_the_connection(small: BrokerProcess) -> None:
    queue = new_queue(small)
    with raw_client(small) as client:
        client.send(produce_request(queue, bad.with_bad_crc(make_batch(2)), acks=0), 8)
        assert client.is_closed_by_peer(2), "the failed acks=0 produce left the connection open"


# --- request bodies that cannot be parsed -----------------------------------------------------------------


def _produce_frame(queue: str) -> bytes:
    return encode_request(produce_request(queue, make_batch(2)), 8, 1, "body")


def _name(queue: str) -> bytes:
    return struct.pack(">h", len(queue)) + queue.encode()


MALFORMED: dict[str, Callable[[str], bytes]] = {
    # lengths and counts pointing past the end of the frame
    "queue-name-length-past-the-end": lambda q: bad.replace_once(
        _produce_frame(q), _name(q), b"\x7f\xff" + q.encode()
    ),
    "negative-queue-name-length": lambda q: bad.replace_once(
        _produce_frame(q), _name(q), b"\xff\xfe" + q.encode()
    ),
    "partition-count-past-the-end": lambda q: bad.replace_once(
        _produce_frame(q), q.encode() + b"\x00\x00\x00\x01", q.encode() + b"\x7f\xff\xff\xff"
    ),
    "records-length-past-the-end": lambda q: _patch_records_length(_produce_frame(q), 1),
    "records-length-negative": lambda q: _patch_records_length(_produce_frame(q), -(2**31)),
    "client-id-length-past-the-end": lambda q: bad.replace_once(
        _produce_frame(q), b"\x00\x04body", b"\x7f\xffbody"
    ),
    "fetch-topic-count-past-the-end": lambda q: bad.replace_once(
        encode_request(fetch_request(q, 0), 11, 1, "body"),
        b"\x00\x00\x00\x01" + _name(q),
        b"\x7f\xff\xff\xff" + _name(q),
    ),
    "metadata-topic-count-huge": lambda q: bad.raw_request(3, 8, 1, b"\x10\x00\x00\x00" + _name(q)),
    "empty-body": lambda q: bad.raw_request(0, 8, 1, b""),
    "header-shorter-than-8-bytes": lambda q: bad.frame(b"\x00\x12\x00"),
    # invalid UTF-8
    "bad-utf8-queue-in-produce": lambda q: bad.replace_once(
        _produce_frame(q), q.encode(), b"\xff\xfeu\xc3\x28q"
    ),
    "bad-utf8-queue-in-fetch": lambda q: bad.replace_once(
        encode_request(fetch_request(q, 0), 11, 1, "body"), q.encode(), b"\xc3\x28" + q.encode()[2:]
    ),
    "bad-utf8-queue-in-metadata": lambda q: bad.raw_request(3, 8, 1, b"\x00\x00\x00\x01\x00\x02\xed\xa0"),
    "bad-utf8-queue-in-create": lambda q: bad.replace_once(
        encode_request(
            m.CreateTopicsRequest(
                topics=[m.CreatableTopic(name=q + "x", num_partitions=1, replication_factor=1)]
            ),
            4,
            1,
            "body",
        ),
        (q + "x").encode(),
        b"\xf0\x28\x8c\x28" + q.encode()[:3],
    ),
    "bad-utf8-client-id": lambda q: bad.replace_once(_produce_frame(q), b"body", b"\x80ody"),
}


def _patch_records_length(request: bytes, value: int) -> bytes:
    batch_start = len(request) - len(make_batch(2))
    out = bytearray(request)
    struct.pack_into(">i", out, batch_start - 4, value if value < 0 else len(request) - batch_start + value)
    return bytes(out)


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_unparsable_request_closes_only_that_connection(small: BrokerProcess, case: str) -> None:
    queue = new_queue(small)
    request = MALFORMED[case](queue)
    with WireClient(small.bootstrap) as other, raw_client(small) as client:
        assert other.call(m.ApiVersionsRequest(), 2).error_code == 0
        client.send_raw(request)
        expect_close(small, client, "malformed request")
        # another connection, opened before, is unaffected
        assert produce_at(other, queue, make_batch(1)).error_code == 0
    assert_stored(small, queue, 1)
    with WireClient(small.bootstrap) as client:
        names = [t.name for t in client.call(m.MetadataRequest(topics=None), 8).topics]
    assert all(name.isascii() for name in names), "a queue was created from a bad name"


def test_every_truncation_of_a_produce_request_closes_and_stores_nothing(small: BrokerProcess) -> None:
    queue = new_queue(small)
    payload = _produce_frame(queue)[4:]
    for cut in range(len(payload)):  # a frame whose fields run past its end, at every position
        with raw_client(small) as client:
            client.send_raw(bad.frame(payload[:cut]))
            assert client.is_closed_by_peer(2), f"a request cut at {cut} was not refused"
    assert_stored(small, queue, 0)


def test_every_single_byte_corruption_of_a_produce_request(small: BrokerProcess) -> None:
    # Each position flipped: the broker answers with an error, acks (a byte it overwrites or ignores),
    # or closes; the log holds exactly the acked batches.
    queue = new_queue(small)
    payload = _produce_frame(queue)[4:]
    outcomes: Counter[str] = Counter()
    acked = 0
    for position in range(len(payload)):
        flipped = bytearray(payload)
        flipped[position] ^= 0xFF
        with raw_client(small) as client:
            client.send_raw(bad.frame(bytes(flipped)))
            try:
                frame = client.read_frame()
            except ConnectionError:
                outcomes["closed"] += 1
                continue
        code = (
            decode_response_as(frame, m.ProduceResponse, 8)[1].responses[0].partition_responses[0].error_code
        )
        outcomes[str(ErrorCode(code).name)] += 1
        assert code in {0, 2, 3, 21, 87}, (position, code)
        acked += 2 if code == 0 else 0
    assert outcomes["closed"] > 0
    assert outcomes["CORRUPT_MESSAGE"] > 0
    assert_stored(small, queue, acked)


# --- unknown queues and partitions ----------------------------------------------------------------------


def test_unknown_queue_or_partition_is_an_error_and_the_connection_stays_usable(small: BrokerProcess) -> None:
    queue = new_queue(small, 2)
    unknown = [("no-such-queue", 0), (queue, -1), (queue, 2), (queue, 2**31 - 1), ("", 0)]
    with WireClient(small.bootstrap) as client:
        for name, partition in unknown:
            assert produce_at(client, name, make_batch(1), partition=partition).error_code == 3
            got = client.call(fetch_request(name, 0, partition=partition), 11).responses[0].partitions[0]
            assert (got.error_code, got.partition_index, bytes(got.records or b"")) == (3, partition, b"")
            latest = client.call(list_latest_request(name, partition), 5).topics[0].partitions[0]
            assert latest.error_code == 3
        metadata = client.call(m.MetadataRequest(topics=[m.MetadataRequestTopic(name="no-such-queue")]), 8)
        assert metadata.topics[0].error_code == 3
        assert produce_at(client, queue, make_batch(2), partition=1).error_code == 0
    assert_stored(small, queue, 0)
    assert_stored(small, queue, 2, partition=1)


def test_fetch_response_lists_exactly_the_requested_partitions_in_order(small: BrokerProcess) -> None:
    queue, other = new_queue(small, 3), new_queue(small)
    with WireClient(small.bootstrap) as client:
        produce_at(client, queue, make_batch(2), partition=0)
        produce_at(client, other, make_batch(1))
        wanted = [
            (queue, [(2, 0), (0, 0), (7, 0), (-1, 0), (1, 99)]),
            ("no-such-queue", [(0, 0), (3, 0)]),
            (other, [(0, 0)]),
        ]
        request = m.FetchRequest(
            max_wait_ms=5000,
            min_bytes=1 << 20,  # would wait, but an error answers at once (docs/protocol.md, "Fetch")
            max_bytes=MiB,
            topics=[
                m.FetchTopic(
                    topic=name,
                    partitions=[
                        m.FetchPartition(partition=p, fetch_offset=o, partition_max_bytes=MiB)
                        for p, o in parts
                    ],
                )
                for name, parts in wanted
            ],
        )
        started = time.monotonic()
        response = client.call(request, 11)
        assert time.monotonic() - started < 2
    got = [(t.topic, [(p.partition_index, p.error_code) for p in t.partitions]) for t in response.responses]
    assert got == [
        (queue, [(2, 0), (0, 0), (7, 3), (-1, 3), (1, ErrorCode.OFFSET_OUT_OF_RANGE)]),
        ("no-such-queue", [(0, 3), (3, 3)]),
        (other, [(0, 0)]),
    ]
    assert response.responses[0].partitions[1].high_watermark == 2
    assert response.responses[2].partitions[0].records


# --- hostile but well-formed requests (not in the table; found while writing these tests) ----------------


def test_an_abandoned_long_poll_is_released_within_the_idle_timeout(small: BrokerProcess) -> None:
    queue = new_queue(small)
    with WireClient(small.bootstrap) as client:
        client_port = client.sock.getsockname()[1]
        client.send(fetch_request(queue, 0, max_wait_ms=2**31 - 1), 11)
        time.sleep(0.2)  # the broker is now waiting in the long poll
    deadline = time.monotonic() + SMALL_IDLE_MS / 1000 + 2
    while _broker_keeps_socket(small, client_port) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _broker_keeps_socket(small, client_port), "the connection of a client that left is still open"


def _broker_keeps_socket(proc: BrokerProcess, client_port: int) -> bool:
    """The broker's end of the connection from ``client_port`` is in CLOSE_WAIT: the client has gone
    and the broker has not closed its socket yet."""
    wanted = (f"0100007F:{proc.port:04X}", f"0100007F:{client_port:04X}", "08")  # 08 = CLOSE_WAIT
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return any(tuple(row.split()[1:4]) == wanted for row in rows)


def test_a_small_fetch_cannot_make_the_broker_build_a_huge_response(default: BrokerProcess) -> None:
    queue = new_queue(default)
    with WireClient(default.bootstrap, timeout=30) as client:
        assert produce_at(client, queue, make_batch(1, value_size=512 * 1024)).error_code == 0
        same = m.FetchPartition(partition=0, fetch_offset=0, partition_max_bytes=MiB)
        request = m.FetchRequest(
            max_wait_ms=0,
            min_bytes=1,
            max_bytes=2**31 - 1,
            topics=[m.FetchTopic(topic=queue, partitions=[same] * 150)],
        )
        assert len(encode_request(request, 11, 1, "amp")) < 5000
        client.send(request, 11)
        size = struct.unpack(">i", client.sock.recv(4, socket.MSG_WAITALL))[0]
    # closing without reading the rest: the broker's write fails and it drops the connection
    assert size <= 55 * MiB, f"a {size >> 20} MiB response to a 4 KB request"


# --- many bad connections ---------------------------------------------------------------------------------


def _garbage(rng: random.Random, kind: int) -> bytes:
    if kind == 0:
        return rng.randbytes(rng.randint(1, 2048))
    if kind == 1:
        return b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    if kind == 2:
        return bad.size_prefix(rng.choice([0, -1, -(2**31)]))
    if kind == 3:  # a legal size, then a fraction of the body: the broker must wait without preallocating
        return bad.size_prefix(rng.randint(MiB, DEFAULT_FRAME_LIMIT)) + rng.randbytes(rng.randint(0, 4096))
    if kind == 4:  # a plausible header, then random fields
        return bad.raw_request(rng.choice([0, 1, 2, 3, 18]), rng.randint(0, 8), 1, rng.randbytes(64))
    return b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + rng.randbytes(32)


def test_a_thousand_garbage_connections_leave_the_broker_responsive(default: BrokerProcess) -> None:
    rng = random.Random(20240601)
    queue = new_queue(default)
    deadline = time.monotonic() + 30
    rss_before = rss_bytes(default)
    acked = 0
    for _ in range(20):  # 20 rounds of 50 connections
        assert time.monotonic() < deadline, "the garbage rounds took too long"
        sockets = []
        for i in range(50):
            sock = socket.create_connection(("127.0.0.1", default.port), timeout=5)
            sockets.append(sock)
            with contextlib.suppress(OSError):  # the broker may already have closed it
                sock.sendall(_garbage(rng, i % 6))
        # while they are open, a fresh connection is served promptly
        started = time.monotonic()
        with WireClient(default.bootstrap, timeout=5) as client:
            ack = produce_at(client, queue, make_batch(1, tag=acked))
            assert (ack.error_code, ack.base_offset) == (0, acked)
            got = client.call(fetch_request(queue, acked), 11).responses[0].partitions[0]
            assert got.error_code == 0
            assert got.records
        assert time.monotonic() - started < 2
        acked += 1
        for i, sock in enumerate(sockets):
            if i % 7 == 0:  # some leave with a reset instead of a FIN
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
    assert rss_bytes(default) - rss_before < 200 * MiB
    # every garbage connection is gone: none is left waiting for a body that never comes
    deadline = time.monotonic() + 5
    while scrape(default)[("logq_connections", frozenset())] > 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert scrape(default)[("logq_connections", frozenset())] == 0
    assert_stored(default, queue, acked)
