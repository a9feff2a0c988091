"""With the authorizer on, the user APIs (DescribeUserScramCredentials / AlterUserScramCredentials) are
an administrator's, as in Kafka: DESCRIBE and ALTER on the cluster. Through logq's CLI, over SASL."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from logq.coordinator.credentials import write_user_offline
from logq.permissions import make_private_dir
from logq.security.scram import MECHANISMS, make_credential
from tests.broker_process import BrokerProcess

ROOT = Path(__file__).resolve().parents[2]
USERS = {"admin": "admin-secret", "alice": "alice-secret"}


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    data = tmp_path_factory.mktemp("guarded") / "data"
    make_private_dir(data)
    for user, password in USERS.items():
        write_user_offline(data, user, [make_credential(m, password) for m in MECHANISMS])
    process = BrokerProcess(
        data,
        listeners={"SASL": "SASL_PLAINTEXT"},
        broker={
            "sasl.enabled.mechanisms": "SCRAM-SHA-256",
            "authorizer.enable": True,
            "super.users": "User:admin",
        },
    ).start()
    yield process
    process.kill()


def user_command(
    broker: BrokerProcess, user: str, *args: str, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LOGQ_PASSWORD": USERS[user]}
    command = [
        sys.executable, "-m", "logq_cli.main", "-b", broker.address("SASL"), "--security-protocol",
        "SASL_PLAINTEXT", "--user", user, "user", *args,
    ]  # fmt: skip
    return subprocess.run(
        command, input=stdin, capture_output=True, text=True, timeout=60, check=False, cwd=ROOT, env=env
    )


def test_only_an_administrator_lists_creates_and_deletes_users(guarded: BrokerProcess) -> None:
    listed = user_command(guarded, "admin", "list")
    assert listed.returncode == 0, listed.stderr
    assert "alice" in listed.stdout
    for args, stdin in ((("list",), ""), (("create", "mallory"), "pw\n"), (("delete", "admin"), "")):
        refused = user_command(guarded, "alice", *args, stdin=stdin)
        assert refused.returncode == 1, refused.stdout
        lines = refused.stderr.strip().splitlines()
        assert lines[-1].startswith("Error: "), refused.stderr
        assert "User:alice may not" in lines[-1]
        assert "Traceback" not in refused.stderr
    created = user_command(guarded, "admin", "create", "bob", stdin="bob-pw\n")
    assert created.returncode == 0, created.stderr
    assert "bob" in user_command(guarded, "admin", "list").stdout
