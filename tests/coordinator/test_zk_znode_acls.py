"""ZooKeeper ACLs on logq's own znodes (Kafka's ``zookeeper.set.acl``), against a real server: every
znode a coordinator creates, the chroot and the persistent parents included, is writable by logq's
digest user only and world-readable unless secret; a plain ZooKeeper client reads nothing secret and
changes nothing; wrong credentials are refused at start in one line; a cluster made without ACLs gets
them afterwards (``zookeeper_acl_plan``)."""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError
from kazoo.security import ACL, Id, Permissions, make_digest_acl_credential

from logq.coordinator import BrokerInfo
from logq.coordinator.zk_auth import DIGEST_ENV, ZkDigest, load_zk_digest
from logq.coordinator.zk_layout import SECRET_ROOTS, ZooKeeperAccessError, split_connect
from logq.coordinator.zookeeper import ZooKeeperCoordinator, write_user_to_zookeeper, zookeeper_acl_plan
from logq.errors import ConfigurationError, UnsafePermissionsError
from logq.permissions import write_private
from logq.security.acl import (
    AccessControlEntry,
    AclBinding,
    AclOperation,
    AclPermissionType,
    PatternType,
    ResourcePattern,
    ResourceType,
)
from logq.security.scram import make_credential
from tests.coordinator.test_zookeeper import cluster, raw_client, run

LOGQ = ZkDigest("logq", "zk-secret")
OWNER = ACL(Permissions.ALL, Id("digest", make_digest_acl_credential("logq", "zk-secret")))
WORLD_READ = ACL(Permissions.READ, Id("world", "anyone"))
READERS = AclBinding(
    ResourcePattern(ResourceType.TOPIC, "orders-", PatternType.PREFIXED),
    AccessControlEntry("User:alice", "*", AclOperation.READ, AclPermissionType.ALLOW),
)


def walk(client: KazooClient, root: str) -> Iterator[str]:
    yield root
    for child in sorted(client.get_children(root)):
        yield from walk(client, f"{root.rstrip('/')}/{child}")


def secret(relative: str) -> bool:
    return any(relative == r or relative.startswith(r + "/") for r in SECRET_ROOTS)


async def populate(connect: str, queue: str = "orders", **options: object) -> None:
    """Two coordinators (one becomes controller) make every kind of znode: registrations, the
    controller, a queue with partition states, a producer-id block, a user, ACLs and their notification."""
    async with cluster(connect) as c:
        one, _ = await c.start(1, **options), await c.start(2, **options)
        await one.create_queue(queue, 2, 2, {})
        await one.allocate_producer_id()
        await one.upsert_credential("alice", make_credential("SCRAM-SHA-256", "alice-pw"))
        await one.create_acls([READERS])


@pytest.fixture
def secured(zk_connect: str) -> str:
    write_user_to_zookeeper(zk_connect, "admin", [make_credential("SCRAM-SHA-512", "pw")], digest=LOGQ)
    run(populate(zk_connect, digest=LOGQ, set_acl=True))
    return zk_connect


def test_every_znode_is_the_digest_users_and_world_readable_unless_secret(secured: str) -> None:
    hosts, chroot = split_connect(secured)
    client = raw_client(hosts)
    client.add_auth("digest", LOGQ.auth)
    try:
        paths = list(walk(client, chroot))
        assert f"{chroot}/config/users/admin" in paths  # written by security init, before any broker
        assert f"{chroot}/brokers/topics/orders/partitions/1/state" in paths
        assert any(p.startswith(f"{chroot}/kafka-acl-extended-changes/acl_changes_") for p in paths)
        assert f"{chroot}/latest_producer_id_block" in paths
        for path in paths:
            acls, _ = client.get_acls(path)
            relative = path[len(chroot) :] or "/"
            expected = [OWNER] if secret(relative) else [OWNER, WORLD_READ]
            assert sorted(acls) == sorted(expected), path
        # The chroot itself: nobody else may create anything in it.
        assert sorted(client.get_acls(chroot)[0]) == sorted([OWNER, WORLD_READ])
    finally:
        client.stop()
        client.close()


def test_a_client_without_credentials_reads_nothing_secret_and_changes_nothing(secured: str) -> None:
    hosts, chroot = split_connect(secured)
    client = raw_client(hosts)
    try:
        # What Kafka leaves world-readable: the cluster id, queues, partition states.
        assert b'"id"' in client.get(f"{chroot}/cluster/id")[0]
        assert client.get(f"{chroot}/brokers/topics/orders")[0].startswith(b"{")
        secrets = [
            f"{chroot}/config/users/{urllib.parse.quote('alice', safe='')}",
            f"{chroot}/logq/sasl_secret",
            f"{chroot}/kafka-acl-extended/prefixed/Topic/orders-",
        ]
        for path in secrets:
            with pytest.raises(NoAuthError):
                client.get(path)
        with pytest.raises(NoAuthError):
            client.get_children(f"{chroot}/config/users")  # user names are secret too
        state = f"{chroot}/brokers/topics/orders/partitions/0/state"
        writes: list[Callable[[], object]] = [
            lambda: client.create(f"{chroot}/intruder", b"x"),
            lambda: client.create(f"{chroot}/brokers/ids/99", b"{}", ephemeral=True),
            lambda: client.create(f"{chroot}/admin/delete_topics/orders"),
            lambda: client.create(f"{chroot}/config/users/mallory", b"{}"),
            lambda: client.set(state, b'{"leader":99}'),
            lambda: client.set(f"{chroot}/logq/sasl_secret", b"known"),
            lambda: client.delete(state),
            lambda: client.delete(f"{chroot}/kafka-acl-extended/prefixed/Topic/orders-"),
            lambda: client.set_acls(
                f"{chroot}/brokers/topics/orders", [ACL(Permissions.ALL, Id("world", "anyone"))]
            ),
        ]
        for write in writes:
            with pytest.raises(NoAuthError):
                write()
        assert not client.exists(f"{chroot}/intruder")
        assert b'"leader":99' not in client.get(state)[0]
    finally:
        client.stop()
        client.close()


def test_wrong_or_missing_credentials_are_refused_at_start_in_one_line(secured: str) -> None:
    cases = [
        ({"digest": ZkDigest("logq", "guess")}, "refuses digest user 'logq': wrong password"),
        ({"digest": ZkDigest("mallory", "pw")}, "locked by ACLs to digest user 'logq', not 'mallory'"),
        ({}, "locked by ACLs to digest user 'logq', and no ZooKeeper credentials were given"),
    ]
    for options, message in cases:
        member = ZooKeeperCoordinator(secured, BrokerInfo(3, "127.0.0.1", 9003), **options)  # type: ignore[arg-type]
        with pytest.raises(ZooKeeperAccessError, match=message) as refused:
            run(member.start())
        assert "\n" not in str(refused.value)
    # The first admin cannot be written without the credentials either.
    with pytest.raises(ZooKeeperAccessError):
        write_user_to_zookeeper(secured, "root", [make_credential("SCRAM-SHA-256", "pw")])


def test_acls_are_applied_to_a_cluster_made_without_them(zk_connect: str) -> None:
    run(populate(zk_connect))  # no ACLs: everything open, as before zookeeper.set.acl
    hosts, chroot = split_connect(zk_connect)
    plain = raw_client(hosts)
    try:
        assert plain.get(f"{chroot}/logq/sasl_secret")[0]
        planned = zookeeper_acl_plan(zk_connect, LOGQ, apply=False)
        assert {"/", "/logq/sasl_secret", "/config/users/alice", "/brokers/topics/orders"} <= set(planned)
        assert plain.get(f"{chroot}/logq/sasl_secret")[0]  # a plan changes nothing
        assert zookeeper_acl_plan(zk_connect, LOGQ, apply=True) == planned
        with pytest.raises(NoAuthError):
            plain.get(f"{chroot}/logq/sasl_secret")
        with pytest.raises(NoAuthError):
            plain.create(f"{chroot}/intruder")
        assert zookeeper_acl_plan(zk_connect, LOGQ, apply=False) == []
        run(
            populate(zk_connect, "invoices", digest=LOGQ, set_acl=True)
        )  # brokers with the credentials carry on
    finally:
        plain.stop()
        plain.close()


def test_the_digest_credentials_come_from_a_private_file_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(DIGEST_ENV, raising=False)
    assert load_zk_digest(None) is None
    monkeypatch.setenv(DIGEST_ENV, "logq:from-env")
    assert load_zk_digest(None) == ZkDigest("logq", "from-env")
    digest_file = tmp_path / "zk.digest"
    write_private(digest_file, b"logq:pass:word\n")
    assert load_zk_digest(digest_file) == ZkDigest("logq", "pass:word")  # the file wins
    assert "pass:word" not in repr(load_zk_digest(digest_file))
    write_private(digest_file, b"no-colon\n")
    with pytest.raises(ConfigurationError, match=r"zk\.digest: expected user:password"):
        load_zk_digest(digest_file)
    os.chmod(digest_file, 0o640)
    with pytest.raises(UnsafePermissionsError):
        load_zk_digest(digest_file)
