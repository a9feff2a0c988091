"""ACL refusals for authenticated users, with every client: confluent-kafka, kafka-python, aiokafka, kcat,
logq's client and logq's command line, each logged in as its own user over SASL_SSL (SCRAM-SHA-256) on a
broker with the authorizer on and ``super.users = User:admin``.

Each client is refused with the error it surfaces for TOPIC_ (29) or GROUP_AUTHORIZATION_FAILED (30):
produce and consume without an ACL on the queue, consume without one on the group, create a queue
without CREATE, delete one without DELETE (only an admin may: ``delete.queue.enable`` is off and not
consulted); then the admin grants the missing ACL with ``logq acl add`` over SASL_SSL, and the same user
succeeds. Every user may WRITE some other queue, so idempotent producers get their id (KIP-679) and the
refusal is the queue's, not the cluster's.

Also on this broker: logq's CLI asks for the password on a terminal, and logq's admin client knows whom
the broker sees (the principal its delete-queue refusals name)."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest
from click.testing import CliRunner, Result

from logq import Admin
from logq.client.security import SecuritySettings
from logq.coordinator.credentials import write_user_offline
from logq.permissions import make_private_dir, write_private
from logq.security.certs import DevCertificates, write_dev_certificates
from logq.security.scram import make_credential
from logq_cli.main import main
from tests.broker_process import ROOT, BrokerProcess
from tests.security.matrix_clients import (
    DEADLINE_S,
    GROUP_REFUSED,
    TOPIC_REFUSED,
    AioKafka,
    ConfluentKafka,
    KafkaPython,
    Kcat,
    Login,
    LogqCli,
    LogqClient,
    MatrixClient,
    RefusedError,
)

ADMIN = "admin"
CLIENTS: dict[str, Callable[[Login, Callable[[], str]], MatrixClient]] = {
    "confluent-kafka": lambda login, _kcat: ConfluentKafka(login),
    "kafka-python": lambda login, _kcat: KafkaPython(login),
    "aiokafka": lambda login, _kcat: AioKafka(login),
    "kcat": lambda login, kcat: Kcat(login, kcat()),
    "logq-client": lambda login, _kcat: LogqClient(login),
    "logq-cli": lambda login, _kcat: LogqCli(login),
}
# Clients with an admin API that deletes queues (kcat has none).
DELETING = [name for name in CLIENTS if name != "kcat"]
LOGQ = ("logq-client", "logq-cli")


def password_of(user: str) -> str:
    return f"{user}-secret"


@dataclass
class MatrixBroker:
    process: BrokerProcess
    certs: DevCertificates
    root: Path

    @property
    def address(self) -> str:
        return self.process.address("SASL_TLS")

    def login(self, user: str) -> Login:
        password_file = self.root / f"{user}.password"
        if not password_file.exists():
            write_private(password_file, (password_of(user) + "\n").encode())
        return Login(self.address, self.certs.ca, user, password_of(user), password_file)

    def admin(self, *args: str, stdin: str | None = None) -> Result:
        """``logq`` as the super user over SASL_SSL, the password from $LOGQ_PASSWORD."""
        result = CliRunner().invoke(
            main,
            ["-b", self.address, "--ca-file", str(self.certs.ca), "--user", ADMIN, *args],
            input=stdin,
            env={"LOGQ_PASSWORD": password_of(ADMIN)},
        )
        assert result.exit_code == 0, result.output
        return result

    def grant(self, user: str, *flags: str) -> None:
        added = self.admin("acl", "add", "--allow-principal", f"User:{user}", *flags)
        assert "added" in added.output

    def queues(self) -> set[str]:
        listed: list[dict[str, Any]] = json.loads(self.admin("--format", "json", "queue", "list").stdout)
        return {q["queue"] for q in listed}


@pytest.fixture(scope="module")
def matrix_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MatrixBroker]:
    root = tmp_path_factory.mktemp("acl-matrix")
    certs = write_dev_certificates(root / "certs", [])
    data = root / "data"
    make_private_dir(data)
    for user in (ADMIN, *CLIENTS):
        write_user_offline(data, user, [make_credential("SCRAM-SHA-256", password_of(user))])
    process = BrokerProcess(
        data,
        listeners={"SASL_TLS": "SASL_SSL"},
        broker={
            "ssl.certificate.location": str(certs.broker_cert),
            "ssl.key.location": str(certs.broker_key),
            "sasl.enabled.mechanisms": "SCRAM-SHA-256",
            "authorizer.enable": True,
            "super.users": f"User:{ADMIN}",
            "delete.queue.enable": False,  # not consulted with an authorizer: DELETE on the queue is
            "auto.create.queues": True,  # so that kcat, which has no admin API, creates by producing
            "group.initial.rebalance.delay.ms": 0,
            "group.min.session.timeout.ms": 1000,
        },
    ).start()
    broker = MatrixBroker(process, certs, root)
    for user in CLIENTS:
        broker.grant(user, "--operation", "write", "--queue", f"{user}-elsewhere")
    yield broker
    process.kill()


@pytest.fixture
def client(request: pytest.FixtureRequest, matrix_broker: MatrixBroker) -> MatrixClient:
    name: str = request.param
    return CLIENTS[name](matrix_broker.login(name), lambda: str(request.getfixturevalue("kcat")))


def by_client(names: list[str]) -> Any:
    return pytest.mark.parametrize("client", names, indirect=True)


@pytest.mark.slow
@by_client(list(CLIENTS))
def test_no_acl_for_the_queue_then_granted(matrix_broker: MatrixBroker, client: MatrixClient) -> None:
    user = client.login.user
    queue, group = f"{user}-data", f"{user}-group"
    matrix_broker.admin("queue", "create", queue)
    matrix_broker.grant(user, "--operation", "read", "--group", group)

    with pytest.raises(RefusedError) as produce:
        client.produce(queue, b"refused")
    assert produce.value.code == TOPIC_REFUSED, produce.value.shown
    with pytest.raises(RefusedError) as consume:
        client.consume(queue, group)
    assert consume.value.code == TOPIC_REFUSED, consume.value.shown

    matrix_broker.grant(user, "--operation", "write", "--operation", "read", "--queue", queue)
    client.produce(queue, b"accepted")
    assert client.consume(queue, group) == [b"accepted"]
    described = json.loads(matrix_broker.admin("--format", "json", "group", "describe", group).stdout)
    committed = [(o["queue"], o["partition"], o["committed"]) for o in described["offsets"]]
    assert committed == [(queue, 0, 1)], described


@pytest.mark.slow
@by_client(list(CLIENTS))
def test_no_acl_for_the_group_then_granted(matrix_broker: MatrixBroker, client: MatrixClient) -> None:
    user = client.login.user
    queue, group = f"{user}-grouped", f"{user}-other-group"
    matrix_broker.admin("queue", "create", queue)
    matrix_broker.admin("produce", queue, stdin="seed\n")
    matrix_broker.grant(user, "--operation", "read", "--queue", queue)

    with pytest.raises(RefusedError) as consume:
        client.consume(queue, group)
    assert consume.value.code == GROUP_REFUSED, consume.value.shown
    if user in LOGQ:
        assert f"User:{user} may not " in consume.value.shown
        assert f"GROUP:{group}" in consume.value.shown

    matrix_broker.grant(user, "--operation", "read", "--group", group)
    assert client.consume(queue, group) == [b"seed"]


@pytest.mark.slow
@by_client(list(CLIENTS))
def test_not_allowed_to_create_then_granted(matrix_broker: MatrixBroker, client: MatrixClient) -> None:
    user = client.login.user
    queue = f"{user}-new"
    matrix_broker.grant(user, "--operation", "write", "--queue", queue)  # writing is not creating

    with pytest.raises(RefusedError) as create:
        client.create(queue)
    assert create.value.code == TOPIC_REFUSED, create.value.shown
    if user in LOGQ:
        assert f"User:{user} may not create queue '{queue}'" in create.value.shown
    assert queue not in matrix_broker.queues()

    matrix_broker.grant(user, "--operation", "create", "--queue", queue)
    client.create(queue)
    assert queue in matrix_broker.queues()


@pytest.mark.slow
@by_client(DELETING)
def test_delete_queue_by_a_non_admin_then_granted(matrix_broker: MatrixBroker, client: MatrixClient) -> None:
    user = client.login.user
    queue = f"{user}-doomed"
    matrix_broker.admin("queue", "create", queue)

    with pytest.raises(RefusedError) as delete:
        client.delete(queue)
    assert delete.value.code == TOPIC_REFUSED, delete.value.shown
    if user in LOGQ:  # who was refused and why, in one line (the CLI: before asking to confirm)
        why = f"User:{user} may not delete queue {queue} (needs DELETE on TOPIC:{queue})"
        assert delete.value.shown.removeprefix("Error: ") == why
    if isinstance(client, LogqCli):
        assert "Delete queue" not in client.last_output
    assert queue in matrix_broker.queues()

    matrix_broker.grant(user, "--operation", "delete", "--queue", queue)
    client.delete(queue)
    assert queue not in matrix_broker.queues()


def test_a_super_user_deletes_without_any_acl(matrix_broker: MatrixBroker) -> None:
    matrix_broker.admin("queue", "create", "admin-doomed")
    deleted = matrix_broker.admin("admin", "delete-queue", "admin-doomed", stdin="y\n")
    assert "Delete queue admin-doomed and all its messages?" in deleted.output
    assert "deleted queue admin-doomed" in deleted.output
    assert "admin-doomed" not in matrix_broker.queues()


def test_the_admin_client_names_its_principal_as_the_brokers_see_it(matrix_broker: MatrixBroker) -> None:
    login = matrix_broker.login("logq-client")
    with Admin(login.address, **LogqClient(login).settings()) as admin:
        assert admin.principal == "User:logq-client"
    # Without SASL: anonymous, unless a client certificate names it (through the brokers' rules)
    assert SecuritySettings().principal() == "User:ANONYMOUS"
    assert SecuritySettings(security_protocol="SSL").principal() == "User:ANONYMOUS"
    by_certificate = SecuritySettings(security_protocol="SSL", ssl_certfile="alice.pem").principal()
    assert by_certificate == "the principal of client certificate alice.pem"


# pty.spawn gives the command a terminal of its own (in a fresh process, so no fork of this threaded one);
# it copies this wrapper's stdin to the terminal and the terminal to its stdout.
ON_A_TERMINAL = "import os, pty, sys; sys.exit(os.waitstatus_to_exitcode(pty.spawn(sys.argv[1:])))"


def test_the_cli_asks_for_the_password_on_a_terminal(matrix_broker: MatrixBroker) -> None:
    user = "logq-cli"
    command = [
        sys.executable, "-m", "logq_cli.main", "-b", matrix_broker.address,
        "--ca-file", str(matrix_broker.certs.ca), "--user", user, "queue", "list",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "LOGQ_PASSWORD"}
    wrapper = subprocess.Popen(
        [sys.executable, "-c", ON_A_TERMINAL, *command], cwd=ROOT, env=env,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    assert wrapper.stdin is not None
    assert wrapper.stdout is not None
    try:
        seen = read_until(wrapper.stdout, f"Password for {user}: ".encode())
        # typed only once asked: asking flushes what the terminal had before
        wrapper.stdin.write((password_of(user) + "\n").encode())
        wrapper.stdin.flush()
        rest, _ = wrapper.communicate(timeout=DEADLINE_S)
    finally:
        if wrapper.poll() is None:
            wrapper.kill()
            wrapper.communicate()
    screen = (seen + rest).decode(errors="replace")
    assert wrapper.returncode == 0, screen
    assert "QUEUE" in screen  # logged in: the listing came
    assert password_of(user) not in screen  # not echoed


def read_until(stream: IO[bytes], wanted: bytes) -> bytes:
    """What ``stream`` gives until ``wanted`` has come (bounded in time)."""
    seen = b""
    deadline = time.monotonic() + DEADLINE_S
    while wanted not in seen:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"never saw {wanted!r}: {seen!r}"
        ready, _, _ = select.select([stream], [], [], remaining)
        if ready:
            chunk = os.read(stream.fileno(), 4096)
            assert chunk, f"ended before {wanted!r}: {seen!r}"
            seen += chunk
    return seen
