"""The standalone broker over the wire with exact requests (logq.protocol as the client)."""

from __future__ import annotations

import threading
import time
from typing import Any

from logq.error_codes import ErrorCode
from logq.protocol import messages as m
from logq.testing import make_batch
from tests.broker_process import BrokerProcess
from tests.wire_client import WireClient


def create(client: WireClient, name: str, partitions: int = 1, **configs: str) -> int:
    topic = m.CreatableTopic(
        name=name,
        num_partitions=partitions,
        replication_factor=1,
        configs=[m.CreatableTopicConfig(name=k.replace("_", "."), value=v) for k, v in configs.items()],
    )
    response = client.call(m.CreateTopicsRequest(topics=[topic], timeout_ms=5000), 4)
    return int(response.topics[0].error_code)


def produce(client: WireClient, queue: str, batch: bytes, *, partition: int = 0, acks: int = -1) -> Any:
    data = m.PartitionProduceData(index=partition, records=batch)
    request = m.ProduceRequest(
        acks=acks, timeout_ms=5000, topic_data=[m.TopicProduceData(name=queue, partition_data=[data])]
    )
    response = client.call(request, 8)
    return None if response is None else response.responses[0].partition_responses[0]


def fetch(client: WireClient, queue: str, offset: int, *, max_wait_ms: int = 0, partition: int = 0) -> Any:
    wanted = m.FetchPartition(partition=partition, fetch_offset=offset, partition_max_bytes=1 << 20)
    request = m.FetchRequest(
        max_wait_ms=max_wait_ms,
        min_bytes=1,
        max_bytes=1 << 20,
        topics=[m.FetchTopic(topic=queue, partitions=[wanted])],
    )
    return client.call(request, 11).responses[0].partitions[0]


def test_api_versions_advertise_exactly_what_is_served(broker: BrokerProcess) -> None:
    # 17 and 36 (SaslHandshake, SaslAuthenticate) on every listener, as Kafka does; 50/51 (users);
    # 33/44 (settings after creation); 48/49 (client quotas).
    with WireClient(broker.bootstrap) as client:
        response = client.call(m.ApiVersionsRequest(), 2)
    assert response.error_code == 0
    assert {(k.api_key, k.min_version, k.max_version) for k in response.api_keys} == {
        (0, 0, 8), (1, 4, 11), (2, 1, 7), (3, 0, 8), (8, 2, 7), (9, 1, 5), (10, 0, 2), (11, 0, 5), (12, 0, 3),
        (13, 0, 3), (14, 0, 3), (15, 0, 4), (16, 0, 2), (17, 0, 1), (18, 0, 2), (19, 0, 4), (20, 0, 3),
        (21, 0, 1), (22, 0, 1), (23, 0, 3), (29, 0, 1), (30, 0, 1), (31, 0, 1), (32, 0, 3), (33, 0, 1),
        (35, 0, 1), (36, 0, 1), (37, 0, 1), (42, 0, 1), (44, 0, 1), (47, 0, 0), (48, 0, 0), (49, 0, 0),
        (50, 0, 0), (51, 0, 0),
    }  # fmt: skip


def test_produce_then_fetch_returns_the_same_bytes(broker: BrokerProcess) -> None:
    with WireClient(broker.bootstrap) as client:
        assert create(client, "orders", 2) == 0
        batch = make_batch(5, value_size=50)
        first = produce(client, "orders", batch)
        second = produce(client, "orders", batch, acks=1)
        assert (first.error_code, first.base_offset, second.base_offset) == (0, 0, 5)
        got = fetch(client, "orders", 0)
        assert got.error_code == 0
        assert got.high_watermark == 10
        records = bytes(got.records)
        assert records[16 : len(batch)] == batch[16:]
        assert fetch(client, "orders", 11).error_code == ErrorCode.OFFSET_OUT_OF_RANGE


def test_acks_zero_gets_no_response_and_is_stored(broker: BrokerProcess) -> None:
    with WireClient(broker.bootstrap) as client:
        create(client, "quiet")
        assert produce(client, "quiet", make_batch(2), acks=0) is None
        # the next request's answer is the next thing on the wire: nothing was sent for acks=0
        assert fetch(client, "quiet", 0).high_watermark == 2


def test_fetch_long_poll_wakes_on_append(broker: BrokerProcess) -> None:
    with WireClient(broker.bootstrap) as client, WireClient(broker.bootstrap) as producer:
        create(client, "poll")
        result: dict[str, Any] = {}

        def waiter() -> None:
            started = time.monotonic()
            result["response"] = fetch(client, "poll", 0, max_wait_ms=20_000)
            result["seconds"] = time.monotonic() - started

        thread = threading.Thread(target=waiter)
        thread.start()
        time.sleep(0.3)
        produce(producer, "poll", make_batch(1))
        thread.join(timeout=30)
        assert result["response"].records, "the fetch returned without the appended batch"
        assert result["seconds"] < 15, "the fetch waited for its timeout instead of waking on the append"


def test_unknown_queue_and_partition(broker: BrokerProcess) -> None:
    with WireClient(broker.bootstrap) as client:
        create(client, "known")
        assert produce(client, "missing", make_batch(1)).error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        assert (
            produce(client, "known", make_batch(1), partition=5).error_code
            == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        )
        assert (
            produce(client, "known", make_batch(1), partition=-1).error_code
            == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        )
        assert fetch(client, "missing", 0).error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION


def test_create_topics_validation(broker: BrokerProcess) -> None:
    with WireClient(broker.bootstrap) as client:
        assert create(client, "a" * 250) == ErrorCode.INVALID_TOPIC_EXCEPTION
        assert create(client, "bad/name") == ErrorCode.INVALID_TOPIC_EXCEPTION
        assert create(client, "..") == ErrorCode.INVALID_TOPIC_EXCEPTION
        assert create(client, "zero", 0) == ErrorCode.INVALID_PARTITIONS
        assert create(client, "conf", 1, retention_ms="1000", unknown_setting="1") == ErrorCode.INVALID_CONFIG
        assert create(client, "conf", 1, retention_ms="soon") == ErrorCode.INVALID_CONFIG
        assert create(client, "ok.queue", 3, retention_ms="1000") == 0
        assert create(client, "ok.queue") == ErrorCode.TOPIC_ALREADY_EXISTS
        assert create(client, "ok_queue") == ErrorCode.TOPIC_ALREADY_EXISTS  # '.' and '_' collide
        rf = m.CreatableTopic(name="rf", num_partitions=1, replication_factor=3)
        response = client.call(m.CreateTopicsRequest(topics=[rf], timeout_ms=1000), 4)
        assert response.topics[0].error_code == ErrorCode.INVALID_REPLICATION_FACTOR
        assert "1 live broker" in response.topics[0].error_message
        dry = m.CreatableTopic(name="dry", num_partitions=1, replication_factor=1)
        assert (
            client.call(m.CreateTopicsRequest(topics=[dry], validate_only=True), 4).topics[0].error_code == 0
        )
        metadata = client.call(m.MetadataRequest(topics=None), 8)
        queues = [t for t in metadata.topics if not t.is_internal]
        assert [t.name for t in queues] == ["ok.queue"]
        assert len(queues[0].partitions) == 3


def test_delete_removes_the_queue_and_its_data(broker: BrokerProcess) -> None:
    with WireClient(broker.bootstrap) as client:
        create(client, "doomed", 2)
        produce(client, "doomed", make_batch(3))
        response = client.call(m.DeleteTopicsRequest(topic_names=["doomed", "never"], timeout_ms=5000), 3)
        assert [(r.name, r.error_code) for r in response.responses] == [
            ("doomed", 0), ("never", ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
        ]  # fmt: skip
        # the broker removes the data after the metadata; the directories go within moments
        deadline = time.monotonic() + 10
        while (
            left := sorted(p.name for p in broker.data_dir.glob("doomed-*"))
        ) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not left
        assert create(client, "doomed") == 0
        assert fetch(client, "doomed", 0).high_watermark == 0


def test_delete_is_refused_unless_enabled(tmp_path: Any) -> None:
    proc = BrokerProcess(tmp_path / "d", broker={"delete.queue.enable": False}).start()
    try:
        with WireClient(proc.bootstrap) as client:
            create(client, "kept")
            response = client.call(m.DeleteTopicsRequest(topic_names=["kept"], timeout_ms=5000), 3)
            assert response.responses[0].error_code == ErrorCode.TOPIC_DELETION_DISABLED
            names = [t.name for t in client.call(m.MetadataRequest(topics=None), 8).topics]
            assert "kept" in names
    finally:
        proc.kill()


def test_a_standalone_broker_never_deletes_logs_its_metadata_lost(broker: BrokerProcess) -> None:
    """With coordinator.json gone (an operator's mistake), the queues are unknown, but their logs stay on
    disk: a standalone broker has no cluster id to tell lost metadata from a deleted queue."""
    with WireClient(broker.bootstrap) as client:
        assert create(client, "precious") == 0
        assert produce(client, "precious", make_batch(3)).error_code == 0
    assert broker.stop() == 0
    (broker.data_dir / "coordinator.json").unlink()
    broker.start()
    assert (broker.data_dir / "precious-0" / "queue.id").exists()
    assert list((broker.data_dir / "precious-0").glob("*.log"))


def test_idempotent_producer_ids_and_duplicates_survive_a_restart(broker: BrokerProcess) -> None:
    with WireClient(broker.bootstrap) as client:
        create(client, "idem")
        init = client.call(m.InitProducerIdRequest(transactional_id=None, transaction_timeout_ms=1000), 1)
        pid = init.producer_id
        assert init.error_code == 0
        assert pid >= 0
        batch = make_batch(3, producer_id=pid, producer_epoch=0, sequence=0)
        assert produce(client, "idem", batch).base_offset == 0
    broker.kill()
    broker.start()
    with WireClient(broker.bootstrap) as client:
        again = produce(client, "idem", batch)
        assert (again.error_code, again.base_offset) == (
            0,
            0,
        )  # a duplicate: original offset, not stored twice
        gap = produce(client, "idem", make_batch(1, producer_id=pid, producer_epoch=0, sequence=7))
        assert gap.error_code == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
        assert fetch(client, "idem", 0).high_watermark == 3
        newer = client.call(m.InitProducerIdRequest(transactional_id=None, transaction_timeout_ms=1000), 1)
        assert newer.producer_id > pid


def test_list_offsets(broker: BrokerProcess) -> None:
    with WireClient(broker.bootstrap) as client:
        create(client, "times")
        for i in range(5):
            produce(client, "times", make_batch(2, timestamp=10_000 + 1000 * i))

        def lookup(ts: int) -> tuple[int, int]:
            wanted = m.ListOffsetsPartition(partition_index=0, timestamp=ts)
            request = m.ListOffsetsRequest(topics=[m.ListOffsetsTopic(name="times", partitions=[wanted])])
            p = client.call(request, 5).topics[0].partitions[0]
            return p.offset, p.timestamp

        assert lookup(-2)[0] == 0
        assert lookup(-1)[0] == 10
        assert lookup(12_000) == (4, 12_000)
        assert lookup(12_001) == (5, 12_001)
        assert lookup(99_000) == (-1, -1)


def test_sigterm_is_a_clean_shutdown(broker: BrokerProcess) -> None:
    with WireClient(broker.bootstrap) as client:
        create(client, "clean")
        produce(client, "clean", make_batch(2), acks=1)
    assert broker.stop() == 0
    assert "stopped cleanly" in broker.log_text
    broker.start()
    assert "(clean shutdown)" in broker.log_text


def test_deleting_a_queue_ends_a_fetch_waiting_on_it(broker: BrokerProcess) -> None:
    with WireClient(broker.bootstrap) as client, WireClient(broker.bootstrap) as admin:
        create(client, "fleeting")
        produce(client, "fleeting", make_batch(1))
        result: dict[str, Any] = {}

        def waiter() -> None:
            result["response"] = fetch(client, "fleeting", 1, max_wait_ms=20_000)

        thread = threading.Thread(target=waiter)
        thread.start()
        time.sleep(0.3)
        admin.call(m.DeleteTopicsRequest(topic_names=["fleeting"], timeout_ms=5000), 3)
        thread.join(timeout=15)
        assert not thread.is_alive(), "the waiting fetch was not woken by the deletion"
        assert result["response"].error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    assert "Traceback" not in broker.log_text


def test_per_queue_settings_apply_and_survive_a_restart(broker: BrokerProcess) -> None:
    with WireClient(broker.bootstrap) as client:
        assert create(client, "small", 1, max_message_bytes="2000") == 0
        assert create(client, "large", 1) == 0
        big = make_batch(5, value_size=1000)
        assert produce(client, "small", big).error_code == ErrorCode.MESSAGE_TOO_LARGE
        assert produce(client, "large", big).error_code == 0
    broker.kill()
    broker.start()
    with WireClient(broker.bootstrap) as client:
        assert produce(client, "small", big).error_code == ErrorCode.MESSAGE_TOO_LARGE
        assert produce(client, "small", make_batch(1)).error_code == 0


def test_the_retention_job_runs_inside_the_broker(tmp_path: Any) -> None:
    proc = BrokerProcess(tmp_path / "r", log={"retention.check.interval.ms": 200}).start()
    try:
        with WireClient(proc.bootstrap) as client:
            assert create(client, "aging", 1, retention_ms="500", segment_bytes="2000") == 0
            for _ in range(10):
                assert produce(client, "aging", make_batch(2, value_size=400)).error_code == 0

            def earliest() -> int:
                wanted = m.ListOffsetsPartition(partition_index=0, timestamp=-2)
                request = m.ListOffsetsRequest(topics=[m.ListOffsetsTopic(name="aging", partitions=[wanted])])
                return int(client.call(request, 5).topics[0].partitions[0].offset)

            deadline = time.monotonic() + 15
            while earliest() == 0 and time.monotonic() < deadline:
                time.sleep(0.2)
            assert earliest() > 0, "no aged segment was deleted"
            assert fetch(client, "aging", 0).error_code == ErrorCode.OFFSET_OUT_OF_RANGE
        assert "retention.ms" in proc.log_text  # one line per deleted segment, with the reason
    finally:
        proc.kill()


def test_acks_all_without_fsync_before_ack(tmp_path: Any) -> None:
    proc = BrokerProcess(tmp_path / "nf", log={"log.fsync.before.ack": False}).start()
    try:
        with WireClient(proc.bootstrap) as client:
            create(client, "fast")
            assert produce(client, "fast", make_batch(3), acks=-1).base_offset == 0
            assert fetch(client, "fast", 0).high_watermark == 3
    finally:
        proc.kill()
