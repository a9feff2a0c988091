"""AlterConfigs (33) and IncrementalAlterConfigs (44) against a real standalone broker: exact requests over
the wire, then confluent-kafka's AdminClient and kafka-python's KafkaAdminClient; the changes are in force
at once (retention, max.message.bytes, the retention job's period) and survive a restart."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # not in its __all__
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kafka import KafkaAdminClient  # type: ignore[import-untyped]
from kafka.admin import ConfigResource as KpConfigResource  # type: ignore[import-untyped]
from kafka.admin import ConfigResourceType

from logq.error_codes import ErrorCode
from logq.protocol import messages as m
from logq.testing import make_batch
from tests.broker.test_broker_basic import create, produce
from tests.broker_process import BrokerProcess
from tests.protocol.strategies import message_strategy
from tests.wire_client import WireClient

TOPIC, BROKER = 2, 4  # Kafka's ConfigResource.Type
SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3  # IncrementalAlterConfigs operations
DYNAMIC_TOPIC, DYNAMIC_BROKER, DYNAMIC_DEFAULT, STATIC, DEFAULT = 1, 2, 3, 4, 5  # ConfigSource


def alter(
    client: WireClient,
    *resources: tuple[int, str, dict[str, str | None]],
    validate_only: bool = False,
    version: int = 1,
) -> list[tuple[int, str | None]]:
    request = m.AlterConfigsRequest(
        resources=[
            m.AlterConfigsResource(
                resource_type=t,
                resource_name=n,
                configs=[m.AlterableConfig(name=k, value=v) for k, v in c.items()],
            )
            for t, n, c in resources
        ],
        validate_only=validate_only,
    )
    response = client.call(request, version)
    assert response.throttle_time_ms == 0
    assert [(r.resource_type, r.resource_name) for r in response.responses] == [
        (t, n) for t, n, _ in resources
    ]
    return [(r.error_code, r.error_message) for r in response.responses]


def incremental(
    client: WireClient,
    *resources: tuple[int, str, list[tuple[str, int, str | None]]],
    validate_only: bool = False,
    version: int = 1,
) -> list[tuple[int, str | None]]:
    request = m.IncrementalAlterConfigsRequest(
        resources=[
            m.IncrementalAlterConfigsResource(
                resource_type=t,
                resource_name=n,
                configs=[
                    m.IncrementalAlterableConfig(name=k, config_operation=op, value=v) for k, op, v in c
                ],
            )
            for t, n, c in resources
        ],
        validate_only=validate_only,
    )
    response = client.call(request, version)
    return [(r.error_code, r.error_message) for r in response.responses]


def described(client: WireClient, kind: int, name: str) -> dict[str, tuple[str | None, int]]:
    """Every setting -> (value, source)."""
    request = m.DescribeConfigsRequest(
        resources=[m.DescribeConfigsResource(resource_type=kind, resource_name=name)], include_synonyms=True
    )
    (result,) = client.call(request, 3).results
    assert result.error_code == 0, result.error_message
    return {c.name: (c.value, c.config_source) for c in result.configs}


def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not within the time allowed"
        time.sleep(0.05)


def log_start(client: WireClient, queue: str) -> int:
    request = m.ListOffsetsRequest(
        replica_id=-1,
        topics=[
            m.ListOffsetsTopic(
                name=queue, partitions=[m.ListOffsetsPartition(partition_index=0, timestamp=-2)]
            )
        ],
    )
    (partition,) = client.call(request, 1).topics[0].partitions
    return int(partition.offset)


# --- the wire ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [0, 1])
def test_alter_configs_replaces_every_override(broker: BrokerProcess, version: int) -> None:
    with WireClient(broker.bootstrap) as client:
        assert create(client, "orders", 1, retention_ms="3600000", segment_ms="60000") == 0
        # validate_only checks and writes nothing
        assert alter(
            client, (TOPIC, "orders", {"retention.bytes": "5000"}), validate_only=True, version=version
        ) == [(0, None)]
        assert described(client, TOPIC, "orders")["retention.ms"] == ("3600000", DYNAMIC_TOPIC)
        assert alter(client, (TOPIC, "orders", {"retention.bytes": "5000"}), version=version) == [(0, None)]
        settings = described(client, TOPIC, "orders")
        assert settings["retention.bytes"] == ("5000", DYNAMIC_TOPIC)
        # not listed: back to the default, as in Kafka
        assert settings["retention.ms"] == ("604800000", DEFAULT)
        assert settings["segment.ms"] == ("604800000", DEFAULT)


@pytest.mark.parametrize("version", [0, 1])  # v1 is flexible
def test_incremental_operations(broker: BrokerProcess, version: int) -> None:
    with WireClient(broker.bootstrap) as client:
        assert create(client, "orders", 1, retention_ms="3600000", segment_ms="60000") == 0
        changes = [
            ("retention.bytes", SET, "7000"),
            ("segment.ms", DELETE, None),
            ("cleanup.policy", APPEND, "compact"),
        ]
        assert incremental(client, (TOPIC, "orders", changes), version=version) == [(0, None)]
        settings = described(client, TOPIC, "orders")
        assert settings["retention.ms"] == ("3600000", DYNAMIC_TOPIC)  # kept
        assert settings["retention.bytes"] == ("7000", DYNAMIC_TOPIC)
        assert settings["segment.ms"] == ("604800000", DEFAULT)
        assert settings["cleanup.policy"] == ("compact,delete", DYNAMIC_TOPIC)  # appended to the default
        subtract = [("cleanup.policy", SUBTRACT, "delete")]
        assert incremental(client, (TOPIC, "orders", subtract), version=version) == [(0, None)]
        assert described(client, TOPIC, "orders")["cleanup.policy"] == ("compact", DYNAMIC_TOPIC)
        # APPEND and SUBTRACT are for list settings only
        ((code, message),) = incremental(
            client, (TOPIC, "orders", [("retention.ms", APPEND, "1")]), version=version
        )
        assert code == ErrorCode.INVALID_CONFIG
        assert "'retention.ms' is not a list" in str(message)


def test_each_resource_gets_its_own_error(broker: BrokerProcess) -> None:
    with WireClient(broker.bootstrap) as client:
        assert create(client, "orders") == 0
        results = alter(
            client,
            (TOPIC, "nope", {"retention.ms": "1000"}),
            (TOPIC, "bad/name", {}),
            (TOPIC, "orders", {"retention.mss": "1000"}),
            (TOPIC, "orders", {}),  # listed twice: both refused, as in Kafka
            (BROKER, "0", {"listen": "127.0.0.1:1"}),
            (BROKER, "", {"segment.bytes": "many"}),
            (BROKER, "7", {"retention.ms": "1000"}),  # another broker's own level
            (8, "0", {}),  # BROKER_LOGGER
        )
        codes = [code for code, _ in results]
        assert codes == [
            ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
            ErrorCode.INVALID_TOPIC_EXCEPTION,
            ErrorCode.INVALID_REQUEST,
            ErrorCode.INVALID_REQUEST,
            ErrorCode.INVALID_CONFIG,
            ErrorCode.INVALID_CONFIG,
            ErrorCode.INVALID_REQUEST,
            ErrorCode.INVALID_REQUEST,
        ]
        assert "'listen' cannot be changed without a restart" in str(results[4][1])
        assert "'segment.bytes' must be an integer" in str(results[5][1])
        ((code, message),) = alter(client, (BROKER, "", {"log.retention.ms": "1000"}))  # Kafka's broker name
        assert code == ErrorCode.INVALID_CONFIG
        assert "unknown broker setting 'log.retention.ms' (logq's name for it: retention.ms)" in str(message)
        for settings, phrase in [
            ({"retention.mss": "1000"}, "'retention.mss' cannot be set on a queue"),
            ({"retention.ms": "soon"}, "'retention.ms' must be an integer"),
            ({"segment.bytes": "0"}, "'segment.bytes' must be positive"),
            ({"cleanup.policy": "forever"}, "'cleanup.policy' must be one of"),
            ({"unclean.leader.election.enable": "true"}, "never elects a replica outside the ISR"),
        ]:
            ((code, message),) = alter(client, (TOPIC, "orders", settings))
            assert code == ErrorCode.INVALID_CONFIG
            assert phrase in str(message)
        ((code, message),) = alter(client, (TOPIC, "orders", {"retention.ms": None}))
        assert code == ErrorCode.INVALID_REQUEST  # as Kafka: a null value is a bad request
        assert "'retention.ms': a null value is not supported" in str(message)
        ((code, message),) = incremental(
            client, (TOPIC, "orders", [("retention.ms", SET, "1"), ("retention.ms", DELETE, None)])
        )
        assert code == ErrorCode.INVALID_REQUEST
        assert "listed more than once" in str(message)
        ((code, _),) = incremental(client, (TOPIC, "orders", [("retention.ms", 9, "1")]))
        assert code == ErrorCode.INVALID_REQUEST
        # nothing refused was written
        assert all(source == DEFAULT for _, source in described(client, TOPIC, "orders").values())


def test_dynamic_broker_settings_and_their_precedence(broker: BrokerProcess) -> None:
    with WireClient(broker.bootstrap) as client:
        assert create(client, "orders") == 0
        assert create(client, "own", retention_ms="1000") == 0
        assert alter(client, (BROKER, "", {"retention.ms": "3000", "segment.ms": "4000"})) == [(0, None)]
        assert incremental(client, (BROKER, "0", [("retention.ms", SET, "2000")])) == [(0, None)]
        orders, own = described(client, TOPIC, "orders"), described(client, TOPIC, "own")
        assert orders["retention.ms"] == ("2000", DYNAMIC_BROKER)  # this broker's over the cluster's
        assert orders["segment.ms"] == ("4000", DYNAMIC_DEFAULT)
        assert own["retention.ms"] == ("1000", DYNAMIC_TOPIC)  # the queue's over both
        this, cluster = described(client, BROKER, "0"), described(client, BROKER, "")
        assert this["retention.ms"] == ("2000", DYNAMIC_BROKER)
        assert this["segment.ms"] == ("4000", DYNAMIC_DEFAULT)
        assert cluster == {"retention.ms": ("3000", DYNAMIC_DEFAULT), "segment.ms": ("4000", DYNAMIC_DEFAULT)}
        # synonyms: every level, in Kafka's order
        request = m.DescribeConfigsRequest(
            resources=[
                m.DescribeConfigsResource(
                    resource_type=TOPIC, resource_name="own", configuration_keys=["retention.ms"]
                )
            ],
            include_synonyms=True,
        )
        (entry,) = client.call(request, 1).results[0].configs
        assert [(s.value, s.source) for s in entry.synonyms] == [
            ("1000", DYNAMIC_TOPIC),
            ("2000", DYNAMIC_BROKER),
            ("3000", DYNAMIC_DEFAULT),
            ("604800000", DEFAULT),
        ]
        # deleting this broker's level brings the cluster-wide value back
        assert alter(client, (BROKER, "0", {})) == [(0, None)]
        assert described(client, TOPIC, "orders")["retention.ms"] == ("3000", DYNAMIC_DEFAULT)


ALTER_VERSIONS = [(m.AlterConfigsRequest, v) for v in range(2)] + [
    (m.IncrementalAlterConfigsRequest, v) for v in range(2)
]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_alter_request_is_answered(broker: BrokerProcess, data: Any) -> None:
    cls, version = data.draw(st.sampled_from(ALTER_VERSIONS))
    request = data.draw(message_strategy(cls, version))
    with WireClient(broker.bootstrap, timeout=5) as client:
        response = client.call(request, version)
        assert len(response.responses) == len(request.resources)
        assert client.call(m.ApiVersionsRequest(), 2).error_code == 0
    assert "Traceback" not in broker.log_text


# --- in force at once ---------------------------------------------------------------------------------


def test_max_message_bytes_lowered_refuses_a_bigger_batch(broker: BrokerProcess) -> None:
    big = make_batch(4, value_size=1000)
    with WireClient(broker.bootstrap) as client:
        assert create(client, "orders") == 0
        assert create(client, "other") == 0
        assert produce(client, "orders", big).error_code == 0
        assert alter(client, (TOPIC, "orders", {"max.message.bytes": "1000"})) == [(0, None)]
        assert produce(client, "orders", big).error_code == ErrorCode.MESSAGE_TOO_LARGE
        assert produce(client, "orders", make_batch(1, value_size=100)).error_code == 0
        # a dynamic broker default reaches every queue without its own setting
        assert produce(client, "other", big).error_code == 0
        assert alter(client, (BROKER, "", {"max.message.bytes": "2000"})) == [(0, None)]
        assert produce(client, "other", big).error_code == ErrorCode.MESSAGE_TOO_LARGE
        assert produce(client, "orders", big).error_code == ErrorCode.MESSAGE_TOO_LARGE


def test_segment_bytes_lowered_rolls_smaller_segments(broker: BrokerProcess) -> None:
    segments = broker.data_dir / "orders-0"
    with WireClient(broker.bootstrap) as client:
        assert create(client, "orders") == 0
        for tag in range(4):
            assert produce(client, "orders", make_batch(2, value_size=600, tag=tag)).error_code == 0
        assert len(list(segments.glob("*.log"))) == 1
        assert alter(client, (TOPIC, "orders", {"segment.bytes": "2000"})) == [(0, None)]
        for tag in range(4, 10):
            assert produce(client, "orders", make_batch(2, value_size=600, tag=tag)).error_code == 0
    assert len(list(segments.glob("*.log"))) > 2  # rolled at the new size (batches of about 1.3 kB)


def test_retention_change_deletes_segments(tmp_path: Path) -> None:
    """retention.ms lowered on the queue, then the retention job's period shortened as a dynamic broker
    setting (from the configuration file's 5 minutes): the aged segments go within seconds."""
    proc = BrokerProcess(tmp_path / "data", log={"segment.bytes": 2000}).start()
    try:
        with WireClient(proc.bootstrap) as client:
            assert create(client, "orders") == 0
            for tag in range(6):
                assert produce(client, "orders", make_batch(2, value_size=600, tag=tag)).error_code == 0
            assert log_start(client, "orders") == 0
            assert alter(client, (TOPIC, "orders", {"retention.ms": "1"})) == [(0, None)]
            time.sleep(1.0)
            assert log_start(client, "orders") == 0  # the job runs every 5 minutes
            assert alter(client, (BROKER, "", {"retention.check.interval.ms": "200"})) == [(0, None)]
            eventually(lambda: log_start(client, "orders") > 0)
        assert "retention.ms" in proc.log_text
    finally:
        proc.kill()


def test_restart_keeps_the_altered_settings(tmp_path: Path) -> None:
    proc = BrokerProcess(tmp_path / "data").start()
    try:
        with WireClient(proc.bootstrap) as client:
            assert create(client, "orders") == 0
            assert alter(client, (TOPIC, "orders", {"max.message.bytes": "1000"})) == [(0, None)]
            assert alter(client, (BROKER, "", {"retention.ms": "3000"})) == [(0, None)]
            assert alter(client, (BROKER, "0", {"segment.ms": "4000"})) == [(0, None)]
        proc.restart()
        with WireClient(proc.bootstrap) as client:
            orders = described(client, TOPIC, "orders")
            assert orders["max.message.bytes"] == ("1000", DYNAMIC_TOPIC)
            assert orders["retention.ms"] == ("3000", DYNAMIC_DEFAULT)
            assert orders["segment.ms"] == ("4000", DYNAMIC_BROKER)
            assert (
                produce(client, "orders", make_batch(4, value_size=1000)).error_code
                == ErrorCode.MESSAGE_TOO_LARGE
            )
    finally:
        proc.kill()


# --- Kafka's clients ----------------------------------------------------------------------------------


def _wait(futures: dict[Any, Any]) -> dict[Any, Any]:
    return {k: f.result(timeout=15) for k, f in futures.items()}


@pytest.mark.filterwarnings("ignore:alter_configs has been deprecated:DeprecationWarning")  # still served
def test_confluent_kafka_admin(broker: BrokerProcess) -> None:
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    with WireClient(broker.bootstrap) as client:
        assert create(client, "orders", 1, segment_ms="60000") == 0
    queue = ConfigResource(ConfigResource.Type.TOPIC, "orders", set_config={"retention.ms": "3600000"})
    _wait(admin.alter_configs([queue]))
    this = ConfigResource(
        ConfigResource.Type.BROKER,
        "0",
        incremental_configs=[
            ConfigEntry("segment.bytes", "5000000", incremental_operation=AlterConfigOpType.SET)
        ],
    )
    _wait(admin.incremental_alter_configs([this]))
    with WireClient(broker.bootstrap) as client:  # librdkafka refuses the "" (cluster-wide) resource name
        assert incremental(client, (BROKER, "", [("retention.bytes", SET, "9000")])) == [(0, None)]
    (entries,) = _wait(admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, "orders")])).values()
    assert (entries["retention.ms"].value, entries["retention.ms"].source) == (
        "3600000",
        ConfigSource.DYNAMIC_TOPIC_CONFIG.value,
    )
    assert entries["segment.ms"].value == "604800000"  # AlterConfigs replaced the overrides
    assert (entries["retention.bytes"].value, entries["retention.bytes"].source) == (
        "9000",
        ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value,
    )
    assert (entries["segment.bytes"].value, entries["segment.bytes"].source) == (
        "5000000",
        ConfigSource.DYNAMIC_BROKER_CONFIG.value,
    )
    listed = ConfigResource(
        ConfigResource.Type.TOPIC,
        "orders",
        incremental_configs=[
            ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.APPEND),
            ConfigEntry("retention.ms", None, incremental_operation=AlterConfigOpType.DELETE),
        ],
    )
    _wait(admin.incremental_alter_configs([listed]))
    (entries,) = _wait(admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, "orders")])).values()
    assert (entries["cleanup.policy"].value, entries["cleanup.policy"].source) == (
        "compact,delete",
        ConfigSource.DYNAMIC_TOPIC_CONFIG.value,
    )
    assert entries["retention.ms"].source == ConfigSource.DEFAULT_CONFIG.value
    bad = ConfigResource(
        ConfigResource.Type.TOPIC,
        "orders",
        incremental_configs=[
            ConfigEntry("retention.ms", "soon", incremental_operation=AlterConfigOpType.SET)
        ],
    )
    with pytest.raises(KafkaException) as refused:
        _wait(admin.incremental_alter_configs([bad]))
    assert refused.value.args[0].code() == ErrorCode.INVALID_CONFIG
    assert "retention.ms" in refused.value.args[0].str()
    with pytest.raises(KafkaException) as unknown:
        _wait(
            admin.alter_configs(
                [ConfigResource(ConfigResource.Type.TOPIC, "nope", set_config={"retention.ms": "1"})]
            )
        )
    assert unknown.value.args[0].code() == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION


def test_kafka_python_admin(broker: BrokerProcess) -> None:
    with WireClient(broker.bootstrap) as client:
        assert create(client, "orders") == 0
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=10_000)
    try:
        orders = {"retention.ms": "7200000"}
        # AlterConfigs, then IncrementalAlterConfigs (which keeps retention.ms)
        assert admin.alter_configs(
            [KpConfigResource(ConfigResourceType.TOPIC, "orders", configs=orders)], incremental=False
        ) == {"topic": {"orders": "OK"}}
        more = KpConfigResource(ConfigResourceType.TOPIC, "orders", configs={"segment.ms": "60000"})
        assert admin.alter_configs([more], incremental=True) == {"topic": {"orders": "OK"}}
        modified = admin.describe_configs([KpConfigResource(ConfigResourceType.TOPIC, "orders")])
        assert {k: (v["value"], v["config_source"]) for k, v in modified["topic"]["orders"].items()} == {
            "retention.ms": ("7200000", "DYNAMIC_TOPIC_CONFIG"),
            "segment.ms": ("60000", "DYNAMIC_TOPIC_CONFIG"),
        }
        this = KpConfigResource(ConfigResourceType.BROKER, "0", configs={"retention.bytes": "123456"})
        assert admin.alter_configs([this], incremental=True) == {"broker": {"0": "OK"}}
        dynamic = admin.describe_configs(
            [KpConfigResource(ConfigResourceType.BROKER, "0")], config_filter="dynamic"
        )
        entry = dynamic["broker"]["0"]["retention.bytes"]
        assert (entry["value"], entry["config_source"]) == ("123456", "DYNAMIC_BROKER_CONFIG")
    finally:
        admin.close()
