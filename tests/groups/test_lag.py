"""Lag computed by the broker, exported as Prometheus gauges, with a stalled owner made visible."""

from __future__ import annotations

import struct
import time
import urllib.request
from pathlib import Path

from logq.broker.lag import decode_consumer_assignment
from logq.protocol import messages as m
from tests.broker_process import BrokerProcess, free_port
from tests.groups.test_group_broker import FAST_GROUPS, make_queue
from tests.wire_client import WireClient


def assignment(queue: str, partitions: list[int]) -> bytes:
    """A ConsumerProtocolAssignment v0, as a consumer group leader encodes it."""
    name = queue.encode()
    parts = struct.pack(f">i{len(partitions)}i", len(partitions), *partitions)
    return struct.pack(">hih", 0, 1, len(name)) + name + parts + struct.pack(">i", -1)


def gauge(text: str, name: str, group: str, queue: str, partition: int = 0) -> float:
    prefix = f'{name}{{group="{group}",partition="{partition}",queue="{queue}"}} '
    line = next(x for x in text.splitlines() if x.startswith(prefix))
    return float(line.split()[-1])


def test_the_assignment_decoder_reads_what_leaders_send() -> None:
    assert decode_consumer_assignment(assignment("orders", [0, 3])) == [("orders", [0, 3])]
    assert decode_consumer_assignment(b"\x00") == []


def test_lag_and_a_stalled_owner_are_exported(tmp_path: Path) -> None:
    port = free_port()
    settings = FAST_GROUPS | {"metrics.listen": f"127.0.0.1:{port}", "group.stalled.owner.ms": 1000}
    proc = BrokerProcess(tmp_path / "lag", broker=settings).start()
    try:
        make_queue(proc.bootstrap, "lq", 1, 100)
        with WireClient(proc.bootstrap) as client:
            protocols = [m.JoinGroupRequestProtocol(name="range", metadata=b"")]
            join = m.JoinGroupRequest(
                group_id="g", session_timeout_ms=30_000, rebalance_timeout_ms=10_000, member_id="",
                protocol_type="consumer", protocols=protocols,
            )  # fmt: skip
            member_id = client.call(join, 5).member_id
            join.member_id = member_id
            generation = client.call(join, 5).generation_id
            mine = [m.SyncGroupRequestAssignment(member_id=member_id, assignment=assignment("lq", [0]))]
            sync = m.SyncGroupRequest(
                group_id="g", generation_id=generation, member_id=member_id, assignments=mine
            )
            assert client.call(sync, 3).error_code == 0
            part = m.OffsetCommitRequestPartition(
                partition_index=0, committed_offset=40, committed_metadata=""
            )
            topics = [m.OffsetCommitRequestTopic(name="lq", partitions=[part])]
            commit = m.OffsetCommitRequest(
                group_id="g", generation_id=generation, member_id=member_id, topics=topics
            )
            assert client.call(commit, 7).topics[0].partitions[0].error_code == 0
            # a simple commit past the end is clamped to the high watermark: no lag, not negative
            part_far = m.OffsetCommitRequestPartition(
                partition_index=0, committed_offset=500, committed_metadata=""
            )
            far = m.OffsetCommitRequest(
                group_id="far", topics=[m.OffsetCommitRequestTopic(name="lq", partitions=[part_far])]
            )
            assert client.call(far, 7).topics[0].partitions[0].error_code == 0

            def scrape() -> str:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
                    return str(response.read().decode())

            text = scrape()
            assert gauge(text, "logq_group_committed_offset", "g", "lq") == 40
            assert gauge(text, "logq_group_lag", "g", "lq") == 60
            assert gauge(text, "logq_group_oldest_unconsumed_age_seconds", "g", "lq") >= 0
            assert gauge(text, "logq_group_partition_stalled", "g", "lq") == 0
            assert gauge(text, "logq_group_lag", "far", "lq") == 0
            time.sleep(1.5)  # the owner neither fetches nor commits
            heartbeat = m.HeartbeatRequest(group_id="g", generation_id=generation, member_id=member_id)
            assert client.call(heartbeat, 3).error_code == 0  # alive, but not consuming
            text = scrape()
            assert gauge(text, "logq_group_partition_stalled", "g", "lq") == 1
            assert gauge(text, "logq_group_oldest_unconsumed_age_seconds", "g", "lq") >= 1.0
    finally:
        proc.kill()


def test_lag_covers_partitions_the_group_never_committed_to(tmp_path: Path) -> None:
    """A group consumed a 3-partition queue whose messages all sat in partition 0, then messages land in
    partitions 1 and 2: its lag is theirs, in the CLI and in the metrics, not 0."""
    import json

    from click.testing import CliRunner
    from confluent_kafka import Consumer, Producer

    from logq_cli.main import main

    port = free_port()
    proc = BrokerProcess(tmp_path / "lag3", broker=FAST_GROUPS | {"metrics.listen": f"127.0.0.1:{port}"})
    proc.start()
    try:
        make_queue(proc.bootstrap, "three", 3, 0)
        producer = Producer({"bootstrap.servers": proc.bootstrap})
        for i in range(30):
            producer.produce("three", b"%d" % i, partition=0)
        assert producer.flush(30) == 0
        consumer = Consumer({
            "bootstrap.servers": proc.bootstrap, "group.id": "lagg", "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        })  # fmt: skip
        consumer.subscribe(["three"])
        seen, deadline = 0, time.monotonic() + 30
        while seen < 30 and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            seen += msg is not None and not msg.error()
        assert seen == 30
        consumer.commit(asynchronous=False)  # librdkafka commits partition 0 only: 1 and 2 had nothing
        consumer.close()
        for partition, count in ((1, 5), (2, 7)):
            for i in range(count):
                producer.produce("three", b"late-%d" % i, partition=partition)
        assert producer.flush(30) == 0

        describe = ["-b", proc.bootstrap, "group", "describe", "lagg"]
        result = CliRunner().invoke(main, [*describe, "--format", "json"])
        assert result.exit_code == 0, result.output
        described = json.loads(result.output)
        rows = {row["partition"]: row for row in described["offsets"]}
        assert sorted(rows) == [0, 1, 2]
        assert (rows[1]["committed"], rows[1]["lag"], rows[1]["lag_from"]) == (None, 5, "log-start")
        assert described["total_lag"] == 12
        table = CliRunner().invoke(main, describe)
        assert "TOTAL LAG 12" in table.output
        assert "no commit there" in table.output

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            text = response.read().decode()
        lags = {p: gauge(text, "logq_group_lag", "lagg", "three", p) for p in (0, 1, 2)}
        assert lags == {0: 0.0, 1: 5.0, 2: 7.0}
    finally:
        proc.kill()
