"""A queue's compression.type and message.timestamp.type on a real broker, over the wire with exact
requests: what is stored, what Produce answers, deduplication, ListOffsets by the stamped time."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from logq import batch as rb
from logq import codec
from logq.error_codes import ErrorCode
from logq.protocol import messages as m
from logq.testing import make_batch
from tests.broker.test_broker_basic import create, fetch, produce
from tests.broker_process import BrokerProcess
from tests.commands.test_admin_cli import assert_one_line_error, run, run_json
from tests.wire_client import WireClient


def stored_batches(client: WireClient, queue: str) -> list[bytes]:
    """Every stored batch of partition 0, as the broker holds it (a raw Fetch)."""
    out: list[bytes] = []
    offset, end = 0, 1
    while offset < end:
        got = fetch(client, queue, offset)
        assert got.error_code == 0
        end = got.high_watermark
        data = bytes(got.records or b"")
        pos = 0
        while len(data) - pos >= rb.HEADER_SIZE:
            header = rb.parse_header(data, pos)
            if pos + header.size > len(data):
                break
            out.append(data[pos : pos + header.size])
            offset, pos = header.last_offset + 1, pos + header.size
    return out


def values(batch: bytes) -> list[bytes | None]:
    header = rb.validate(batch)
    section = codec.decompress(header.codec, batch[rb.HEADER_SIZE :])
    return [r.value for r in rb.decode_records(section, header)]


def init_producer(client: WireClient) -> int:
    init = client.call(m.InitProducerIdRequest(transactional_id=None, transaction_timeout_ms=1000), 1)
    assert init.error_code == 0
    return int(init.producer_id)


def list_offset(client: WireClient, queue: str, timestamp: int) -> tuple[int, int]:
    wanted = m.ListOffsetsPartition(partition_index=0, timestamp=timestamp)
    request = m.ListOffsetsRequest(topics=[m.ListOffsetsTopic(name=queue, partitions=[wanted])])
    p = client.call(request, 5).topics[0].partitions[0]
    assert p.error_code == 0
    return p.offset, p.timestamp


def test_the_default_stores_the_producers_bytes(broker: BrokerProcess) -> None:
    with WireClient(broker.bootstrap) as client:
        create(client, "as-sent")
        sent = [make_batch(5, compression=c, tag=c) for c in (rb.CODEC_NONE, rb.CODEC_GZIP, rb.CODEC_ZSTD)]
        for batch in sent:
            answer = produce(client, "as-sent", batch)
            assert (answer.error_code, answer.log_append_time_ms) == (0, -1)
        # only baseOffset and the leader epoch (outside the CRC) differ from what was sent
        assert [b[rb.CRC_START :] for b in stored_batches(client, "as-sent")] == [
            b[rb.CRC_START :] for b in sent
        ]


@pytest.mark.parametrize("target", ["zstd", "gzip", "uncompressed"])
def test_a_codec_queue_stores_every_batch_in_its_codec(broker: BrokerProcess, target: str) -> None:
    expected = codec.COMPRESSION_TYPE_CODECS[target]
    with WireClient(broker.bootstrap) as client:
        assert create(client, "coded", compression_type=target) == 0
        sent = [make_batch(50, value_size=300, compression=c, tag=c) for c in (0, 1, 4)]
        for batch in sent:
            assert produce(client, "coded", batch).error_code == 0
        stored = stored_batches(client, "coded")
        assert [rb.parse_header(b).codec for b in stored] == [expected] * 3
        assert [values(b) for b in stored] == [values(b) for b in sent]
        for before, after in zip(sent, stored, strict=True):
            b, a = rb.parse_header(before), rb.parse_header(after)
            assert (a.base_timestamp, a.max_timestamp, a.records_count) == (
                b.base_timestamp,
                b.max_timestamp,
                b.records_count,
            )


def test_a_large_batch_is_recompressed_too(broker: BrokerProcess) -> None:
    """Above 64 KiB the rewrite runs in a worker thread; the result is the same."""
    with WireClient(broker.bootstrap) as client:
        create(client, "large", compression_type="zstd")
        sent = make_batch(2000, value_size=200, compression=rb.CODEC_GZIP)
        uncompressed = make_batch(2000, value_size=200)
        assert len(uncompressed) > 256 * 1024
        assert produce(client, "large", uncompressed).error_code == 0
        assert produce(client, "large", sent).error_code == 0
        stored = stored_batches(client, "large")
        assert [rb.parse_header(b).codec for b in stored] == [rb.CODEC_ZSTD] * 2
        assert values(stored[0]) == values(uncompressed)
        assert values(stored[1]) == values(sent)


def test_a_retried_batch_of_an_idempotent_producer_is_still_a_duplicate(broker: BrokerProcess) -> None:
    with WireClient(broker.bootstrap) as client:
        create(client, "idem-zstd", compression_type="zstd")
        pid = init_producer(client)
        first = make_batch(4, producer_id=pid, producer_epoch=0, sequence=0, compression=rb.CODEC_GZIP)
        second = make_batch(4, producer_id=pid, producer_epoch=0, sequence=4)
        assert produce(client, "idem-zstd", first).base_offset == 0
        assert produce(client, "idem-zstd", second).base_offset == 4
        again = produce(client, "idem-zstd", second)  # the retry of a batch whose answer was lost
        assert (again.error_code, again.base_offset) == (0, 4)
        gap = produce(client, "idem-zstd", make_batch(1, producer_id=pid, producer_epoch=0, sequence=9))
        assert gap.error_code == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
        stored = stored_batches(client, "idem-zstd")
        assert len(stored) == 2
        headers = [rb.parse_header(b) for b in stored]
        assert [(h.producer_id, h.producer_epoch, h.base_sequence) for h in headers] == [
            (pid, 0, 0),
            (pid, 0, 4),
        ]
        assert {h.codec for h in headers} == {rb.CODEC_ZSTD}


def test_log_append_time(broker: BrokerProcess) -> None:
    with WireClient(broker.bootstrap) as client:
        create(client, "appended", message_timestamp_type="LogAppendTime")
        pid = init_producer(client)
        old = 1_000_000  # 1970: what the producer says, which the queue ignores
        before = int(time.time() * 1000)
        batch = make_batch(3, timestamp=old, producer_id=pid, producer_epoch=0, sequence=0)
        answer = produce(client, "appended", batch)
        after = int(time.time() * 1000)
        assert answer.error_code == 0
        assert before <= answer.log_append_time_ms <= after
        time.sleep(0.05)
        retried = produce(client, "appended", batch)
        assert (retried.base_offset, retried.log_append_time_ms) == (0, answer.log_append_time_ms)

        time.sleep(0.05)
        middle = int(time.time() * 1000)
        time.sleep(0.05)
        later = produce(client, "appended", make_batch(2, timestamp=old, compression=rb.CODEC_ZSTD))
        assert later.log_append_time_ms > middle

        stored = stored_batches(client, "appended")
        for batch_bytes, stamped in zip(stored, (answer, later), strict=True):
            header = rb.validate(batch_bytes)
            assert header.attributes & rb.ATTR_LOG_APPEND_TIME
            assert (header.base_timestamp, header.max_timestamp) == (old, stamped.log_append_time_ms)
        assert rb.parse_header(stored[1]).codec == rb.CODEC_ZSTD  # kept: CreateTime/producer codec
        # ListOffsets finds records by the broker's time, not the producer's
        assert list_offset(client, "appended", old) == (0, answer.log_append_time_ms)
        assert list_offset(client, "appended", middle) == (3, later.log_append_time_ms)
        assert list_offset(client, "appended", later.log_append_time_ms + 1) == (-1, -1)


def test_a_batch_logq_cannot_decompress_is_refused_by_a_codec_queue(broker: BrokerProcess) -> None:
    with WireClient(broker.bootstrap) as client:
        create(client, "zstd-only", compression_type="zstd")
        lz4 = rb.build_batch([rb.Record(b"v")], attributes=rb.CODEC_LZ4, compressed_records=b"\x04\x22M\x18")
        answer = produce(client, "zstd-only", lz4)
        assert answer.error_code == ErrorCode.UNSUPPORTED_COMPRESSION_TYPE
        assert "lz4" in answer.error_message
        assert fetch(client, "zstd-only", 0).high_watermark == 0


@pytest.mark.parametrize("codec_name", ["lz4", "snappy"])
def test_creation_refuses_a_codec_logq_cannot_write(broker: BrokerProcess, codec_name: str) -> None:
    with WireClient(broker.bootstrap) as client:
        topic = m.CreatableTopic(
            name="never",
            num_partitions=1,
            replication_factor=1,
            configs=[m.CreatableTopicConfig(name="compression.type", value=codec_name)],
        )
        result = client.call(m.CreateTopicsRequest(topics=[topic], timeout_ms=5000), 4).topics[0]
        assert result.error_code == ErrorCode.INVALID_CONFIG
        assert f"compression.type {codec_name!r} is not supported" in result.error_message


def test_a_broker_default_codec_logq_cannot_write_stops_the_start(tmp_path: Path) -> None:
    proc = BrokerProcess(tmp_path / "data", log={"compression.type": "lz4"})
    try:
        with pytest.raises(RuntimeError) as caught:
            proc.start(timeout=10)
    finally:
        proc.kill()  # had it started after all
    said = [line for line in str(caught.value).splitlines() if "compression.type" in line]
    assert said == ["Error: [log] compression.type 'lz4' is not supported: logq cannot compress lz4 "
                    "batches (use producer, uncompressed, gzip, zstd)"]  # fmt: skip
    assert "Traceback" not in str(caught.value)


def test_the_cli_creates_such_queues_and_refuses_lz4_in_one_line(broker: BrokerProcess) -> None:
    created = run(
        broker, "queue", "create", "events", "-c", "compression.type=zstd",
        "-c", "message.timestamp.type=LogAppendTime",
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    described = run_json(broker, "queue", "describe", "events")
    assert "zstd" in json.dumps(described)
    assert "LogAppendTime" in json.dumps(described)
    refused = run(broker, "queue", "create", "fast", "-c", "compression.type=lz4")
    assert_one_line_error(refused, "compression.type 'lz4' is not supported", "logq cannot compress lz4")
