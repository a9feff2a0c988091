"""DeleteGroups (42) and OffsetDelete (47) on a real broker process, with exact requests: the answers
Kafka's classic group coordinator gives, and deletions that a restart does not undo."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from logq.client.cluster import QueuePartition
from logq.client.consumer_protocol import Subscription, encode_subscription
from logq.error_codes import ErrorCode
from logq.protocol import messages as m
from tests.broker.test_metrics import MetricsBroker, value
from tests.broker_process import BrokerProcess, free_port
from tests.wire_client import WireClient

FAST_GROUPS = {"group.initial.rebalance.delay.ms": 0, "offsets.topic.num.partitions": 5}


@pytest.fixture
def gbroker(tmp_path: Path) -> Iterator[BrokerProcess]:
    proc = BrokerProcess(tmp_path / "g", broker=FAST_GROUPS).start()
    yield proc
    proc.kill()


def create_queues(client: WireClient, *names: str, partitions: int = 2) -> None:
    topics = [m.CreatableTopic(name=n, num_partitions=partitions, replication_factor=1) for n in names]
    answer = client.call(m.CreateTopicsRequest(topics=topics, timeout_ms=10_000), 4)
    assert [t.error_code for t in answer.topics] == [ErrorCode.NONE] * len(names)


def commit(client: WireClient, group: str, offsets: dict[QueuePartition, int]) -> None:
    """A simple commit (no member, generation -1), as an operator's tool makes."""
    topics: dict[str, list[m.OffsetCommitRequestPartition]] = {}
    for qp, offset in offsets.items():
        topics.setdefault(qp.queue, []).append(
            m.OffsetCommitRequestPartition(partition_index=qp.partition, committed_offset=offset)
        )
    request = m.OffsetCommitRequest(
        group_id=group,
        generation_id=-1,
        member_id="",
        topics=[m.OffsetCommitRequestTopic(name=q, partitions=ps) for q, ps in topics.items()],
    )
    codes = [p.error_code for t in client.call(request, 7).topics for p in t.partitions]
    assert codes == [ErrorCode.NONE] * len(offsets)


def committed(client: WireClient, group: str) -> dict[QueuePartition, int]:
    answer = client.call(m.OffsetFetchRequest(group_id=group, topics=None), 5)
    return {
        QueuePartition(t.name, p.partition_index): p.committed_offset
        for t in answer.topics
        for p in t.partitions
    }


def join(client: WireClient, group: str, protocol_type: str, metadata: bytes) -> Any:
    """One member joins (JoinGroup v4, so no MEMBER_ID_REQUIRED round) and the group waits for its sync."""
    request = m.JoinGroupRequest(
        group_id=group, session_timeout_ms=30_000, rebalance_timeout_ms=30_000, member_id="",
        protocol_type=protocol_type, protocols=[m.JoinGroupRequestProtocol(name="range", metadata=metadata)],
    )  # fmt: skip
    joined = client.call(request, 3)
    assert joined.error_code == ErrorCode.NONE
    return joined


def delete_groups(client: WireClient, *groups: str) -> list[tuple[str, int]]:
    answer = client.call(m.DeleteGroupsRequest(groups_names=list(groups)), 1)
    return [(r.group_id, r.error_code) for r in answer.results]


def offset_delete(client: WireClient, group: str, wanted: dict[str, list[int]]) -> Any:
    topics = [
        m.OffsetDeleteRequestTopic(
            name=q, partitions=[m.OffsetDeleteRequestPartition(partition_index=p) for p in ps]
        )
        for q, ps in wanted.items()
    ]
    return client.call(m.OffsetDeleteRequest(group_id=group, topics=topics), 0)


def codes_of(answer: Any) -> dict[tuple[str, int], int]:
    return {(t.name, p.partition_index): p.error_code for t in answer.topics for p in t.partitions}


def listed(client: WireClient) -> list[str]:
    return [g.group_id for g in client.call(m.ListGroupsRequest(), 2).groups]


def test_delete_groups_removes_empty_groups_for_good_and_refuses_the_rest(gbroker: BrokerProcess) -> None:
    q0, q1 = QueuePartition("q", 0), QueuePartition("q", 1)
    with WireClient(gbroker.bootstrap) as client:
        create_queues(client, "q")
        commit(client, "idle", {q0: 5, q1: 7})
        commit(client, "busy", {q0: 3})
        join(client, "busy", "consumer", encode_subscription(Subscription(("q",))))
        assert listed(client) == ["busy", "idle"]
        versions = {
            k.api_key: (k.min_version, k.max_version) for k in client.call(m.ApiVersionsRequest(), 2).api_keys
        }
        assert (versions[42], versions[47]) == ((0, 1), (0, 0))

        # a name listed twice is answered once (the response is keyed by group id, as Kafka's)
        assert delete_groups(client, "idle", "busy", "never", "", "idle") == [
            ("idle", ErrorCode.NONE),
            ("busy", ErrorCode.NON_EMPTY_GROUP),
            ("never", ErrorCode.GROUP_ID_NOT_FOUND),
            ("", ErrorCode.INVALID_GROUP_ID),
        ]
        assert committed(client, "idle") == {}
        assert listed(client) == ["busy"]
        described = client.call(m.DescribeGroupsRequest(groups=["idle"]), 4).groups[0]
        assert described.group_state == "Dead"
        assert delete_groups(client, "idle") == [("idle", ErrorCode.GROUP_ID_NOT_FOUND)]
        assert committed(client, "busy") == {q0: 3}  # a refused deletion removes nothing
    gbroker.kill()  # the tombstones were fsynced before the answer: SIGKILL does not bring "idle" back
    gbroker.start()
    with WireClient(gbroker.bootstrap) as client:
        assert committed(client, "idle") == {}
        assert listed(client) == ["busy"]  # its member went with the old process: now Empty
        assert delete_groups(client, "busy") == [("busy", ErrorCode.NONE)]
        assert listed(client) == []
    assert gbroker.stop() == 0
    gbroker.start()
    with WireClient(gbroker.bootstrap) as client:
        assert (committed(client, "idle"), committed(client, "busy"), listed(client)) == ({}, {}, [])


def test_offset_delete_spares_the_queues_live_members_subscribe_to(gbroker: BrokerProcess) -> None:
    with WireClient(gbroker.bootstrap) as client:
        create_queues(client, "new", "old")
        everything = {QueuePartition(q, p): 10 + p for q in ("new", "old") for p in (0, 1)}
        commit(client, "app", everything)
        commit(client, "legacy", {QueuePartition("old", 0): 1})

        # an empty group may delete any of its offsets; unknown queues and partitions answered per partition
        answer = offset_delete(client, "legacy", {"old": [0, 5], "gone": [0]})
        assert answer.error_code == ErrorCode.NONE
        assert codes_of(answer) == {
            ("old", 0): ErrorCode.NONE,
            ("old", 5): ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
            ("gone", 0): ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
        }
        assert committed(client, "legacy") == {}
        assert offset_delete(client, "nobody", {"old": [0]}).error_code == ErrorCode.GROUP_ID_NOT_FOUND

        # a live consumer group subscribed to "new": its offsets stay, those of "old" may go
        join(client, "app", "consumer", encode_subscription(Subscription(("new",))))
        answer = offset_delete(client, "app", {"new": [0, 1], "old": [1]})
        assert answer.error_code == ErrorCode.NONE
        assert codes_of(answer) == {
            ("new", 0): ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC,
            ("new", 1): ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC,
            ("old", 1): ErrorCode.NONE,
        }
        assert committed(client, "app") == {
            qp: o for qp, o in everything.items() if qp != QueuePartition("old", 1)
        }

        # a live group of another protocol: its subscriptions are opaque, so nothing goes
        commit(client, "connect", {QueuePartition("old", 0): 2})
        join(client, "connect", "connect", b"opaque")
        refused = offset_delete(client, "connect", {"old": [0]})
        assert (refused.error_code, refused.topics) == (ErrorCode.NON_EMPTY_GROUP, [])
        assert committed(client, "connect") == {QueuePartition("old", 0): 2}
    gbroker.kill()
    gbroker.start()
    with WireClient(gbroker.bootstrap) as client:
        assert committed(client, "legacy") == {}
        assert QueuePartition("old", 1) not in committed(client, "app")
        assert QueuePartition("new", 1) in committed(client, "app")


def test_deletions_are_counted_in_the_metrics(tmp_path: Path) -> None:
    port = free_port()
    proc = BrokerProcess(
        tmp_path / "m", broker={**FAST_GROUPS, "metrics.listen": f"127.0.0.1:{port}"}
    ).start()
    try:
        with WireClient(proc.bootstrap) as client:
            assert delete_groups(client, "never") == [("never", ErrorCode.GROUP_ID_NOT_FOUND)]
            assert offset_delete(client, "never", {"q": [0]}).error_code == ErrorCode.GROUP_ID_NOT_FOUND
        samples = MetricsBroker(proc, port).scrape()
        assert value(samples, "logq_requests_total", api="DeleteGroups") == 1
        assert value(samples, "logq_requests_total", api="OffsetDelete") == 1
        for api in ("DeleteGroups", "OffsetDelete"):
            assert (
                value(samples, "logq_errors_total", api=api, code=str(int(ErrorCode.GROUP_ID_NOT_FOUND))) == 1
            )
    finally:
        proc.kill()
