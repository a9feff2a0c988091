"""A cluster of one broker: __consumer_offsets gets a single replica (at most the brokers running), and
group commits are acknowledged at once by its ISR of one."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from logq.error_codes import ErrorCode
from tests.broker_process import BrokerProcess
from tests.cluster.conftest import Cluster
from tests.cluster.test_cluster import create


@pytest.fixture(scope="module")
def single(tmp_path_factory: pytest.TempPathFactory, zookeeper: str) -> Iterator[Cluster]:
    chroot = tmp_path_factory.mktemp("single").name
    c = Cluster(tmp_path_factory.mktemp("brokers"), f"{zookeeper}/logq-{chroot}", size=1)
    try:
        yield c.start()
    finally:
        c.stop()


def test_a_group_commits_on_a_cluster_of_one(single: Cluster) -> None:
    assert create(single, 1, "solo", 1).error_code == ErrorCode.NONE
    producer = Producer({"bootstrap.servers": single.bootstrap, "acks": "all"})
    producer.produce("solo", b"x")
    assert producer.flush(30) == 0
    consumer = Consumer(
        {
            "bootstrap.servers": single.bootstrap,
            "group.id": "solo-g",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.subscribe(["solo"])
        deadline = time.monotonic() + 30
        msg = None
        while msg is None and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
        assert msg is not None
        assert msg.error() is None
        started = time.monotonic()
        committed = consumer.commit(message=msg, asynchronous=False)
        assert committed is not None
        assert committed[0].error is None
        assert time.monotonic() - started < 2  # not a replication timeout
        assert consumer.committed([TopicPartition("solo", 0)], 10)[0].offset == 1
    finally:
        consumer.close()


def test_a_data_directory_of_another_cluster_is_refused(tmp_path: Path, zookeeper: str) -> None:
    """A broker pointed at another ZooKeeper chroot (another cluster id) with its old data directory
    refuses to start instead of mixing its logs into that cluster; the right cluster still takes it."""
    data = tmp_path / "data"
    settings = {"broker.id": 1, "zookeeper.connect": f"{zookeeper}/logq-{tmp_path.name}-a"}
    BrokerProcess(data, broker=settings).start().stop()
    elsewhere = BrokerProcess(
        data, broker={**settings, "zookeeper.connect": f"{zookeeper}/logq-{tmp_path.name}-b"}
    )
    with pytest.raises(RuntimeError, match="belongs to cluster"):
        elsewhere.start()
    assert json.loads((data / "meta.json").read_text())["cluster_id"]
    BrokerProcess(data, broker=settings).start().stop()
