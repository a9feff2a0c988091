"""Security in cluster mode, with real broker processes and a real ZooKeeper.

Three brokers whose inter-broker listener is SASL_SSL, logging in to each other as ``broker`` (a super
user) with a password from a private file, with the authorizer on and ZooKeeper ACLs on: an RF 3 queue
replicates (the leaders log the followers' logins as User:broker; acks=all succeeds; replicas are
byte-identical), a user who claims to be a replica is refused, a ZooKeeper client without logq's
credentials reads nothing secret and changes nothing, and a broker with wrong ZooKeeper credentials
refuses to start with one line. Then two brokers on an SSL inter-broker listener, known to each other by
their certificate, and the warning of a broker whose principal is not a super user.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError
from kazoo.security import ACL, Id, Permissions

import logq
from logq.client.connection import BrokerConnection
from logq.client.security import SecuritySettings
from logq.coordinator.zk_layout import split_connect
from logq.coordinator.zookeeper import write_user_to_zookeeper
from logq.error_codes import ErrorCode
from logq.errors import InvalidReplicationFactorError
from logq.permissions import write_private
from logq.protocol import messages as m
from logq.security.acl import (
    AccessControlEntry,
    AclBinding,
    AclOperation,
    AclPermissionType,
    ResourcePattern,
    ResourceType,
)
from logq.security.certs import DevCertificates, write_dev_certificates
from logq.security.scram import MECHANISMS, make_credential
from logq.segments.files import LOG_SUFFIX, partition_dir_name
from tests.broker_process import ROOT, BrokerProcess
from tests.cluster.conftest import SESSION_TIMEOUT_MS, wait_for

USERS = {"admin": "admin-secret", "broker": "broker-secret", "app": "app-secret"}
ZK_DIGEST = "logq:zk-secret"
QUEUE = "orders"
REPLICATED = "replicated"  # the replication test's own queue
PARTITIONS = 3
MESSAGES = 300


@dataclass
class SecureCluster:
    connect: str
    root: Path
    certs: DevCertificates
    brokers: dict[int, BrokerProcess]
    settings: dict[str, Any]

    def client(self, user: str, broker_id: int = 1, **options: Any) -> dict[str, Any]:
        """A logq client's settings: SASL_SSL on ``broker_id``'s CLIENTS listener as ``user``."""
        return {
            "bootstrap": self.brokers[broker_id].address("CLIENTS"),
            "security_protocol": "SASL_SSL",
            "ssl_cafile": str(self.certs.ca),
            "sasl_username": user,
            "sasl_password": USERS[user],
            **options,
        }


def security(cluster: SecureCluster, user: str) -> SecuritySettings:
    return SecuritySettings(
        security_protocol="SASL_SSL",
        ssl_cafile=str(cluster.certs.ca),
        sasl_username=user,
        sasl_password=USERS[user],
    )


def call(address: str, settings: SecuritySettings, body: Any, version: int) -> Any:
    """One request over a fresh logq connection (TLS, then the SASL login)."""

    async def exchange() -> Any:
        host, port = address.rsplit(":", 1)
        connection = await BrokerConnection.open(host, int(port), security=settings)
        try:
            return await connection.request(body, version)
        finally:
            await connection.close()

    return asyncio.run(exchange())


def logq_cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "logq_cli.main", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith("LOGQ_")},
    )


def secret_file(path: Path, text: str) -> Path:
    write_private(path, f"{text}\n".encode())
    return path


def raw_zookeeper(connect: str, digest: str | None = None) -> KazooClient:
    auth = [("digest", digest)] if digest is not None else None
    client = KazooClient(hosts=split_connect(connect)[0], timeout=6.0, auth_data=auth)
    client.start(timeout=10)
    return client


def start_all(brokers: dict[int, BrokerProcess]) -> None:
    with ThreadPoolExecutor(len(brokers)) as pool:
        for started in [pool.submit(b.start) for b in brokers.values()]:
            started.result()


@pytest.fixture(scope="module")
def secure_cluster(tmp_path_factory: pytest.TempPathFactory, zookeeper: str) -> Iterator[SecureCluster]:
    root = tmp_path_factory.mktemp("secure-cluster")
    connect = f"{zookeeper}/logq-secure-{uuid.uuid4().hex[:8]}"
    certs = write_dev_certificates(root / "certs", [])
    digest_file = secret_file(root / "zookeeper.digest", ZK_DIGEST)
    # The users, before any broker runs, through the CLI: it authenticates to ZooKeeper as brokers do,
    # so the chroot and the credentials' znodes get their ACLs from the start.
    for user, password in USERS.items():
        made = logq_cli(
            "security", "init", "--zookeeper", connect, "--admin", user,
            "--zookeeper-digest-file", str(digest_file), stdin=f"{password}\n",
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
    settings = {
        "zookeeper.connect": connect,
        "zookeeper.session.timeout.ms": SESSION_TIMEOUT_MS,
        "zookeeper.set.acl": True,
        "zookeeper.digest.file": str(digest_file),
        "inter.broker.listener.name": "INTERNAL",
        "inter.broker.sasl.username": "broker",
        "inter.broker.sasl.password.file": str(secret_file(root / "broker.password", USERS["broker"])),
        "ssl.certificate.location": str(certs.broker_cert),
        "ssl.key.location": str(certs.broker_key),
        "ssl.ca.location": str(certs.ca),
        "authorizer.enable": True,
        "super.users": "User:admin;User:broker",
        "group.initial.rebalance.delay.ms": 0,
        "offsets.topic.num.partitions": 2,
    }
    brokers = {
        i: BrokerProcess(
            root / f"broker-{i}",
            listeners={"CLIENTS": "SASL_SSL", "INTERNAL": "SASL_SSL"},
            broker={"broker.id": i, **settings},
        )
        for i in (1, 2, 3)
    }
    cluster = SecureCluster(connect, root, certs, brokers, settings)
    try:
        start_all(brokers)
        admin = security(cluster, "admin")
        for i, broker in brokers.items():
            wait_for(
                lambda b=broker: (
                    len(call(b.address("CLIENTS"), admin, m.MetadataRequest(topics=[]), 1).brokers) == 3
                ),
                f"broker {i} seeing the three brokers",
                timeout=30,
            )
        yield cluster
    finally:
        for broker in brokers.values():
            broker.kill()


def ensure_queue(cluster: SecureCluster) -> None:
    """An RF 3 queue for the tests that need one, whichever runs first."""
    with logq.Admin(**cluster.client("admin")) as admin:
        if QUEUE not in {q.name for q in admin.list_queues()}:
            admin.create_queue(QUEUE, partitions=PARTITIONS, replication_factor=3)


def segment_bytes(data_dir: Path, queue: str, partition: int) -> bytes:
    directory = data_dir / partition_dir_name(queue, partition)
    return b"".join(f.read_bytes() for f in sorted(directory.glob(f"*{LOG_SUFFIX}")))


def test_followers_fetch_as_the_broker_principal_and_acks_all_is_replicated(
    secure_cluster: SecureCluster,
) -> None:
    cluster = secure_cluster
    with logq.Admin(**cluster.client("admin")) as admin:
        admin.create_queue(REPLICATED, partitions=PARTITIONS, replication_factor=3)
    with logq.Producer(**cluster.client("admin", 2, acks="all")) as producer:
        futures = [producer.send(REPLICATED, b"value-%d" % i, key=b"%d" % i) for i in range(MESSAGES)]
        acked = [f.result(timeout=60) for f in futures]
    assert {r.partition for r in acked} == set(range(PARTITIONS))

    def replicated() -> bool:
        with logq.Admin(**cluster.client("admin", 3)) as admin:
            described = admin.describe_queue(REPLICATED)
        in_sync = all(sorted(p.isr) == [1, 2, 3] for p in described.partitions)
        return in_sync and sum(p.log_end for p in described.partitions) == MESSAGES

    wait_for(replicated, "every partition's high watermark at the end, with all three in sync", timeout=30)
    for partition in range(PARTITIONS):
        copies = {segment_bytes(b.data_dir, REPLICATED, partition) for b in cluster.brokers.values()}
        assert len(copies) == 1, f"the replicas of partition {partition} differ"
        assert copies.pop(), f"partition {partition} is empty"
    with logq.Admin(**cluster.client("admin")) as admin:
        leaders = {p.leader for p in admin.describe_queue(REPLICATED).partitions}
    login = re.compile(r"authenticated User:broker from 127\.0\.0\.1 with SCRAM-SHA-256 on listener INTERNAL")
    for leader in leaders:  # each leader saw its two followers log in as the broker principal
        text = cluster.brokers[leader].log_text
        assert len(login.findall(text)) >= 2, text[-3000:]
    for broker in cluster.brokers.values():
        assert "not in super.users" not in broker.log_text
        assert "authentication failed" not in broker.log_text


def test_a_user_claiming_to_be_a_replica_is_refused(secure_cluster: SecureCluster) -> None:
    cluster = secure_cluster
    ensure_queue(cluster)
    with logq.Admin(**cluster.client("admin")) as admin:
        admin.create_acls(
            [
                AclBinding(
                    ResourcePattern(ResourceType.TOPIC, QUEUE),
                    AccessControlEntry("User:app", "*", AclOperation.READ, AclPermissionType.ALLOW),
                )
            ]
        )
        leader = next(p.leader for p in admin.describe_queue(QUEUE).partitions if p.partition == 0)
    with logq.Producer(**cluster.client("admin", acks="all")) as producer:
        producer.send(QUEUE, b"for app", partition=0).result(timeout=30)
    address = cluster.brokers[leader].address("CLIENTS")

    def fetch(replica_id: int) -> m.FetchResponse:
        request = m.FetchRequest(
            replica_id=replica_id,
            max_wait_ms=0,
            min_bytes=1,
            max_bytes=1 << 20,
            isolation_level=0,
            session_id=0,
            session_epoch=-1,
            topics=[
                m.FetchTopic(
                    topic=QUEUE,
                    partitions=[
                        m.FetchPartition(
                            partition=p,
                            current_leader_epoch=-1,
                            fetch_offset=0,
                            log_start_offset=-1,
                            partition_max_bytes=1 << 20,
                        )
                        for p in range(PARTITIONS)
                    ],
                )
            ],
            forgotten_topics_data=[],
            rack_id="",
        )
        response: m.FetchResponse = call(address, security(cluster, "app"), request, 11)
        return response

    # The ACL reaches the leader through ZooKeeper's watches: as a consumer, app may read partition 0.
    wait_for(
        lambda: (p := fetch(-1).responses[0].partitions[0]).error_code == ErrorCode.NONE and p.records,
        "app reading partition 0 as a consumer",
    )
    # The same user, the same connection settings, claiming to be broker 2: refused on every partition.
    claimed = fetch(2).responses[0].partitions
    assert [p.error_code for p in claimed] == [ErrorCode.TOPIC_AUTHORIZATION_FAILED] * PARTITIONS
    assert not any(p.records for p in claimed)
    with logq.Admin(**cluster.client("admin")) as admin:
        assert all(sorted(p.isr) == [1, 2, 3] for p in admin.describe_queue(QUEUE).partitions)


def test_a_zookeeper_client_without_credentials_reads_no_secret_and_changes_nothing(
    secure_cluster: SecureCluster,
) -> None:
    ensure_queue(secure_cluster)
    chroot = split_connect(secure_cluster.connect)[1]
    plain = raw_zookeeper(secure_cluster.connect)
    owner = raw_zookeeper(secure_cluster.connect, ZK_DIGEST)
    try:
        registration, _ = plain.get(f"{chroot}/brokers/ids/1")  # world-readable, as in Kafka
        assert b"INTERNAL://127.0.0.1:" in registration
        for secret in ("/config/users/app", "/config/users/broker", "/logq/sasl_secret"):
            with pytest.raises(NoAuthError):
                plain.get(chroot + secret)
            assert owner.get(chroot + secret)[0]  # logq's credentials read it
        with pytest.raises(NoAuthError):
            plain.get_children(f"{chroot}/config/users")
        topic = f"{chroot}/brokers/topics/{QUEUE}"
        with pytest.raises(NoAuthError):
            plain.create(f"{chroot}/intruder")
        with pytest.raises(NoAuthError):
            plain.create(f"{chroot}/brokers/ids/9", b"{}", ephemeral=True)
        with pytest.raises(NoAuthError):
            plain.create(f"{chroot}/config/users/mallory", b"{}")
        with pytest.raises(NoAuthError):
            plain.set(f"{chroot}/controller_epoch", b"999")
        with pytest.raises(NoAuthError):
            plain.delete(f"{chroot}/brokers/ids/1")
        with pytest.raises(NoAuthError):
            plain.set(topic, b"{}")
        with pytest.raises(NoAuthError):
            plain.delete(f"{topic}/partitions/0/state")
        with pytest.raises(NoAuthError):
            plain.set_acls(topic, [ACL(Permissions.ALL, Id("world", "anyone"))])
        assert plain.get(f"{chroot}/controller_epoch")[0] != b"999"
        assert plain.get(topic)[0].startswith(b"{")
        assert plain.exists(f"{topic}/partitions/0/state")
        assert not plain.exists(f"{chroot}/intruder")
    finally:
        for client in (plain, owner):
            client.stop()
            client.close()


def test_a_broker_with_wrong_zookeeper_credentials_refuses_to_start_in_one_line(
    secure_cluster: SecureCluster,
) -> None:
    cluster = secure_cluster
    wrong = secret_file(cluster.root / "wrong.digest", "logq:guessed")
    cases = {
        "wrong password": (
            {"zookeeper.digest.file": str(wrong)},
            "refuses digest user 'logq': wrong password",
        ),
        "no credentials": (
            {"zookeeper.set.acl": False, "zookeeper.digest.file": None},
            "no ZooKeeper credentials",
        ),
        "acls without credentials": (
            {"zookeeper.digest.file": None},
            "zookeeper.set.acl needs ZooKeeper credentials: zookeeper.digest.file or $LOGQ_ZOOKEEPER_DIGEST",
        ),
    }
    for name, (changes, message) in cases.items():
        settings = {k: v for k, v in {**cluster.settings, **changes}.items() if v is not None}
        process = BrokerProcess(
            cluster.root / f"broker-9-{name.replace(' ', '-')}",
            listeners={"CLIENTS": "SASL_SSL", "INTERNAL": "SASL_SSL"},
            broker={"broker.id": 9, **settings},
        )
        result = subprocess.run(
            [
                sys.executable, "-m", "logq_cli.main", "broker", "start",
                "--config", str(process.config_path), "--data-dir", str(process.data_dir),
            ],
            capture_output=True, text=True, timeout=60, check=False, cwd=ROOT,
            env={k: v for k, v in os.environ.items() if not k.startswith("LOGQ_")},
        )  # fmt: skip
        errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
        assert result.returncode != 0, name
        assert len(errors) == 1, result.stderr
        assert message in errors[0], name
        assert "Traceback" not in result.stderr + result.stdout
    # Neither attempt registered: the cluster still has its three brokers.
    metadata = call(
        cluster.brokers[1].address("CLIENTS"), security(cluster, "admin"), m.MetadataRequest(topics=[]), 1
    )
    assert sorted(b.node_id for b in metadata.brokers) == [1, 2, 3]


def test_brokers_on_an_ssl_listener_are_known_by_their_certificate(tmp_path: Path, zk_connect: str) -> None:
    certs = write_dev_certificates(tmp_path / "certs", [])
    write_user_to_zookeeper(zk_connect, "admin", [make_credential(m, USERS["admin"]) for m in MECHANISMS])
    brokers = {
        i: BrokerProcess(
            tmp_path / f"broker-{i}",
            listeners={"CLIENTS": "SASL_PLAINTEXT", "INTERNAL": "SSL"},
            broker={
                "broker.id": i,
                "zookeeper.connect": zk_connect,
                "zookeeper.session.timeout.ms": SESSION_TIMEOUT_MS,
                "inter.broker.listener.name": "INTERNAL",
                "ssl.certificate.location": str(certs.broker_cert),
                "ssl.key.location": str(certs.broker_key),
                "ssl.ca.location": str(certs.ca),
                "ssl.client.auth": "required",
                # The development broker certificate is CN=logq broker,O=logq development.
                "ssl.principal.mapping.rules": "RULE:^CN=([^,]+),.*$/$1/, DEFAULT",
                "authorizer.enable": True,
                "super.users": "User:admin;User:logq broker",
                "offsets.topic.num.partitions": 2,
            },
        )
        for i in (1, 2)
    }
    try:
        start_all(brokers)
        admin = {
            "bootstrap": brokers[1].address("CLIENTS"),
            "security_protocol": "SASL_PLAINTEXT",
            "sasl_username": "admin",
            "sasl_password": USERS["admin"],
        }
        with logq.Admin(**admin) as client:
            wait_for(lambda: _create_when_both_registered(client), "a queue on both brokers", timeout=30)
        with logq.Producer(**admin, acks="all") as producer:
            for i in range(20):
                producer.send(QUEUE, b"%d" % i, partition=i % 2).result(timeout=30)
        with logq.Admin(**admin) as client:
            leaders = {p.leader for p in client.describe_queue(QUEUE).partitions}
        for leader in leaders:
            follower = brokers[3 - leader]
            # The follower's connection carried the broker certificate: its mapped subject is the principal.
            assert re.search(
                r"TLS client User:logq broker from .*127\.0\.0\.1.* on listener INTERNAL",
                brokers[leader].log_text,
            )
            assert "not in super.users" not in follower.log_text
        for partition in (0, 1):
            copies = {segment_bytes(b.data_dir, QUEUE, partition) for b in brokers.values()}
            assert len(copies) == 1
    finally:
        for broker in brokers.values():
            broker.kill()


def _create_when_both_registered(admin: logq.Admin) -> bool:
    try:
        admin.create_queue(QUEUE, partitions=2, replication_factor=2)
    except InvalidReplicationFactorError:
        return False  # the other broker has not registered yet
    return True


def test_a_broker_whose_principal_is_not_a_super_user_says_so(tmp_path: Path, zk_connect: str) -> None:
    broker = BrokerProcess(
        tmp_path / "broker",
        listeners={"INTERNAL": "SASL_PLAINTEXT"},
        broker={
            "broker.id": 1,
            "zookeeper.connect": zk_connect,
            "zookeeper.session.timeout.ms": SESSION_TIMEOUT_MS,
            "inter.broker.sasl.username": "replicator",
            "authorizer.enable": True,
            "super.users": "User:admin",
        },
        env={"LOGQ_INTER_BROKER_PASSWORD": "from-the-environment"},  # no password file: the variable
    )
    try:
        broker.start()
        assert (
            "this broker's principal User:replicator (inter-broker listener INTERNAL) is not in super.users"
            in broker.log_text
        )
    finally:
        broker.kill()
    # Without the variable (and without a password file) it does not start, in one line.
    result = subprocess.run(
        [
            sys.executable, "-m", "logq_cli.main", "broker", "start",
            "--config", str(broker.config_path), "--data-dir", str(broker.data_dir),
        ],
        capture_output=True, text=True, timeout=60, check=False, cwd=ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith("LOGQ_")},
    )  # fmt: skip
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == (
        "Error: inter-broker listener INTERNAL is SASL_PLAINTEXT: give the password of 'replicator' in "
        "inter.broker.sasl.password.file or $LOGQ_INTER_BROKER_PASSWORD"
    )
