"""On the host: a broker's data directory and files are its user's alone whatever the umask; a broker
refuses a data directory or TLS key others may read or write; the first admin is written with no
broker running, then logs in; development certificates; authentication metrics."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import logq
from logq.security.certs import write_dev_certificates
from tests.broker_process import BrokerProcess, free_port

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def logq_cli(
    *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "logq_cli.main", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )


def modes(root: Path) -> dict[str, int]:
    out = {".": stat.S_IMODE(root.stat().st_mode)}
    for path in root.rglob("*"):
        out[str(path.relative_to(root))] = stat.S_IMODE(path.lstat().st_mode)
    return out


def test_everything_in_the_data_directory_is_private_whatever_the_umask(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with umask(0):  # the broker inherits it: every mode must still be private
        broker = BrokerProcess(data, broker={"auto.create.queues": True}).start()
    try:
        with logq.Producer(broker.bootstrap) as producer:
            producer.send("orders", b"hello").result(timeout=30)
    finally:
        broker.stop()
    found = modes(data)
    assert any(name.endswith(".log") for name in found)  # a segment
    assert any("index.rocksdb/" in name for name in found)  # RocksDB's own files
    assert "credentials.json" in found
    loose = {name: f"{mode:o}" for name, mode in found.items() if mode & 0o077}
    assert not loose, loose


def test_a_broker_refuses_a_data_directory_others_can_read(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o755)
    broker = BrokerProcess(data)
    with pytest.raises(RuntimeError, match=r"accessible by group or others \(mode 0755\): chmod 700"):
        broker.start(timeout=20)
    lines = [line for line in broker.output if line.startswith("Error:")]
    assert len(lines) == 1
    assert "Traceback" not in broker.log_text


def test_a_broker_refuses_a_tls_key_others_can_read(tmp_path: Path) -> None:
    certs = write_dev_certificates(tmp_path / "certs", [])
    certs.broker_key.chmod(0o644)
    broker = BrokerProcess(
        tmp_path / "data",
        listeners={"TLS": "SSL"},
        broker={
            "ssl.certificate.location": str(certs.broker_cert),
            "ssl.key.location": str(certs.broker_key),
        },
    )
    with pytest.raises(RuntimeError, match=r"TLS key file .* \(mode 0644\): chmod 600"):
        broker.start(timeout=20)
    assert "Traceback" not in broker.log_text


def test_dev_certs_are_private_and_cover_localhost(tmp_path: Path) -> None:
    made = logq_cli("security", "dev-certs", str(tmp_path / "certs"), "--client", "alice")
    assert made.returncode == 0, made.stderr
    found = modes(tmp_path / "certs")
    assert found["."] == 0o700
    assert {name for name in found if name != "."} == {
        "ca.pem", "ca-key.pem", "broker.pem", "broker-key.pem", "alice.pem", "alice-key.pem",
    }  # fmt: skip
    assert all(mode == 0o600 for name, mode in found.items() if name != ".")
    from cryptography import x509

    broker_cert = x509.load_pem_x509_certificate((tmp_path / "certs" / "broker.pem").read_bytes())
    names = broker_cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]


def test_the_first_admin_is_made_with_no_broker_and_then_logs_in(tmp_path: Path) -> None:
    data = tmp_path / "data"
    made = logq_cli("security", "init", "--data-dir", str(data), "--admin", "root", stdin="root-secret\n")
    assert made.returncode == 0, made.stderr
    assert "created user root (SCRAM-SHA-256, SCRAM-SHA-512)" in made.stdout
    stored = (data / "credentials.json").read_text()
    assert "root-secret" not in stored
    assert '"root"' in stored
    assert stat.S_IMODE((data / "credentials.json").stat().st_mode) == 0o600
    port = free_port()
    broker = BrokerProcess(
        data,
        port=port,
        listeners={"SASL": "SASL_PLAINTEXT"},
        broker={"metrics.listen": f"127.0.0.1:{free_port()}"},
    ).start()
    try:
        # While the broker runs, init refuses the directory (logq user create is the way then).
        busy = logq_cli("security", "init", "--data-dir", str(data), "--admin", "other", stdin="pw\n")
        assert busy.returncode == 1
        assert "in use by another process" in busy.stderr
        logged_in = logq_cli(
            "-b",
            broker.address("SASL"),
            "--user",
            "root",
            "queue",
            "list",
            env={"LOGQ_PASSWORD": "root-secret"},
        )
        assert logged_in.returncode == 0, logged_in.stderr
        refused = logq_cli(
            "-b", broker.address("SASL"), "--user", "root", "queue", "list", env={"LOGQ_PASSWORD": "nope"}
        )
        assert refused.returncode == 1
        metrics_port = broker.log_text.split("metrics on http://")[1].split("/")[0]
        text = urllib.request.urlopen(f"http://{metrics_port}/metrics", timeout=10).read().decode()
        assert (
            'logq_authentications_total{listener="SASL",mechanism="SCRAM-SHA-256",outcome="success"} 1.0'
            in text
        )
        assert (
            'logq_authentications_total{listener="SASL",mechanism="SCRAM-SHA-256",outcome="failure"} 1.0'
            in text
        )
        assert "nope" not in broker.log_text
        assert "authentication failed for user 'root' from 127.0.0.1 with SCRAM-SHA-256" in broker.log_text
    finally:
        broker.stop()


def test_security_init_refuses_bad_input_in_one_line(tmp_path: Path) -> None:
    neither = logq_cli("security", "init", "--admin", "root", stdin="pw\n")
    assert neither.returncode == 2
    assert "either --data-dir or --zookeeper" in neither.stderr
    empty = logq_cli("security", "init", "--data-dir", str(tmp_path / "d"), "--admin", "root", stdin="\n")
    assert empty.returncode == 1
    assert "empty password" in empty.stderr
    open_dir = tmp_path / "open"
    open_dir.mkdir()
    open_dir.chmod(0o777)
    loose = logq_cli("security", "init", "--data-dir", str(open_dir), "--admin", "root", stdin="pw\n")
    assert loose.returncode == 1
    assert "chmod 700" in loose.stderr
    for result in (neither, empty, loose):
        assert "Traceback" not in result.stderr


def test_a_broker_refuses_a_certificate_that_does_not_load_in_one_line(tmp_path: Path) -> None:
    certs = write_dev_certificates(tmp_path / "certs", [])
    broker = BrokerProcess(
        tmp_path / "data",
        listeners={"TLS": "SSL"},
        broker={
            "ssl.certificate.location": str(certs.ca.parent / "missing.pem"),
            "ssl.key.location": str(certs.broker_key),
        },
    )
    with pytest.raises(RuntimeError, match=r"cannot use TLS certificate .*missing\.pem"):
        broker.start(timeout=20)
    assert "Traceback" not in broker.log_text
