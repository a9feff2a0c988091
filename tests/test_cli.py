from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from logq.segments import LogManager
from logq.testing import make_batch
from logq_cli.main import main

_LOGQ = [sys.executable, "-m", "logq_cli.main"]


def test_storage_inspect_lists_partitions(data_dir: Path) -> None:
    manager = LogManager(data_dir)
    for partition in range(2):
        plog = manager.create("orders", partition)
        for i in range(partition + 1):
            plog.append(make_batch(3, tag=i))
    manager.close()
    result = CliRunner().invoke(main, ["storage", "inspect", str(data_dir), "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [(r["queue"], r["partition"], r["log_end_offset"]) for r in rows] == [
        ("orders", 0, 3),
        ("orders", 1, 6),
    ]
    table = CliRunner().invoke(main, ["storage", "inspect", str(data_dir)])
    assert "orders" in table.output
    assert table.exit_code == 0


def test_storage_inspect_errors_are_one_line(tmp_path: Path, data_dir: Path) -> None:
    result = CliRunner().invoke(main, ["storage", "inspect", str(tmp_path / "missing")])
    assert result.exit_code != 0
    assert result.output.strip().splitlines()[-1].startswith("Error:")
    manager = LogManager(data_dir)  # holds the directory lock
    try:
        busy = CliRunner().invoke(main, ["storage", "inspect", str(data_dir)])
        assert busy.exit_code == 1
        assert "in use by another process" in busy.output
        assert "Traceback" not in busy.output
    finally:
        manager.close()


def test_broker_start_rejects_bad_settings_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[broker]\n"no.such.setting" = 1\n')
    for args in (["--listen", "nowhere"], ["--config", str(bad)]):
        proc = subprocess.run(
            [*_LOGQ, "broker", "start", "--data-dir", str(tmp_path / "d"), *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 1
        assert proc.stderr.startswith("Error: ")
        assert "Traceback" not in proc.stderr
    assert "no.such.setting" in proc.stderr


def test_broker_start_reports_a_taken_port(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "logq_cli.main", "broker", "start", "--data-dir", str(tmp_path / "d"),
             "--listen", f"127.0.0.1:{port}"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    assert proc.returncode == 1
    assert "cannot start the broker" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_version_and_help() -> None:
    assert CliRunner().invoke(main, ["--version"]).output.startswith("logq, version")
    assert "Example" in CliRunner().invoke(main, ["storage", "inspect", "--help"]).output
