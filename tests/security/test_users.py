"""Users over the wire (DescribeUserScramCredentials / AlterUserScramCredentials), and logq's own client
and CLI over every security protocol: the CLI as a subprocess (passwords on stdin or in the
environment, never as arguments), confluent-kafka's AdminClient as a second, independent client."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

import logq
from logq.errors import AuthenticationError
from tests.security.conftest import SecureBroker

ROOT = Path(__file__).resolve().parents[2]
PROTOCOLS = {  # case -> (listener, client settings)
    "ssl": ("TLS", {"security_protocol": "SSL"}),
    "ssl-client-cert": ("TLS", {"security_protocol": "SSL", "cert": True}),
    "sasl-plain": ("SASL", {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN"}),
    "sasl-scram-256": ("SASL", {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-256"}),
    "sasl-scram-512": ("SASL", {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-512"}),
    "sasl-ssl": ("SASL_TLS", {"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512"}),
}


def logq_cli(
    broker: SecureBroker, listener: str, *args: str, password: str | None = None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "LOGQ_PASSWORD"}
    if password is not None:
        env["LOGQ_PASSWORD"] = password
    command = [sys.executable, "-m", "logq_cli.main", "-b", broker.address(listener), *args]
    return subprocess.run(
        command, input=stdin, capture_output=True, text=True, timeout=60, check=False, cwd=ROOT, env=env
    )


def admin_options(broker: SecureBroker) -> list[str]:
    return ["--ca-file", str(broker.certs.ca), "--user", "admin"]


def client_settings(broker: SecureBroker, case: str, user: str, password: str) -> dict[str, object]:
    _, options = PROTOCOLS[case]
    settings: dict[str, object] = {"security_protocol": options["security_protocol"]}
    if "SSL" in str(options["security_protocol"]):
        settings["ssl_cafile"] = str(broker.certs.ca)
    if options.get("cert"):
        cert, key = broker.certs.clients["alice"]
        settings["ssl_certfile"], settings["ssl_keyfile"] = str(cert), str(key)
    if "sasl_mechanism" in options:
        settings.update(sasl_mechanism=options["sasl_mechanism"], sasl_username=user, sasl_password=password)
    return settings


@pytest.mark.parametrize("case", list(PROTOCOLS))
def test_logqs_client_produces_and_consumes_in_a_group(secure_broker: SecureBroker, case: str) -> None:
    listener, _ = PROTOCOLS[case]
    settings = client_settings(secure_broker, case, "alice", "alice-secret")
    queue = f"logq-{case}-{uuid.uuid4().hex[:6]}"
    bootstrap = secure_broker.address(listener)
    with logq.Admin(bootstrap, **settings) as admin:
        admin.create_queue(queue, partitions=2)
    with logq.Producer(bootstrap, **settings) as producer:
        for i in range(10):
            producer.send(queue, b"v%d" % i).result(timeout=30)
    consumer = logq.Consumer(
        bootstrap, group_id=f"g-{queue}", auto_offset_reset="earliest", enable_auto_commit=False, **settings
    )
    try:
        consumer.subscribe([queue])
        got: list[bytes] = []
        for _ in range(30):
            got += [r.value for r in consumer.poll(timeout=1.0) if r.value is not None]
            if len(got) == 10:
                break
        consumer.commit()
    finally:
        consumer.close()
    assert sorted(got) == sorted(b"v%d" % i for i in range(10))


@pytest.mark.parametrize("case", ["sasl-scram-256", "sasl-plain", "sasl-ssl"])
def test_logqs_client_is_refused_a_wrong_password_without_retrying(
    secure_broker: SecureBroker, case: str
) -> None:
    listener, _ = PROTOCOLS[case]
    settings = client_settings(secure_broker, case, "alice", "wrong")
    with pytest.raises(AuthenticationError, match="invalid credentials") as refused:
        logq.Admin(secure_broker.address(listener), **settings).close()
    assert not refused.value.retriable


@pytest.mark.parametrize("case", list(PROTOCOLS))
def test_the_cli_produces_and_consumes_over_each_protocol(secure_broker: SecureBroker, case: str) -> None:
    listener, options = PROTOCOLS[case]
    flags = ["--security-protocol", str(options["security_protocol"])]
    if "SSL" in flags[1]:
        flags += ["--ca-file", str(secure_broker.certs.ca)]
    if options.get("cert"):
        cert, key = secure_broker.certs.clients["alice"]
        flags += ["--cert-file", str(cert), "--key-file", str(key)]
    if "sasl_mechanism" in options:
        flags += ["--sasl-mechanism", str(options["sasl_mechanism"]), "--user", "alice"]
    queue = f"cli-{case}-{uuid.uuid4().hex[:6]}"
    created = logq_cli(secure_broker, listener, *flags, "queue", "create", queue, password="alice-secret")
    assert created.returncode == 0, created.stderr
    produced = logq_cli(
        secure_broker, listener, *flags, "produce", queue, password="alice-secret", stdin="a\nb\n"
    )
    assert produced.returncode == 0, produced.stderr
    consumed = logq_cli(
        secure_broker, listener, *flags, "consume", queue, "-g", f"g-{queue}", "-o", "beginning", "-e",
        password="alice-secret",
    )  # fmt: skip
    assert consumed.returncode == 0, consumed.stderr
    assert consumed.stdout.splitlines() == ["a", "b"]


def test_the_cli_refuses_in_one_line(secure_broker: SecureBroker, tmp_path: Path) -> None:
    wrong = logq_cli(secure_broker, "SASL", "--user", "alice", "queue", "list", password="wrong")
    assert wrong.returncode == 1
    assert wrong.stderr.strip().count("\n") == 0
    assert "invalid credentials" in wrong.stderr
    no_password = logq_cli(secure_broker, "SASL", "--user", "alice", "queue", "list")
    assert no_password.returncode == 1
    assert "needs a password" in no_password.stderr
    untrusted = logq_cli(secure_broker, "TLS", "--security-protocol", "SSL", "queue", "list")
    assert untrusted.returncode == 1
    assert "could not be verified" in untrusted.stderr
    plaintext_at_sasl = logq_cli(secure_broker, "SASL", "queue", "list")
    assert plaintext_at_sasl.returncode == 1
    assert "TLS or SASL" in plaintext_at_sasl.stderr
    secret = tmp_path / "password"
    secret.write_text("alice-secret\n")
    from_file = logq_cli(
        secure_broker, "SASL", "--user", "alice", "--password-file", str(secret), "queue", "list"
    )
    assert from_file.returncode == 0, from_file.stderr
    for result in (wrong, no_password, untrusted, plaintext_at_sasl):
        assert "Traceback" not in result.stderr


def test_users_are_created_changed_listed_and_deleted_with_the_cli(secure_broker: SecureBroker) -> None:
    admin = admin_options(secure_broker)
    name = f"app-{uuid.uuid4().hex[:6]}"

    def login(password: str) -> subprocess.CompletedProcess[str]:
        return logq_cli(secure_broker, "SASL", "--user", name, "queue", "list", password=password)

    created = logq_cli(
        secure_broker, "SASL_TLS", *admin, "user", "create", name, password="admin-secret", stdin="first-pw\n"
    )
    assert created.returncode == 0, created.stderr
    assert "first-pw" not in created.stdout + created.stderr
    assert login("first-pw").returncode == 0
    again = logq_cli(
        secure_broker, "SASL_TLS", *admin, "user", "create", name, password="admin-secret", stdin="x\n"
    )
    assert again.returncode == 1
    assert "exists" in again.stderr
    listed = logq_cli(
        secure_broker, "SASL_TLS", *admin, "--format", "json", "user", "list", password="admin-secret"
    )
    assert listed.returncode == 0, listed.stderr
    assert f'"user":"{name}"' in listed.stdout
    assert "first-pw" not in listed.stdout
    changed = logq_cli(
        secure_broker,
        "SASL_TLS",
        *admin,
        "user",
        "passwd",
        name,
        password="admin-secret",
        stdin="second-pw\n",
    )
    assert changed.returncode == 0, changed.stderr
    assert login("first-pw").returncode == 1
    assert login("second-pw").returncode == 0
    deleted = logq_cli(secure_broker, "SASL_TLS", *admin, "user", "delete", name, password="admin-secret")
    assert deleted.returncode == 0, deleted.stderr
    assert login("second-pw").returncode == 1
    missing = logq_cli(secure_broker, "SASL_TLS", *admin, "user", "delete", name, password="admin-secret")
    assert missing.returncode == 1
    assert f"no user {name}" in missing.stderr


def test_confluent_kafkas_admin_client_manages_users(secure_broker: SecureBroker) -> None:
    """An independent implementation of APIs 50/51 (flexible versions) against logq's."""
    from confluent_kafka import KafkaException, Producer
    from confluent_kafka.admin import (
        AdminClient,
        ScramCredentialInfo,
        ScramMechanism,
        UserScramCredentialDeletion,
        UserScramCredentialUpsertion,
    )

    conf = {
        "bootstrap.servers": secure_broker.address("SASL_TLS"),
        "security.protocol": "SASL_SSL",
        "ssl.ca.location": str(secure_broker.certs.ca),
        "sasl.mechanism": "SCRAM-SHA-256",
        "sasl.username": "admin",
        "sasl.password": "admin-secret",
    }
    admin = AdminClient(conf)
    name = f"ck-{uuid.uuid4().hex[:6]}"
    upsert = UserScramCredentialUpsertion(
        name, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192), b"ck-password", b"some-salt-bytes"
    )
    admin.alter_user_scram_credentials([upsert])[name].result(timeout=30)
    described = admin.describe_user_scram_credentials([name])[name].result(timeout=30)
    assert [(c.mechanism, c.iterations) for c in described.scram_credential_infos] == [
        (ScramMechanism.SCRAM_SHA_512, 8192)
    ]

    producer = Producer(
        {**conf, "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": name, "sasl.password": "ck-password"}
    )
    producer.produce(f"q-{name}", b"hello")
    assert producer.flush(30) == 0

    too_few = UserScramCredentialUpsertion(
        name, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 1000), b"pw", b"salt"
    )
    with pytest.raises(KafkaException, match="iterations"):
        admin.alter_user_scram_credentials([too_few])[name].result(timeout=30)
    deletion = UserScramCredentialDeletion(name, ScramMechanism.SCRAM_SHA_512)
    admin.alter_user_scram_credentials([deletion])[name].result(timeout=30)
    with pytest.raises(KafkaException, match=r"RESOURCE_NOT_FOUND|does not exist"):
        admin.alter_user_scram_credentials([deletion])[name].result(timeout=30)
    with pytest.raises(KafkaException, match=r"RESOURCE_NOT_FOUND|does not exist"):
        admin.describe_user_scram_credentials([name])[name].result(timeout=30)
