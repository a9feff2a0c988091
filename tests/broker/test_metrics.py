"""The Prometheus endpoint of a real broker process ("metrics.listen"): requests and latency per API,
usage per queue and client id, per-partition log gauges, connections, error codes."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from logq.error_codes import ErrorCode
from logq.protocol import messages as m
from logq.testing import make_batch
from tests.broker import bad_bytes as bad
from tests.broker_process import BrokerProcess, free_port
from tests.wire_client import WireClient

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


class MetricsBroker:
    def __init__(self, proc: BrokerProcess, metrics_port: int) -> None:
        self.proc = proc
        self.url = f"http://127.0.0.1:{metrics_port}/metrics"

    def scrape(self) -> Samples:
        with urllib.request.urlopen(self.url, timeout=5) as reply:
            assert reply.status == 200
            text = reply.read().decode()
        return {
            (s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    def wait_for(self, name: str, expected: float, timeout: float = 5.0, **labels: str) -> None:
        """Gauges that move when a connection task ends lag the client's close a little."""
        deadline = time.monotonic() + timeout
        while value(self.scrape(), name, **labels) != expected and time.monotonic() < deadline:
            time.sleep(0.05)
        assert value(self.scrape(), name, **labels) == expected


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MetricsBroker]:
    port = free_port()
    proc = BrokerProcess(tmp_path / "data", broker={"metrics.listen": f"127.0.0.1:{port}"}).start()
    yield MetricsBroker(proc, port)
    proc.kill()


def value(samples: Samples, name: str, **labels: str) -> float:
    key = (name, frozenset(labels.items()))
    assert key in samples, f"no sample {name}{labels}"
    return samples[key]


def call_as(client: WireClient, client_id: str, body: Any, version: int) -> Any:
    correlation = client.send(body, version, client_id=client_id)
    return client.receive(body, version, correlation)


def produce_as(client: WireClient, client_id: str, queue: str, batch: bytes, partition: int = 0) -> int:
    data = m.PartitionProduceData(index=partition, records=batch)
    request = m.ProduceRequest(
        acks=1, timeout_ms=5000, topic_data=[m.TopicProduceData(name=queue, partition_data=[data])]
    )
    return int(call_as(client, client_id, request, 8).responses[0].partition_responses[0].error_code)


def fetch_as(client: WireClient, client_id: str, queue: str, partition: int = 0) -> Any:
    wanted = m.FetchPartition(partition=partition, fetch_offset=0, partition_max_bytes=1 << 20)
    request = m.FetchRequest(
        max_wait_ms=0, min_bytes=1, max_bytes=1 << 20, topics=[m.FetchTopic(topic=queue, partitions=[wanted])]
    )
    return call_as(client, client_id, request, 11).responses[0].partitions[0]


def test_usage_latency_and_log_metrics(broker: MetricsBroker) -> None:
    p0 = [make_batch(3, value_size=100, tag=i) for i in range(3)]
    p1 = make_batch(5, value_size=40)
    other = make_batch(2, value_size=10)
    with WireClient(broker.proc.bootstrap) as client:
        topic = m.CreatableTopic(name="mq", num_partitions=2, replication_factor=1)
        assert call_as(client, "admin", m.CreateTopicsRequest(topics=[topic]), 4).topics[0].error_code == 0
        for batch in p0:
            assert produce_as(client, "orders-app", "mq", batch) == 0
        assert produce_as(client, "orders-app", "mq", p1, partition=1) == 0
        assert produce_as(client, "other-app", "mq", other) == 0
        fetched = fetch_as(client, "reader-app", "mq")
        assert fetched.error_code == 0
        assert call_as(client, "admin", m.ApiVersionsRequest(), 2).error_code == 0
    samples = broker.scrape()

    # requests and latency, per API
    assert value(samples, "logq_requests_total", api="Produce") == 5
    assert value(samples, "logq_requests_total", api="Fetch") == 1
    assert value(samples, "logq_requests_total", api="CreateTopics") == 1
    assert value(samples, "logq_requests_total", api="ApiVersions") == 1
    for api, count in [("Produce", 5), ("Fetch", 1), ("CreateTopics", 1)]:
        assert value(samples, "logq_request_latency_seconds_count", api=api) == count
        assert value(samples, "logq_request_latency_seconds_bucket", api=api, le="+Inf") == count
        assert 0 < value(samples, "logq_request_latency_seconds_sum", api=api) < 10 * count
        buckets = sorted(
            (float(dict(labels)["le"]), v)
            for (name, labels), v in samples.items()
            if name == "logq_request_latency_seconds_bucket" and dict(labels)["api"] == api
        )
        assert len(buckets) > 5
        assert [v for _, v in buckets] == sorted(v for _, v in buckets)  # cumulative

    # usage per queue and client id
    assert value(samples, "logq_bytes_in_total", queue="mq", client_id="orders-app") == sum(
        map(len, [*p0, p1])
    )
    assert value(samples, "logq_records_in_total", queue="mq", client_id="orders-app") == 14
    assert value(samples, "logq_bytes_in_total", queue="mq", client_id="other-app") == len(other)
    assert value(samples, "logq_records_in_total", queue="mq", client_id="other-app") == 2
    assert value(samples, "logq_bytes_out_total", queue="mq", client_id="reader-app") == len(
        bytes(fetched.records)
    )
    assert len(bytes(fetched.records)) == sum(map(len, [*p0, other]))

    # per-partition log gauges (computed at scrape time)
    assert value(samples, "logq_log_end_offset", partition="mq-0") == 11
    assert value(samples, "logq_log_end_offset", partition="mq-1") == 5
    assert value(samples, "logq_log_start_offset", partition="mq-0") == 0
    assert value(samples, "logq_log_size_bytes", partition="mq-0") == sum(map(len, [*p0, other]))
    assert value(samples, "logq_log_size_bytes", partition="mq-1") == len(p1)


def test_connections_gauge_and_errors_by_code(broker: MetricsBroker) -> None:
    broker.wait_for("logq_connections", 0)
    clients = [WireClient(broker.proc.bootstrap) for _ in range(3)]
    try:
        for client in clients:  # a round trip makes sure the broker has accepted the connection
            assert client.call(m.ApiVersionsRequest(), 2).error_code == 0
        broker.wait_for("logq_connections", 3)
        # an error code: produce to a queue that does not exist (auto-create is off)
        assert produce_as(clients[0], "lost-app", "nowhere", make_batch(1)) == 3
        assert produce_as(clients[0], "lost-app", "nowhere", make_batch(1)) == 3
        assert produce_as(clients[1], "lost-app", "nowhere", bad.with_bad_crc(make_batch(1))) == 3
    finally:
        for client in clients:
            client.close()
    broker.wait_for("logq_connections", 0)
    samples = broker.scrape()
    assert (
        value(
            samples, "logq_errors_total", api="Produce", code=str(int(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION))
        )
        == 3
    )
    assert (
        "logq_bytes_in_total",
        frozenset({("queue", "nowhere"), ("client_id", "lost-app")}),
    ) not in samples

    # connections closed for bad input, by reason
    with WireClient(broker.proc.bootstrap) as client:
        client.send_raw(b"GET / HTTP/1.1\r\n\r\n")
        assert client.is_closed_by_peer()
    with WireClient(broker.proc.bootstrap) as client:
        client.send_raw(bad.raw_request(99, 0, 1))
        assert client.is_closed_by_peer()
    broker.wait_for("logq_connections", 0)
    samples = broker.scrape()
    assert value(samples, "logq_connections_closed_for_errors_total", reason="frame-size") == 1
    assert value(samples, "logq_connections_closed_for_errors_total", reason="bad-request") == 1


def test_fetch_and_list_offsets_errors_are_counted(broker: MetricsBroker) -> None:
    with WireClient(broker.proc.bootstrap) as client:
        assert fetch_as(client, "lost-app", "nowhere").error_code == 3
        wanted = m.ListOffsetsPartition(partition_index=0, timestamp=-1)
        request = m.ListOffsetsRequest(topics=[m.ListOffsetsTopic(name="nowhere", partitions=[wanted])])
        assert client.call(request, 5).topics[0].partitions[0].error_code == 3
    samples = broker.scrape()
    assert value(samples, "logq_errors_total", api="Fetch", code="3") == 1
    assert value(samples, "logq_errors_total", api="ListOffsets", code="3") == 1


def test_event_loop_stalls_and_request_queueing_are_exported(broker: MetricsBroker) -> None:
    """A broker stopped for 0.3 s (as by a long handler or a C call that keeps the GIL) shows the stall in
    the longest-stall gauge and the lag histogram; every request's wait before handling is observed."""
    with WireClient(broker.proc.bootstrap) as client:
        for _ in range(5):
            client.call(m.MetadataRequest(topics=None), 1)
    time.sleep(0.1)  # a few ticks
    before = broker.scrape()
    assert value(before, "logq_request_queue_seconds_count") >= 5
    assert value(before, "logq_event_loop_lag_seconds_count") > 0  # the loop ticks every 10 ms
    broker.proc.pause()
    time.sleep(0.3)
    broker.proc.resume()
    time.sleep(0.1)  # the late tick runs
    after = broker.scrape()
    assert value(after, "logq_event_loop_longest_stall_seconds") >= 0.25
    assert value(after, "logq_event_loop_lag_seconds_bucket", le="0.1") < value(
        after, "logq_event_loop_lag_seconds_count"
    )
    assert value(after, "logq_gc_longest_pause_seconds") >= 0.0


def test_settings_changes_are_counted(broker: MetricsBroker) -> None:
    with WireClient(broker.proc.bootstrap) as client:
        bad_key = [m.AlterableConfig(name="no.such", value="1")]
        for name, configs in (("nope", []), ("__consumer_offsets", bad_key)):
            resource = m.AlterConfigsResource(resource_type=2, resource_name=name, configs=configs)
            client.call(m.AlterConfigsRequest(resources=[resource]), 1)
        resource = m.IncrementalAlterConfigsResource(resource_type=4, resource_name="", configs=[])
        client.call(m.IncrementalAlterConfigsRequest(resources=[resource]), 1)
    samples = broker.scrape()
    assert value(samples, "logq_requests_total", api="AlterConfigs") == 2
    assert value(samples, "logq_requests_total", api="IncrementalAlterConfigs") == 1
    for code in (ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, ErrorCode.INVALID_CONFIG):
        assert value(samples, "logq_errors_total", api="AlterConfigs", code=str(int(code))) == 1
