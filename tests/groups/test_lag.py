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


def gauge(text: str, name: str, group: str, queue: str) -> float:
    prefix = f'{name}{{group="{group}",partition="0",queue="{queue}"}} '
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
