"""A queue's compression.type and message.timestamp.type on a real broker, over the wire with exact
requests: what is stored, what Produce answers, deduplication, ListOffsets by the stamped time."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from logq import batch as rb
from logq import codec
from logq.broker.batch_rewrite import MAX_DECOMPRESSED_BYTES
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


@pytest.mark.parametrize("target", ["zstd", "gzip", "lz4", "snappy", "uncompressed"])
def test_a_codec_queue_stores_every_batch_in_its_codec(broker: BrokerProcess, target: str) -> None:
    expected = codec.COMPRESSION_TYPE_CODECS[target]
    with WireClient(broker.bootstrap) as client:
        assert create(client, "coded", compression_type=target) == 0
        sent = [make_batch(50, value_size=300, compression=c, tag=c) for c in range(5)]  # every codec
        for batch in sent:
            assert produce(client, "coded", batch).error_code == 0
        stored = stored_batches(client, "coded")
        assert [rb.parse_header(b).codec for b in stored] == [expected] * 5
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


def test_records_that_do_not_decompress_are_refused_by_a_codec_queue(broker: BrokerProcess) -> None:
    with WireClient(broker.bootstrap) as client:
        create(client, "zstd-only", compression_type="zstd")
        lz4 = rb.build_batch([rb.Record(b"v")], attributes=rb.CODEC_LZ4, compressed_records=b"\x04\x22M\x18")
        answer = produce(client, "zstd-only", lz4)
        assert answer.error_code == ErrorCode.CORRUPT_MESSAGE
        assert "lz4" in answer.error_message
        bomb = rb.build_batch(
            [rb.Record(b"v")],
            attributes=rb.CODEC_ZSTD,
            compressed_records=codec.compress(rb.CODEC_ZSTD, bytes(MAX_DECOMPRESSED_BYTES + 1)),
        )
        create(client, "gzip-only", compression_type="gzip")  # so the zstd bomb must be decompressed
        answer = produce(client, "gzip-only", bomb)
        assert answer.error_code == ErrorCode.MESSAGE_TOO_LARGE
        assert fetch(client, "zstd-only", 0).high_watermark == 0
        assert fetch(client, "gzip-only", 0).high_watermark == 0


def test_a_broker_wide_compression_type_applies_to_queues_without_their_own(tmp_path: Path) -> None:
    proc = BrokerProcess(tmp_path / "data", log={"compression.type": "lz4"}).start()
    try:
        with WireClient(proc.bootstrap) as client:
            create(client, "inherits")
            create(client, "own", compression_type="producer")
            for queue in ("inherits", "own"):
                assert produce(client, queue, make_batch(5, compression=rb.CODEC_GZIP)).error_code == 0
            assert rb.parse_header(stored_batches(client, "inherits")[0]).codec == rb.CODEC_LZ4
            assert rb.parse_header(stored_batches(client, "own")[0]).codec == rb.CODEC_GZIP
    finally:
        proc.kill()


def test_the_cli_creates_such_queues_and_refuses_an_unknown_codec_in_one_line(broker: BrokerProcess) -> None:
    created = run(
        broker, "queue", "create", "events", "-c", "compression.type=zstd",
        "-c", "message.timestamp.type=LogAppendTime",
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    described = run_json(broker, "queue", "describe", "events")
    assert "zstd" in json.dumps(described)
    assert "LogAppendTime" in json.dumps(described)
    refused = run(broker, "queue", "create", "fast", "-c", "compression.type=brotli")
    assert_one_line_error(refused, "compression.type", "brotli")
