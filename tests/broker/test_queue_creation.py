"""Creating queues of many partitions: durable once answered, REQUEST_TIMED_OUT (and the creation going on)
past the request's timeout, partitions without their log yet listed without a leader, startup progress.
Timings are not asserted here (benchmarks/partitions_bench.py)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from logq.broker.config import BrokerConfig
from logq.broker.handlers import Handlers
from logq.broker.metrics import BrokerMetrics
from logq.broker.partition import ReplicaSettings
from logq.broker.replica_manager import ReplicaManager
from logq.clock import SYSTEM_CLOCK
from logq.config import LogConfig
from logq.coordinator import BrokerInfo, EmbeddedCoordinator
from logq.error_codes import ErrorCode
from logq.errors import LogqError
from logq.protocol import RequestHeader
from logq.protocol import messages as m
from logq.segments import LogManager, NewPartition
from logq.testing import make_batch
from tests.broker.test_broker_basic import fetch, produce
from tests.broker_process import BrokerProcess
from tests.wire_client import WireClient

MANY = 500


def create(client: WireClient, name: str, partitions: int, timeout_ms: int) -> m.CreatableTopicResult:
    topic = m.CreatableTopic(name=name, num_partitions=partitions, replication_factor=1)
    result: m.CreatableTopicResult = client.call(
        m.CreateTopicsRequest(topics=[topic], timeout_ms=timeout_ms), 4
    ).topics[0]
    return result


def metadata(client: WireClient, name: str) -> m.MetadataResponseTopic:
    topic: m.MetadataResponseTopic = client.call(
        m.MetadataRequest(topics=[m.MetadataRequestTopic(name=name)], allow_auto_topic_creation=False), 8
    ).topics[0]
    return topic


def wait_until_led(client: WireClient, name: str, timeout: float = 60) -> m.MetadataResponseTopic:
    deadline = time.monotonic() + timeout
    while True:
        topic = metadata(client, name)
        if topic.error_code == 0 and topic.partitions and all(p.leader_id >= 0 for p in topic.partitions):
            return topic
        assert time.monotonic() < deadline, f"{name} still incomplete: {topic}"
        time.sleep(0.1)


def produce_and_read_back(client: WireClient, name: str, partition: int) -> None:
    answer = produce(client, name, make_batch(2, tag=partition), partition=partition)
    assert answer.error_code == ErrorCode.NONE, answer
    assert fetch(client, name, answer.base_offset, partition=partition).records


def test_a_large_queue_survives_sigkill_right_after_its_creation_is_answered(broker: BrokerProcess) -> None:
    with WireClient(broker.bootstrap, timeout=60) as client:
        assert create(client, "big", MANY, timeout_ms=60_000).error_code == ErrorCode.NONE
    broker.kill()
    broker.start()
    # every checkpoint was durable with its partition: no index had to be rebuilt after the kill
    assert "rebuilding its index" not in broker.log_text
    with WireClient(broker.bootstrap) as client:
        topic = metadata(client, "big")
        assert topic.error_code == ErrorCode.NONE
        assert [p.partition_index for p in topic.partitions] == list(range(MANY))
        assert all(p.leader_id == 0 and p.error_code == 0 for p in topic.partitions)
        for partition in (0, MANY // 2, MANY - 1):
            produce_and_read_back(client, "big", partition)


def test_a_creation_outlasting_its_timeout_answers_request_timed_out_and_completes(
    broker: BrokerProcess,
) -> None:
    with WireClient(broker.bootstrap, timeout=60) as client:
        result = create(client, "slow", MANY, timeout_ms=1)  # no broker creates 500 logs within 1 ms
        assert result.error_code == ErrorCode.REQUEST_TIMED_OUT
        assert "still being created" in str(result.error_message)
        assert create(client, "slow", MANY, timeout_ms=1).error_code == ErrorCode.TOPIC_ALREADY_EXISTS
        topic = wait_until_led(client, "slow")
        assert len(topic.partitions) == MANY
        produce_and_read_back(client, "slow", MANY - 1)
    deadline = time.monotonic() + 10
    while "created queue slow (500 partitions) after answering REQUEST_TIMED_OUT" not in broker.log_text:
        assert time.monotonic() < deadline, broker.log_text
        time.sleep(0.05)


def test_deleting_a_queue_still_being_created_leaves_nothing_behind(broker: BrokerProcess) -> None:
    with WireClient(broker.bootstrap, timeout=60) as client:
        assert create(client, "doomed", MANY, timeout_ms=1).error_code == ErrorCode.REQUEST_TIMED_OUT
        deleted = client.call(m.DeleteTopicsRequest(topic_names=["doomed"], timeout_ms=60_000), 3)
        assert deleted.responses[0].error_code == ErrorCode.NONE
        assert metadata(client, "doomed").error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    assert not list(broker.data_dir.glob("doomed-*"))
    broker.restart()
    with WireClient(broker.bootstrap) as client:
        assert metadata(client, "doomed").error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    assert "not assigned here" not in broker.log_text


def test_startup_logs_the_partitions_it_loads(broker: BrokerProcess) -> None:
    with WireClient(broker.bootstrap, timeout=60) as client:
        assert create(client, "wide", 300, timeout_ms=60_000).error_code == ErrorCode.NONE
    broker.restart()
    text = broker.log_text
    loading = text.index("loading 350 partitions from")  # and the 50 of __consumer_offsets
    loaded = text.index("loaded 350 partitions from")
    assert loading < loaded < text.index("listening on")


def test_partitions_whose_log_is_not_created_yet_have_no_leader(tmp_path: Path) -> None:
    """What a client sees while a creation goes on: Metadata lists those partitions with leader -1
    (LEADER_NOT_AVAILABLE) and Produce answers NOT_LEADER_OR_FOLLOWER; both retriable."""

    async def scenario() -> None:
        data_dir = tmp_path / "data"
        logs = LogManager(data_dir)
        coordinator = EmbeddedCoordinator(data_dir, BrokerInfo(0, "127.0.0.1", 9092))
        await coordinator.start()
        try:
            meta = await coordinator.create_queue("half", 4, 1, {})
            logs.create_many([NewPartition("half", p, LogConfig(), meta.queue_id) for p in (0, 2)])
            settings = ReplicaSettings(
                broker_id=0, clock=SYSTEM_CLOCK, fsync_before_ack=True, replica_lag_time_max_ms=30_000
            )
            replicas = ReplicaManager(logs, LogConfig(), settings)
            replicas.update_leadership(coordinator.queues())
            await replicas.host({})  # the creation is still under way: no log of "half" is opened here
            for index in (0, 2):  # ...but two partitions' logs exist already
                plog = logs.get("half", index)
                partition = replicas.partition("half", index)
                assert plog is not None
                assert partition is not None
                partition.host(plog)
            handlers = Handlers(BrokerConfig(data_dir=data_dir), coordinator, replicas, BrokerMetrics())
            request = m.MetadataRequest(topics=[m.MetadataRequestTopic(name="half")])
            answer = await handlers.metadata(RequestHeader(3, 8, 1, "test"), request)
            listed = {p.partition_index: (p.leader_id, p.error_code) for p in answer.topics[0].partitions}
            assert listed == {
                0: (0, ErrorCode.NONE),
                1: (-1, ErrorCode.LEADER_NOT_AVAILABLE),
                2: (0, ErrorCode.NONE),
                3: (-1, ErrorCode.LEADER_NOT_AVAILABLE),
            }
            for index, code in (
                (1, ErrorCode.NOT_LEADER_OR_FOLLOWER),
                (4, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION),
            ):
                with pytest.raises(LogqError) as refused:
                    replicas.leader("half", index)
                assert refused.value.code == code
        finally:
            logs.close()

    asyncio.run(scenario())
