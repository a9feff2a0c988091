"""docs/security.md's "A secured broker on one machine, in five minutes", run as written: every command of
its shell blocks through bash, and its Python snippet, in order, in a fresh directory holding a copy of
configs/secure.toml, so that the walkthrough cannot drift from the code.

Only what a reader fills in is filled in: each ``...`` password placeholder gets the password of the
user that command logs in as (``--user NAME``, ``sasl.username=NAME``); the passwords the commands ask
for come on stdin (they read one line when it is not a terminal, as the steps say). The ports 9092-9094
become free ones, in the commands and in the config alike. ``logq broker start`` runs in the background
until the end, then stops with SIGTERM."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest

from tests.broker_process import free_port

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "security.md"
SECTION = "## A secured broker on one machine, in five minutes"
PORTS = ("9092", "9093", "9094")
PASSWORDS = {"admin": "admin-pass-5min", "orders-app": "orders-app-pass-5min"}
TIMEOUT_S = 60.0


@dataclass
class Block:
    language: str
    text: str


def walkthrough_blocks() -> list[Block]:
    """The fenced code blocks of the section, in order, dedented (they sit inside a numbered list)."""
    doc = DOC.read_text()
    start = doc.index(SECTION)
    end = doc.index("\n## ", start + len(SECTION))
    fences = re.finditer(r"^( *)```(\w+)\n(.*?)^\1```$", doc[start:end], re.MULTILINE | re.DOTALL)
    return [Block(m.group(2), textwrap.dedent(m.group(3))) for m in fences]


def commands(block: str) -> list[str]:
    """A shell block's commands: continuation lines joined, blank lines dropped."""
    return [line for line in block.replace("\\\n", " ").splitlines() if line.strip()]


def with_ports(text: str, ports: dict[str, int]) -> str:
    return re.sub(r"127\.0\.0\.1:(\d{4})\b", lambda m: f"127.0.0.1:{ports.get(m.group(1), m.group(1))}", text)


def login_of(command: str) -> str:
    """Whom a command logs in as: its ``...`` password is that user's."""
    found = re.search(r"(?:--user |sasl\.username=|sasl_username=\")([\w-]+)", command)
    assert found, f"no user logs in with {command!r}"
    return found.group(1)


def new_user_of(command: str) -> str | None:
    """The user a command creates (it reads the new password from stdin), if any."""
    found = re.search(r"(?:security init .*--admin |user create )([\w-]+)", command)
    return found.group(1) if found else None


@dataclass
class Walkthrough:
    directory: Path
    ports: dict[str, int]
    env: dict[str, str] = field(default_factory=dict)
    broker: subprocess.Popen[str] | None = None
    broker_log: list[str] = field(default_factory=list)
    outputs: list[tuple[str, str]] = field(default_factory=list)  # (command, stdout)

    def run_shell(self, command: str) -> None:
        command = with_ports(command, self.ports)
        exported = re.fullmatch(r"export LOGQ_PASSWORD=\.\.\.\s+# the (\w+)'s password.*", command)
        if exported:
            self.env["LOGQ_PASSWORD"] = PASSWORDS[exported.group(1)]
            return
        if command.startswith("logq broker start"):
            self.start_broker(command)
            return
        if "LOGQ_PASSWORD=..." in command or "sasl.password=..." in command:
            password = shlex.quote(PASSWORDS[login_of(command)])
            command = command.replace("LOGQ_PASSWORD=...", f"LOGQ_PASSWORD={password}")
            command = command.replace("sasl.password=...", f"sasl.password={password}")
        created = new_user_of(command)
        stdin = None if created is None else PASSWORDS[created] + "\n"
        done = subprocess.run(
            ["bash", "-c", "set -o pipefail; " + command], cwd=self.directory, env=self.env, input=stdin,
            capture_output=True, text=True, timeout=TIMEOUT_S, check=False,
        )  # fmt: skip
        assert done.returncode == 0, f"{command}\n{done.stdout}{done.stderr}"
        assert "Traceback" not in done.stderr, done.stderr
        self.outputs.append((command, done.stdout))

    def run_python(self, code: str) -> None:
        code = with_ports(code, self.ports)
        env = {**self.env, "LOGQ_PASSWORD": PASSWORDS[login_of(code)]}
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=self.directory, env=env, capture_output=True, text=True,
            timeout=TIMEOUT_S, check=False,
        )  # fmt: skip
        assert done.returncode == 0, f"{code}\n{done.stdout}{done.stderr}"

    def start_broker(self, command: str) -> None:
        self.broker = subprocess.Popen(
            shlex.split(command, comments=True), cwd=self.directory, env=self.env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        ready = threading.Event()

        def pump(out: IO[str]) -> None:
            for line in out:
                self.broker_log.append(line)
                if "listening on" in line:
                    ready.set()
            out.close()

        assert self.broker.stdout is not None
        threading.Thread(target=pump, args=(self.broker.stdout,), daemon=True).start()
        deadline = time.monotonic() + TIMEOUT_S
        while not ready.wait(0.05):
            assert self.broker.poll() is None, "".join(self.broker_log)
            assert time.monotonic() < deadline, "".join(self.broker_log)

    def stop_broker(self) -> int | None:
        broker, self.broker = self.broker, None
        if broker is None:
            return None
        if broker.poll() is None:
            broker.send_signal(signal.SIGTERM)
        try:
            return broker.wait(TIMEOUT_S)
        except subprocess.TimeoutExpired:
            broker.kill()
            broker.wait()
            raise

    def output_of(self, fragment: str) -> str:
        return next(out for command, out in self.outputs if fragment in command)


@pytest.fixture
def walkthrough(tmp_path: Path) -> Iterator[Walkthrough]:
    ports = {port: free_port() for port in PORTS}
    config = (ROOT / "configs" / "secure.toml").read_text()
    for port in PORTS:  # the shipped config must still listen where the steps connect
        assert f"127.0.0.1:{port}" in config
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "secure.toml").write_text(with_ports(config, ports))
    bin_dir = Path(sys.executable).parent  # .venv/bin: logq is there
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("LOGQ_PASSWORD", None)
    env.pop("LOGQ_BOOTSTRAP", None)
    walk = Walkthrough(tmp_path, ports, env)
    yield walk
    walk.stop_broker()


@pytest.mark.slow
def test_the_five_minute_walkthrough_works_as_written(walkthrough: Walkthrough, kcat: str) -> None:
    blocks = walkthrough_blocks()
    languages = [b.language for b in blocks]
    assert set(languages) == {"sh", "python"}, languages  # a block in another language would go unrun
    for block in blocks:
        if block.language == "python":
            walkthrough.run_python(block.text)
        else:
            for command in commands(block.text):
                walkthrough.run_shell(command)

    out = walkthrough.output_of
    assert "orders-app" in out("user list")
    assert "User:alice" in out("acl list")
    assert out("consume orders -g billing").splitlines() == ["hello"]  # orders-app, in its group
    assert out("--cert-file certs/alice.pem").splitlines() == ["hello"]  # alice, by her certificate
    assert sorted(out("kcat").splitlines()) == ["hello", "hello from Python"]
    log = "".join(walkthrough.broker_log)
    assert "authenticated User:orders-app from 127.0.0.1 with SCRAM-SHA-256 on listener CLIENTS" in log
    assert "TLS client User:alice from" in log
    assert walkthrough.stop_broker() == 0
