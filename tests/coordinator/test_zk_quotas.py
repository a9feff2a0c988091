"""Client quotas in ZooKeeper (a real server): Kafka's entity znodes (/config/users/<user>,
/config/users/<user>/clients/<client-id>, /config/clients/<client-id>, <default>), every broker's
listener has a change within a second, and a user's quotas and SCRAM credentials share its znode
without either change losing the other."""

from __future__ import annotations

import json
import time

from logq.coordinator.zk_layout import split_connect
from logq.quotas import DEFAULT, QuotaEntity
from logq.security.scram import make_credential
from tests.coordinator.test_zookeeper import cluster, eventually, raw_client, run

ALICE_APP = QuotaEntity("alice", "app")
DEFAULT_CLIENT = QuotaEntity(None, DEFAULT)
ALICE = QuotaEntity("alice", None)


def test_quotas_reach_every_broker_within_a_second_in_kafkas_znodes(zk_connect: str) -> None:
    async def scenario() -> None:
        async with cluster(zk_connect) as c:
            one, two = await c.start(1), await c.start(2)
            heard: list[object] = []
            two.add_client_quota_listener(heard.append)
            await one.alter_client_quotas(
                {ALICE_APP: {"producer_byte_rate": 1024.0}, DEFAULT_CLIENT: {"request_percentage": 12.5}}
            )
            assert one.client_quotas()[ALICE_APP] == {"producer_byte_rate": 1024.0}
            started = time.monotonic()
            await eventually(lambda: len(two.client_quotas()) == 2, "the quotas on broker 2", within=1.0)
            assert time.monotonic() - started < 1.0
            assert two.client_quotas()[DEFAULT_CLIENT] == {"request_percentage": 12.5}
            assert heard
            # removed through the other broker: the entity goes
            await two.alter_client_quotas({ALICE_APP: {"producer_byte_rate": None}})
            await eventually(lambda: ALICE_APP not in one.client_quotas(), "the removal on broker 1", 1.0)
        hosts, chroot = split_connect(zk_connect)
        client = raw_client(hosts)
        try:
            data, _ = client.get(f"{chroot}/config/clients/<default>")
            assert json.loads(data) == {"version": 1, "config": {"request_percentage": "12.5"}}
            assert client.exists(f"{chroot}/config/users/alice/clients/app") is None
        finally:
            client.stop()
            client.close()

    run(scenario())


def test_a_users_quotas_and_credentials_share_its_znode(zk_connect: str) -> None:
    credential = make_credential("SCRAM-SHA-256", "pw")

    async def scenario() -> None:
        async with cluster(zk_connect) as c:
            one = await c.start(1)
            await one.upsert_credential("alice", credential)
            await one.alter_client_quotas({ALICE: {"consumer_byte_rate": 2048.0}})
            assert one.credentials()["alice"]["SCRAM-SHA-256"] == credential
            changed = make_credential("SCRAM-SHA-256", "pw2")
            await one.upsert_credential("alice", changed)
            await eventually(
                lambda: one.credentials()["alice"]["SCRAM-SHA-256"] == changed, "the new credential", 2.0
            )
            assert one.client_quotas()[ALICE] == {"consumer_byte_rate": 2048.0}
            # the last credential deleted: the quotas stay; the last quota removed: the znode goes
            await one.delete_credential("alice", None)
            await eventually(lambda: "alice" not in one.credentials(), "the deletion", 2.0)
            assert one.client_quotas()[ALICE] == {"consumer_byte_rate": 2048.0}
            await one.alter_client_quotas({ALICE: {"consumer_byte_rate": None}})
            assert ALICE not in one.client_quotas()

    run(scenario())
