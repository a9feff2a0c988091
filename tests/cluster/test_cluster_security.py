"""A secured cluster of two broker processes: a SASL listener for clients and a PLAINTEXT one among
brokers. The first admin is written into ZooKeeper with no broker running; a user created through one
broker logs in on the other (through ZooKeeper's watches); replication goes on over the inter-broker
listener."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import logq
from logq.coordinator.zookeeper import write_user_to_zookeeper
from logq.errors import AuthenticationError
from logq.protocol import messages as m
from logq.security.scram import MECHANISMS, make_credential
from tests.broker_process import BrokerProcess
from tests.cluster.conftest import SESSION_TIMEOUT_MS
from tests.security.helpers import scram_login
from tests.wire_client import WireClient


def client_addresses(bootstrap: str) -> set[tuple[str, int]]:
    with WireClient(bootstrap) as client:
        assert scram_login(client, "admin", "admin-secret").error_code == 0
        return {(b.host, b.port) for b in client.call(m.MetadataRequest(topics=[]), 1).brokers}


def sasl(user: str, password: str) -> dict[str, str]:
    return {"security_protocol": "SASL_PLAINTEXT", "sasl_username": user, "sasl_password": password}


@pytest.fixture
def secured(tmp_path: Path, zk_connect: str) -> Iterator[dict[int, BrokerProcess]]:
    write_user_to_zookeeper(zk_connect, "admin", [make_credential(m, "admin-secret") for m in MECHANISMS])
    brokers = {
        i: BrokerProcess(
            tmp_path / f"broker-{i}",
            listeners={"INTERNAL": "PLAINTEXT", "CLIENTS": "SASL_PLAINTEXT"},
            broker={
                "broker.id": i,
                "zookeeper.connect": zk_connect,
                "zookeeper.session.timeout.ms": SESSION_TIMEOUT_MS,
                "inter.broker.listener.name": "INTERNAL",
                "group.initial.rebalance.delay.ms": 0,
                "offsets.topic.num.partitions": 2,
            },
        ).start()
        for i in (1, 2)
    }
    yield brokers
    for broker in brokers.values():
        broker.kill()


def test_a_user_made_on_one_broker_logs_in_on_the_other(secured: dict[int, BrokerProcess]) -> None:
    one, two = secured[1].address("CLIENTS"), secured[2].address("CLIENTS")
    # Each client is told the brokers' CLIENTS addresses, never the inter-broker ones.
    wanted = {("127.0.0.1", secured[i].ports["CLIENTS"]) for i in (1, 2)}
    deadline = time.monotonic() + 20
    while client_addresses(one) != wanted:
        assert time.monotonic() < deadline, f"metadata lists {client_addresses(one)}, not {wanted}"
        time.sleep(0.1)
    with logq.Admin(one, **sasl("admin", "admin-secret")) as admin:
        admin.create_queue("orders", partitions=2, replication_factor=2)
        admin.set_user_password("app", "app-secret")
    started = time.monotonic()
    while True:  # the watch on /config/users brings it to broker 2
        try:
            logq.Admin(two, **sasl("app", "app-secret")).close()
            break
        except AuthenticationError:
            # The 1 s promise is checked in tests/coordinator/test_zk_credentials.py; processes on a busy
            # machine get more room here.
            assert time.monotonic() - started < 5.0, "broker 2 did not learn the new user"
            time.sleep(0.05)
    with logq.Producer(two, acks="all", **sasl("app", "app-secret")) as producer:
        for i in range(20):
            producer.send("orders", b"%d" % i, key=b"%d" % i).result(timeout=30)
    with pytest.raises(AuthenticationError):
        logq.Admin(two, **sasl("app", "wrong")).close()
