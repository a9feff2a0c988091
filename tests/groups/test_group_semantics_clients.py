"""Consumer-group semantics that real clients rely on, against a real broker process: static membership
(KIP-345) with confluent-kafka, the AdminClient's commits to a live group, the client host in
DescribeGroups, and transactional producers refused at once."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import (
    Consumer,
    ConsumerGroupTopicPartitions,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient  # type: ignore[attr-defined]

from logq.error_codes import ErrorCode
from logq.protocol import messages as m
from tests.broker_process import BrokerProcess
from tests.groups.test_group_broker import FAST_GROUPS, make_queue
from tests.wire_client import WireClient


@pytest.fixture
def gbroker(tmp_path: Path) -> Any:
    proc = BrokerProcess(tmp_path / "g", broker=FAST_GROUPS).start()
    yield proc
    proc.kill()


class StaticMember:
    """A confluent-kafka consumer with a group.instance.id, polled by its own thread; it records every
    rebalance callback it sees."""

    def __init__(self, bootstrap: str, queue: str, instance: str) -> None:
        self.events: list[tuple[str, list[int]]] = []
        self.assigned: list[int] = []
        self._stop = threading.Event()
        self.consumer = Consumer({
            "bootstrap.servers": bootstrap, "group.id": "static", "group.instance.id": instance,
            "session.timeout.ms": 30000, "auto.offset.reset": "earliest", "enable.auto.commit": False,
            "partition.assignment.strategy": "range",
        })  # fmt: skip
        self.consumer.subscribe([queue], on_assign=self._on_assign, on_revoke=self._on_revoke)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _on_assign(self, _consumer: Any, parts: list[TopicPartition]) -> None:
        self.assigned = sorted(p.partition for p in parts)
        self.events.append(("assign", self.assigned))

    def _on_revoke(self, _consumer: Any, parts: list[TopicPartition]) -> None:
        self.events.append(("revoke", sorted(p.partition for p in parts)))

    def _run(self) -> None:
        while not self._stop.is_set():
            self.consumer.poll(0.1)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.consumer.close()  # a static member does not send LeaveGroup


def wait_until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def describe(bootstrap: str, group: str) -> Any:
    with WireClient(bootstrap) as client:
        return client.call(m.DescribeGroupsRequest(groups=[group]), 4).groups[0]


def test_a_static_member_restarting_within_its_session_causes_no_rebalance(gbroker: BrokerProcess) -> None:
    make_queue(gbroker.bootstrap, "sq", 4, 40)
    first = StaticMember(gbroker.bootstrap, "sq", "consumer1")
    second = StaticMember(gbroker.bootstrap, "sq", "consumer2")
    try:
        wait_until(lambda: len(first.assigned) + len(second.assigned) == 4 and first.assigned, 60, "balance")
        wait_until(lambda: describe(gbroker.bootstrap, "static").group_state == "Stable", 30, "Stable")
        settled = list(first.events)
        kept = second.assigned
        members = describe(gbroker.bootstrap, "static").members
        assert sorted(x.group_instance_id for x in members) == ["consumer1", "consumer2"]
        assert {x.client_host for x in members} == {"/127.0.0.1"}  # the peer's address, as Kafka shows it
        second.close()
        second = StaticMember(gbroker.bootstrap, "sq", "consumer2")  # the same instance id, a new process
        wait_until(lambda: second.assigned, 20, "the restarted member's assignment")
        assert second.assigned == kept  # its previous assignment, handed back
        time.sleep(2)  # a rebalance, had one started, would have revoked the first member's partitions
        assert first.events == settled
        after = describe(gbroker.bootstrap, "static")
        assert after.group_state == "Stable"
        assert len(after.members) == 2  # the replaced member id is gone, not waiting to expire
    finally:
        first.close()
        second.close()


def test_the_replaced_member_id_is_fenced_on_the_wire(gbroker: BrokerProcess) -> None:
    make_queue(gbroker.bootstrap, "fq", 1, 1)
    with WireClient(gbroker.bootstrap) as client:

        def join(member_id: str) -> Any:
            request = m.JoinGroupRequest(
                group_id="f", session_timeout_ms=10_000, rebalance_timeout_ms=10_000, member_id=member_id,
                group_instance_id="box-1", protocol_type="consumer",
                protocols=[m.JoinGroupRequestProtocol(name="range", metadata=b"\x00\x00")],
            )  # fmt: skip
            return client.call(request, 5)

        old = join("")
        assert old.error_code == ErrorCode.NONE  # static members skip MEMBER_ID_REQUIRED
        sync = m.SyncGroupRequest(
            group_id="f", generation_id=old.generation_id, member_id=old.member_id,
            group_instance_id="box-1", assignments=[],
        )  # fmt: skip
        assert client.call(sync, 3).error_code == ErrorCode.NONE
        new = join("")  # the same instance restarts
        assert (new.error_code, new.generation_id) == (ErrorCode.NONE, old.generation_id)
        assert new.member_id != old.member_id

        def commit(member_id: str) -> int:
            part = m.OffsetCommitRequestPartition(
                partition_index=0, committed_offset=1, committed_metadata=""
            )
            request = m.OffsetCommitRequest(
                group_id="f", generation_id=new.generation_id, member_id=member_id,
                group_instance_id="box-1", topics=[m.OffsetCommitRequestTopic(name="fq", partitions=[part])],
            )  # fmt: skip
            return int(client.call(request, 7).topics[0].partitions[0].error_code)

        assert commit(old.member_id) == ErrorCode.FENCED_INSTANCE_ID
        assert commit(new.member_id) == ErrorCode.NONE
        beat = m.HeartbeatRequest(
            group_id="f", generation_id=new.generation_id, member_id=old.member_id, group_instance_id="box-1"
        )
        assert client.call(beat, 3).error_code == ErrorCode.FENCED_INSTANCE_ID
        leave = m.LeaveGroupRequest(
            group_id="f", members=[m.LeaveGroupMember(member_id="", group_instance_id="box-1")]
        )
        answer = client.call(leave, 3)
        assert (answer.error_code, [x.error_code for x in answer.members]) == (0, [0])
        assert client.call(m.DescribeGroupsRequest(groups=["f"]), 4).groups[0].group_state == "Empty"


def test_admin_commits_to_a_group_with_members_are_refused_as_kafka_does(gbroker: BrokerProcess) -> None:
    make_queue(gbroker.bootstrap, "aq", 1, 10)
    member = StaticMember(gbroker.bootstrap, "aq", "only")
    admin = AdminClient({"bootstrap.servers": gbroker.bootstrap})
    try:
        wait_until(lambda: member.assigned, 30, "an assignment")
        wanted = ConsumerGroupTopicPartitions("static", [TopicPartition("aq", 0, 5)])
        result = admin.alter_consumer_group_offsets([wanted])["static"].result(30)
        # only members may commit to a group that has some (not ILLEGAL_GENERATION, as logq answered)
        assert result.topic_partitions[0].error.code() == ErrorCode.UNKNOWN_MEMBER_ID
    finally:
        member.close()


def test_a_transactional_producer_fails_at_once(gbroker: BrokerProcess) -> None:
    producer = Producer({"bootstrap.servers": gbroker.bootstrap, "transactional.id": "tx-1"})
    with pytest.raises(KafkaException) as failed:
        producer.init_transactions(30)
    error = failed.value.args[0]
    # not a timeout after 30 s of retries: a fatal error that says why
    assert error.code() == ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    assert error.fatal()
    assert "not supported" in error.str()
