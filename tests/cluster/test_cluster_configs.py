"""Cluster mode: settings changed through one broker are stored in ZooKeeper and in force on every broker
within a second: DescribeConfigs through each broker, and partitions led elsewhere honour them."""

from __future__ import annotations

import time

from logq.error_codes import ErrorCode
from logq.protocol import messages as m
from logq.testing import make_batch
from tests.broker.test_alter_configs import (
    BROKER,
    DEFAULT,
    DYNAMIC_BROKER,
    DYNAMIC_DEFAULT,
    DYNAMIC_TOPIC,
    SET,
    TOPIC,
    alter,
    described,
    incremental,
)
from tests.broker.test_broker_basic import produce
from tests.cluster.conftest import Cluster, wait_for
from tests.cluster.test_cluster import agreed_leaders, create
from tests.wire_client import WireClient

QUEUE = "altered"
IN_FORCE_WITHIN_S = 1.0


def everywhere_within_a_second(cluster: Cluster, check: object, what: str) -> None:
    """``check(broker_id)`` holds on every broker within IN_FORCE_WITHIN_S of now."""
    assert callable(check)
    deadline = time.monotonic() + IN_FORCE_WITHIN_S
    for i in cluster.brokers:
        wait_for(
            lambda i=i: check(i), f"{what} on broker {i}", timeout=max(deadline - time.monotonic(), 0.05)
        )


def test_a_queue_change_through_one_broker_is_in_force_on_every_broker(cluster: Cluster) -> None:
    created = create(cluster, 1, QUEUE, 3, rf=3)
    assert created.error_code == ErrorCode.NONE, created.error_message
    leaders = wait_for(lambda: agreed_leaders(cluster, QUEUE), "the same leaders from every broker")
    assert sorted(leaders) == [1, 2, 3]
    big = make_batch(4, value_size=1000)
    for partition, leader in enumerate(leaders):
        with WireClient(cluster.brokers[leader].bootstrap) as client:
            assert produce(client, QUEUE, big, partition=partition).error_code == 0
    with WireClient(cluster.brokers[1].bootstrap) as client:
        assert alter(client, (TOPIC, QUEUE, {"max.message.bytes": "1000"})) == [(0, None)]

    def sees(i: int) -> bool:
        with WireClient(cluster.brokers[i].bootstrap) as client:
            return described(client, TOPIC, QUEUE)["max.message.bytes"] == ("1000", DYNAMIC_TOPIC)

    everywhere_within_a_second(cluster, sees, "max.message.bytes 1000")
    for partition, leader in enumerate(leaders):  # two of them led by another broker than the one altered
        with WireClient(cluster.brokers[leader].bootstrap) as client:
            assert produce(client, QUEUE, big, partition=partition).error_code == ErrorCode.MESSAGE_TOO_LARGE


def test_min_insync_replicas_raised_is_applied_by_the_leaders(cluster: Cluster) -> None:
    leaders = wait_for(lambda: agreed_leaders(cluster, QUEUE), "the same leaders from every broker")
    small = make_batch(1)
    with WireClient(cluster.brokers[2].bootstrap) as client:  # SET keeps max.message.bytes
        assert incremental(client, (TOPIC, QUEUE, [("min.insync.replicas", SET, "4")])) == [(0, None)]

    def refused(i: int) -> bool:
        partition = leaders.index(i)
        with WireClient(cluster.brokers[i].bootstrap) as client:
            return (
                produce(client, QUEUE, small, partition=partition).error_code == ErrorCode.NOT_ENOUGH_REPLICAS
            )

    everywhere_within_a_second(cluster, refused, "acks=all refused below 4 in-sync replicas")
    with WireClient(cluster.brokers[3].bootstrap) as client:
        assert incremental(client, (TOPIC, QUEUE, [("min.insync.replicas", 1, None)])) == [(0, None)]
        settings = described(client, TOPIC, QUEUE)
        assert settings["max.message.bytes"] == ("1000", DYNAMIC_TOPIC)
        assert settings["min.insync.replicas"] == ("2", DEFAULT)  # 3 replicas

    def accepted(i: int) -> bool:
        with WireClient(cluster.brokers[i].bootstrap) as client:
            return produce(client, QUEUE, small, partition=leaders.index(i)).error_code == 0

    everywhere_within_a_second(cluster, accepted, "acks=all accepted again")


def test_dynamic_broker_settings_reach_every_broker(cluster: Cluster) -> None:
    with WireClient(cluster.brokers[2].bootstrap) as client:
        assert alter(client, (BROKER, "", {"retention.ms": "12345"})) == [(0, None)]

    def default_seen(i: int) -> bool:
        with WireClient(cluster.brokers[i].bootstrap) as client:
            mine = described(client, BROKER, str(i))["retention.ms"] == ("12345", DYNAMIC_DEFAULT)
            return mine and described(client, TOPIC, QUEUE)["retention.ms"] == ("12345", DYNAMIC_DEFAULT)

    everywhere_within_a_second(cluster, default_seen, "the cluster-wide retention.ms")
    with WireClient(cluster.brokers[3].bootstrap) as client:  # a broker's own level, through that broker
        assert alter(client, (BROKER, "3", {"retention.ms": "999"})) == [(0, None)]
        assert described(client, TOPIC, QUEUE)["retention.ms"] == ("999", DYNAMIC_BROKER)
        # another broker's own level is altered through that broker only, as in Kafka
        ((code, _),) = alter(client, (BROKER, "1", {"retention.ms": "1"}))
        assert code == ErrorCode.INVALID_REQUEST
    with WireClient(cluster.brokers[1].bootstrap) as client:
        assert described(client, TOPIC, QUEUE)["retention.ms"] == ("12345", DYNAMIC_DEFAULT)
        request = m.DescribeConfigsRequest(
            resources=[m.DescribeConfigsResource(resource_type=BROKER, resource_name="")],
            include_synonyms=True,
        )
        (result,) = client.call(request, 1).results
        assert {(c.name, c.value, c.config_source) for c in result.configs} == {
            ("retention.ms", "12345", DYNAMIC_DEFAULT)
        }
