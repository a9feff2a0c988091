"""SCRAM credentials and listener endpoints in ZooKeeper (a real server): Kafka's /config/users/<user>
format, every broker sees a new or changed user within a second through its watches, the first admin
written with no broker running, one SASL secret for the cluster, every listener in the registration."""

from __future__ import annotations

import json
import time
import urllib.parse

import pytest

from logq.coordinator import BrokerInfo, Endpoint
from logq.coordinator.credentials import UnknownCredentialError
from logq.coordinator.zk_layout import split_connect
from logq.coordinator.zookeeper import ZooKeeperCoordinator, write_user_to_zookeeper
from logq.security.scram import make_credential, parse_credential
from tests.coordinator.test_zookeeper import cluster, eventually, raw_client, run

ENDPOINTS = (
    Endpoint("CLIENTS", "broker1.example", 9093, "SASL_SSL"),
    Endpoint("LOCAL", "127.0.0.1", 9092, "PLAINTEXT"),
)


def test_a_user_is_usable_on_every_broker_within_a_second(zk_connect: str) -> None:
    credential = make_credential("SCRAM-SHA-256", "pw")

    async def scenario() -> None:
        async with cluster(zk_connect) as c:
            one, two = await c.start(1), await c.start(2)
            assert one.sasl_secret() == two.sasl_secret()
            assert len(one.sasl_secret()) == 32
            await one.upsert_credential("ali ce/1", credential)
            started = time.monotonic()
            await eventually(lambda: "ali ce/1" in two.credentials(), "the user on broker 2", within=1.0)
            assert two.credentials()["ali ce/1"]["SCRAM-SHA-256"] == credential
            assert time.monotonic() - started < 1.0
            changed = make_credential("SCRAM-SHA-256", "pw2")
            await two.upsert_credential("ali ce/1", changed)
            await eventually(
                lambda: one.credentials()["ali ce/1"]["SCRAM-SHA-256"] == changed,
                "the change on broker 1",
                1.0,
            )
            await one.delete_credential("ali ce/1", None)
            await eventually(lambda: "ali ce/1" not in two.credentials(), "the deletion on broker 2", 1.0)
            with pytest.raises(UnknownCredentialError):
                await one.delete_credential("ali ce/1", "SCRAM-SHA-256")

    run(scenario())


def test_credentials_are_stored_in_kafkas_format(zk_connect: str) -> None:
    credential = make_credential("SCRAM-SHA-512", "secret-pw", 8192)
    write_user_to_zookeeper(zk_connect, "bob", [credential])  # no broker running: the first admin
    hosts, chroot = split_connect(zk_connect)
    client = raw_client(hosts)
    try:
        data, _ = client.get(f"{chroot}/config/users/{urllib.parse.quote('bob', safe='')}")
    finally:
        client.stop()
        client.close()
    assert b"secret-pw" not in data
    record = json.loads(data)
    assert record["version"] == 1
    assert parse_credential("SCRAM-SHA-512", record["config"]["SCRAM-SHA-512"]) == credential

    async def scenario() -> None:
        async with cluster(zk_connect) as c:
            member = await c.start(1)
            assert member.credentials()["bob"]["SCRAM-SHA-512"] == credential

    run(scenario())


def test_the_registration_carries_every_listener(zk_connect: str) -> None:
    async def scenario() -> None:
        one = ZooKeeperCoordinator(zk_connect, BrokerInfo(1, "127.0.0.1", 9092, endpoints=ENDPOINTS))
        async with cluster(zk_connect) as c:
            await one.start()
            c.members.append(one)
            two = await c.start(2)
            await eventually(lambda: len(two.brokers()) == 2, "both brokers")
            seen = next(b for b in two.brokers() if b.broker_id == 1)
            assert seen.endpoints == ENDPOINTS
            assert seen.address_for("CLIENTS") == ("broker1.example", 9093)
            assert seen.address_for("OTHER") is None

    run(scenario())
