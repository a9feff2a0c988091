"""DescribeLogDirs (35) and DescribeConfigs (32) against a real broker: exact requests over the wire, then
confluent-kafka's AdminClient and kafka-python's KafkaAdminClient as Kafka's own tools would use them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # not in its __all__
    AdminClient,
    ConfigResource,
    ConfigSource,
    NewTopic,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kafka import KafkaAdminClient  # type: ignore[import-untyped]
from kafka.admin import ConfigResource as KpConfigResource  # type: ignore[import-untyped]
from kafka.admin import ConfigResourceType

from logq.dynamic_settings import DYNAMIC_BROKER_SETTINGS
from logq.error_codes import ErrorCode
from logq.protocol import messages as m
from logq.testing import make_batch
from tests.broker.test_broker_basic import create, produce
from tests.broker_process import BrokerProcess
from tests.protocol.strategies import message_strategy
from tests.wire_client import WireClient

TOPIC, BROKER = 2, 4  # Kafka's ConfigResource.Type
DYNAMIC_TOPIC_CONFIG, STATIC_BROKER_CONFIG, DEFAULT_CONFIG = 1, 4, 5  # ConfigSource
QUEUE_DEFAULTS = {
    "cleanup.policy": "delete",
    "flush.ms": "1000",
    "compression.type": "producer",
    "delete.retention.ms": "86400000",
    "file.delete.delay.ms": "60000",
    "max.compaction.lag.ms": "9223372036854775807",
    "message.timestamp.type": "CreateTime",
    "min.cleanable.dirty.ratio": "0.5",
    "min.compaction.lag.ms": "0",
    "max.message.bytes": "1048588",
    "min.insync.replicas": "1",
    "retention.bytes": "-1",
    "retention.ms": "604800000",
    "segment.bytes": "1073741824",
    "segment.ms": "604800000",
}


def log_dirs(client: WireClient, topics: list[m.DescribableLogDirTopic] | None, version: int = 1) -> Any:
    response = client.call(m.DescribeLogDirsRequest(topics=topics), version)
    assert response.throttle_time_ms == 0
    (result,) = response.results
    assert result.error_code == 0
    return result


def sizes(result: Any) -> dict[tuple[str, int], int]:
    out = {}
    for topic in result.topics:
        for p in topic.partitions:
            assert (p.offset_lag, p.is_future_key) == (0, False)
            out[(topic.name, p.partition_index)] = p.partition_size
    return out


def wanted(topic: str, *partitions: int) -> m.DescribableLogDirTopic:
    return m.DescribableLogDirTopic(topic=topic, partitions=list(partitions))


def describe(
    client: WireClient, *resources: tuple[int, str, list[str] | None], version: int = 3, docs: bool = False
) -> list[Any]:
    request = m.DescribeConfigsRequest(
        resources=[
            m.DescribeConfigsResource(resource_type=t, resource_name=n, configuration_keys=k)
            for t, n, k in resources
        ],
        include_synonyms=True,
        include_documentation=docs,
    )
    results: list[Any] = client.call(request, version).results
    assert [(r.resource_type, r.resource_name) for r in results] == [(t, n) for t, n, _ in resources]
    return results


def values(result: Any) -> dict[str, str | None]:
    return {c.name: c.value for c in result.configs}


# --- DescribeLogDirs ------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [0, 1])
def test_partition_sizes_grow_with_each_produce(broker: BrokerProcess, version: int) -> None:
    with WireClient(broker.bootstrap) as client:
        assert create(client, "orders", 2) == 0
        result = log_dirs(client, [wanted("orders", 0, 1)], version)
        assert result.log_dir == str(broker.data_dir.absolute())
        assert sizes(result) == {("orders", 0): 0, ("orders", 1): 0}
        first, second = make_batch(5, value_size=50), make_batch(3, value_size=200)
        assert produce(client, "orders", first).error_code == 0
        assert sizes(log_dirs(client, [wanted("orders", 0, 1)], version)) == {
            ("orders", 0): len(first),  # the batch is stored as sent: its size is the bytes on disk
            ("orders", 1): 0,
        }
        assert produce(client, "orders", second, partition=1).error_code == 0
        assert produce(client, "orders", first).error_code == 0
        assert sizes(log_dirs(client, [wanted("orders", 0, 1)], version)) == {
            ("orders", 0): 2 * len(first),
            ("orders", 1): len(second),
        }
    on_disk = sum(f.stat().st_size for f in (broker.data_dir / "orders-0").glob("*.log"))
    assert on_disk == 2 * len(first)


def test_unknown_queues_and_partitions_are_absent(broker: BrokerProcess) -> None:
    with WireClient(broker.bootstrap) as client:
        assert create(client, "orders", 2) == 0
        asked = [
            wanted("nope", 0),
            wanted("orders", 1, 7, -1, 2**31 - 1, 1),
            wanted("orders", 0),  # a queue listed twice is answered once
            wanted("", 0),
        ]
        result = log_dirs(client, asked)
        assert [t.name for t in result.topics] == ["orders"]
        assert [p.partition_index for p in result.topics[0].partitions] == [0, 1]
        assert log_dirs(client, [wanted("nope", 0, 1)]).topics == []
        assert log_dirs(client, [wanted("orders")]).topics == []  # no partitions asked for
        # [] asks for nothing, but the log dir is still listed; null asks for everything.
        empty = log_dirs(client, [])
        assert (empty.log_dir, empty.topics) == (str(broker.data_dir.absolute()), [])
        everything = sizes(log_dirs(client, None, version=0))
        assert {("orders", 0), ("orders", 1), ("__consumer_offsets", 49)} <= set(everything)
        assert len(everything) == 2 + 50


# --- DescribeConfigs ------------------------------------------------------------------------------------


def test_settings_given_at_creation_are_not_defaults(broker: BrokerProcess) -> None:
    with WireClient(broker.bootstrap) as client:
        assert create(client, "orders", 1, retention_ms="86400000", min_insync_replicas="1") == 0
        assert create(client, "plain") == 0
        for version in range(4):
            orders, plain = describe(client, (TOPIC, "orders", None), (TOPIC, "plain", None), version=version)
            assert (orders.error_code, orders.error_message) == (0, None)
            assert values(orders) == {**QUEUE_DEFAULTS, "retention.ms": "86400000"}
            assert values(plain) == QUEUE_DEFAULTS
            for entry in [*orders.configs, *plain.configs]:
                assert (entry.read_only, entry.is_sensitive) == (False, False)
                if version == 0:  # synonyms are v1+
                    assert entry.synonyms == []
                else:  # every level with a value, the one in force first (Kafka's order)
                    first, last = entry.synonyms[0], entry.synonyms[-1]
                    assert (first.name, first.value, first.source) == (
                        entry.name,
                        entry.value,
                        entry.config_source,
                    )
                    assert (last.name, last.source) == (entry.name, DEFAULT_CONFIG)
            # min.insync.replicas was given at creation, with the default value: still not a default
            given_at_creation = {"retention.ms", "min.insync.replicas"}
            if version == 0:
                assert {c.name for c in orders.configs if not c.is_default} == given_at_creation
                assert all(c.is_default for c in plain.configs)
            else:
                sources = {c.name: c.config_source for c in orders.configs}
                assert sources == {
                    k: DYNAMIC_TOPIC_CONFIG if k in given_at_creation else DEFAULT_CONFIG
                    for k in QUEUE_DEFAULTS
                }
                assert {c.config_source for c in plain.configs} == {DEFAULT_CONFIG}
        types = {c.name: c.config_type for c in orders.configs}
        assert types == {
            "max.message.bytes": 3, "min.insync.replicas": 3, "retention.bytes": 5, "retention.ms": 5,
            "segment.bytes": 3, "segment.ms": 5, "cleanup.policy": 7, "compression.type": 2,
            "delete.retention.ms": 5, "max.compaction.lag.ms": 5, "message.timestamp.type": 2,
            "min.cleanable.dirty.ratio": 6, "min.compaction.lag.ms": 5, "flush.ms": 5,
            "file.delete.delay.ms": 5,
        }  # fmt: skip
        assert all(c.documentation is None for c in orders.configs)
        (documented,) = describe(client, (TOPIC, "orders", None), docs=True)
        assert all(c.documentation for c in documented.configs)


def test_defaults_are_the_brokers_log_settings(tmp_path: Path) -> None:
    proc = BrokerProcess(
        tmp_path / "data", log={"segment.bytes": 1 << 20, "retention.bytes": 5_000_000}
    ).start()
    try:
        with WireClient(proc.bootstrap) as client:
            assert create(client, "orders", 1, retention_ms="3600000") == 0
            keys = ["segment.bytes", "retention.ms", "retention.bytes"]
            orders, offsets = describe(client, (TOPIC, "orders", keys), (TOPIC, "__consumer_offsets", keys))
            # the configuration file's [log] values are STATIC_BROKER_CONFIG, as server.properties' in Kafka
            assert {(c.name, c.value, c.config_source) for c in orders.configs} == {
                ("segment.bytes", str(1 << 20), STATIC_BROKER_CONFIG),
                ("retention.ms", "3600000", DYNAMIC_TOPIC_CONFIG),
                ("retention.bytes", "5000000", STATIC_BROKER_CONFIG),
            }
            # __consumer_offsets is never aged out: its retention is forced, so it is not the default.
            assert {(c.name, c.value, c.config_source) for c in offsets.configs} == {
                ("segment.bytes", str(1 << 20), STATIC_BROKER_CONFIG),
                ("retention.ms", "-1", DYNAMIC_TOPIC_CONFIG),
                ("retention.bytes", "-1", DYNAMIC_TOPIC_CONFIG),
            }
    finally:
        proc.kill()


def test_configuration_keys_filter_the_answer(broker: BrokerProcess) -> None:
    with WireClient(broker.bootstrap) as client:
        assert create(client, "orders", 1, segment_ms="60000") == 0
        for version in (0, 1, 3):
            (some,) = describe(
                client, (TOPIC, "orders", ["segment.ms", "retention.bytes", "nope"]), version=version
            )
            assert values(some) == {"retention.bytes": "-1", "segment.ms": "60000"}
            (none,) = describe(client, (TOPIC, "orders", ["nope"]), version=version)
            assert (none.error_code, none.configs) == (0, [])
            # null and (as in Kafka) an empty list both mean every key
            everything, empty = describe(
                client, (TOPIC, "orders", None), (TOPIC, "orders", []), version=version
            )
            assert values(everything) == values(empty) == {**QUEUE_DEFAULTS, "segment.ms": "60000"}


def test_each_resource_gets_its_own_error(broker: BrokerProcess) -> None:
    with WireClient(broker.bootstrap) as client:
        assert create(client, "orders") == 0
        results = describe(
            client,
            (TOPIC, "nope", None),
            (TOPIC, "orders", ["retention.ms"]),
            (TOPIC, "bad/name", None),
            (1, "orders", None),  # UNKNOWN
            (8, "0", None),  # BROKER_LOGGER
            (-7, "", None),
            (BROKER, "1", None),  # another broker's id
            version=1,
        )
        errors = [(r.error_code, r.configs) for r in results]
        assert errors == [
            (ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, []),
            (0, results[1].configs),
            (ErrorCode.INVALID_TOPIC_EXCEPTION, []),
            (ErrorCode.INVALID_REQUEST, []),
            (ErrorCode.INVALID_REQUEST, []),
            (ErrorCode.INVALID_REQUEST, []),
            (ErrorCode.INVALID_REQUEST, []),
        ]
        assert values(results[1]) == {"retention.ms": "604800000"}
        assert all(r.error_message for r in results if r.error_code)


def test_broker_settings(broker: BrokerProcess) -> None:
    with WireClient(broker.bootstrap) as client:
        this, cluster_defaults = describe(client, (BROKER, "0", None), (BROKER, "", None))
        assert (cluster_defaults.error_code, cluster_defaults.configs) == (0, [])  # no dynamic defaults
        assert this.error_code == 0
        entries = {c.name: c for c in this.configs}
        assert entries["data.dir"].value == str(broker.data_dir)
        assert entries["listen"].value == broker.bootstrap
        assert entries["delete.queue.enable"].value == "true"
        assert entries["segment.bytes"].value == "1073741824"
        assert entries["log.fsync.before.ack"].value == "true"
        assert entries["advertised.listener"].value is None
        for name in ("data.dir", "listen", "delete.queue.enable"):  # set by the test's config and flags
            assert entries[name].config_source == STATIC_BROKER_CONFIG
        for name in ("segment.bytes", "num.partitions", "log.fsync.before.ack"):
            assert entries[name].config_source == DEFAULT_CONFIG
        # the dynamic broker settings (logq.dynamic_settings) may be altered; the rest need a restart
        assert not any(c.is_sensitive for c in this.configs)
        assert {c.name for c in this.configs if not c.read_only} == DYNAMIC_BROKER_SETTINGS
        assert entries["auto.create.queues"].config_type == 1  # BOOLEAN
        assert entries["data.dir"].config_type == 2  # STRING


# --- nothing a client sends makes the broker fail ----------------------------------------------------


DESCRIBE_VERSIONS = [(m.DescribeConfigsRequest, v) for v in range(4)] + [
    (m.DescribeLogDirsRequest, v) for v in range(2)
]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_describe_request_is_answered(broker: BrokerProcess, data: Any) -> None:
    cls, version = data.draw(st.sampled_from(DESCRIBE_VERSIONS))
    request = data.draw(message_strategy(cls, version))
    with WireClient(broker.bootstrap, timeout=5) as client:
        response = client.call(request, version)
        if isinstance(request, m.DescribeConfigsRequest):
            assert len(response.results) == len(request.resources)
        else:
            assert len(response.results) == 1
        assert client.call(m.ApiVersionsRequest(), 2).error_code == 0
    assert "Traceback" not in broker.log_text


# --- real clients --------------------------------------------------------------------------------------


def test_confluent_kafka_describe_configs(broker: BrokerProcess) -> None:
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    topic = NewTopic("orders", num_partitions=2, replication_factor=1, config={"retention.ms": "86400000"})
    admin.create_topics([topic], operation_timeout=10)["orders"].result(timeout=10)

    futures = admin.describe_configs([ConfigResource("TOPIC", "orders"), ConfigResource("BROKER", "0")])
    results = {resource.name: future.result(timeout=10) for resource, future in futures.items()}
    entries = results["orders"]
    assert {name: e.value for name, e in entries.items()} == {**QUEUE_DEFAULTS, "retention.ms": "86400000"}
    assert not entries["retention.ms"].is_default
    assert entries["retention.ms"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert entries["segment.bytes"].is_default
    assert entries["segment.bytes"].source == ConfigSource.DEFAULT_CONFIG.value
    assert not any(e.is_read_only or e.is_sensitive for e in entries.values())
    assert results["0"]["data.dir"].value == str(broker.data_dir)

    (missing,) = admin.describe_configs([ConfigResource("TOPIC", "nope")]).values()
    with pytest.raises(KafkaException) as info:
        missing.result(timeout=10)
    assert info.value.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART
    del admin  # referenced until every future above resolved


def test_kafka_python_describe_log_dirs_and_configs(broker: BrokerProcess) -> None:
    with WireClient(broker.bootstrap) as client:
        assert create(client, "orders", 2, retention_bytes="1000000") == 0
        batch = make_batch(4, value_size=100)
        assert produce(client, "orders", batch, partition=1).error_code == 0
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=10_000)
    try:
        (answer,) = admin.describe_log_dirs({"orders": [0, 1]})
        assert answer["broker"] == 0
        (log_dir,) = answer["log_dirs"]
        assert log_dir["log_dir"] == str(broker.data_dir.absolute())
        (topic,) = log_dir["topics"]
        assert topic["name"] == "orders"
        assert {p["partition_index"]: p["partition_size"] for p in topic["partitions"]} == {
            0: 0,
            1: len(batch),
        }
        (everything,) = admin.describe_log_dirs()
        assert {t["name"] for t in everything["log_dirs"][0]["topics"]} == {"orders", "__consumer_offsets"}

        modified = admin.describe_configs([KpConfigResource(ConfigResourceType.TOPIC, "orders")])
        assert modified["topic"]["orders"].keys() == {"retention.bytes"}
        setting = modified["topic"]["orders"]["retention.bytes"]
        assert (setting["value"], setting["config_source"]) == ("1000000", "DYNAMIC_TOPIC_CONFIG")
        every = admin.describe_configs(
            [KpConfigResource(ConfigResourceType.TOPIC, "orders")], config_filter="all"
        )
        assert {k: v["value"] for k, v in every["topic"]["orders"].items()} == {
            **QUEUE_DEFAULTS,
            "retention.bytes": "1000000",
        }
    finally:
        admin.close()
