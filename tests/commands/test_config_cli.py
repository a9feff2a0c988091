"""``logq queue alter``, ``logq queue describe`` (settings with sources) and ``logq broker config`` end to
end against a real broker, through click's CliRunner and as a subprocess."""

from __future__ import annotations

import subprocess
import sys

from logq.testing import make_batch
from tests.broker.test_broker_basic import produce
from tests.broker_process import BrokerProcess
from tests.commands.test_admin_cli import assert_one_line_error, run, run_json
from tests.wire_client import WireClient


def sources(broker: BrokerProcess, queue: str) -> dict[str, tuple[str, str]]:
    desc = run_json(broker, "queue", "describe", queue)
    return {s["name"]: (s["value"], s["source"]) for s in desc["settings_with_sources"]}


def test_queue_alter_sets_and_deletes_and_describe_shows_sources(broker: BrokerProcess) -> None:
    assert run(broker, "queue", "create", "orders", "-c", "segment.ms=60000").exit_code == 0
    dry = run(broker, "queue", "alter", "orders", "-c", "retention.ms=3600000", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "would alter queue orders: retention.ms=3600000" in dry.output
    assert sources(broker, "orders")["retention.ms"] == ("604800000", "default")
    altered = run(
        broker,
        "queue",
        "alter",
        "orders",
        "-c",
        "retention.ms=3600000",
        "-c",
        "max.message.bytes=1000",
        "--delete-config",
        "segment.ms",
    )
    assert altered.exit_code == 0, altered.output
    assert (
        "altered queue orders: retention.ms=3600000, max.message.bytes=1000, segment.ms deleted"
        in altered.output
    )
    settings = sources(broker, "orders")
    assert settings["retention.ms"] == ("3600000", "queue")
    assert settings["segment.ms"] == ("604800000", "default")
    assert settings["cleanup.policy"] == ("delete", "default")
    assert run_json(broker, "queue", "describe", "orders")["settings"] == {
        "retention.ms": "3600000",
        "max.message.bytes": "1000",
    }
    with WireClient(broker.bootstrap) as client:  # in force
        assert produce(client, "orders", make_batch(4, value_size=1000)).error_code == 10  # MESSAGE_TOO_LARGE
    table = run(broker, "queue", "describe", "orders")
    assert table.exit_code == 0
    assert "SETTING" in table.output
    assert "SOURCE" in table.output
    row = next(line for line in table.output.splitlines() if line.startswith("retention.ms"))
    assert row.split() == ["retention.ms", "3600000", "queue"]


def test_queue_alter_errors_are_one_line(broker: BrokerProcess) -> None:
    assert run(broker, "queue", "create", "orders").exit_code == 0
    assert_one_line_error(run(broker, "queue", "alter", "orders"), "nothing to change")
    assert_one_line_error(
        run(broker, "queue", "alter", "nope", "-c", "retention.ms=1"), "'nope' does not exist"
    )
    assert_one_line_error(
        run(broker, "queue", "alter", "orders", "-c", "retention.ms=soon"),
        "'retention.ms' must be an integer",
    )
    assert_one_line_error(
        run(broker, "queue", "alter", "orders", "-c", "no.such=1"), "'no.such' cannot be set on a queue"
    )
    assert_one_line_error(run(broker, "queue", "alter", "orders", "-c", "oops"), "key=value")


def test_broker_config_lists_sets_and_deletes(broker: BrokerProcess) -> None:
    listed = {s["name"]: (s["value"], s["source"]) for s in run_json(broker, "broker", "config")}
    assert listed["retention.ms"] == ("604800000", "default")
    assert "listen" not in listed  # needs a restart: not listed among the dynamic ones
    changed = run_json(broker, "broker", "config", "--set", "retention.ms=3000", "--set", "segment.ms=4000")
    assert {s["name"]: (s["value"], s["source"]) for s in changed}["retention.ms"] == ("3000", "cluster")
    mine = run_json(broker, "broker", "config", "--broker", "0", "--set", "retention.ms=2000")
    assert {s["name"]: (s["value"], s["source"]) for s in mine}["retention.ms"] == ("2000", "broker")
    assert run(broker, "queue", "create", "orders").exit_code == 0
    assert sources(broker, "orders")["retention.ms"] == ("2000", "broker")
    assert sources(broker, "orders")["segment.ms"] == ("4000", "cluster")
    back = run_json(broker, "broker", "config", "--broker", "0", "--delete", "retention.ms")
    assert {s["name"]: (s["value"], s["source"]) for s in back}["retention.ms"] == ("3000", "cluster")
    assert_one_line_error(
        run(broker, "broker", "config", "--set", "listen=127.0.0.1:1"),
        "'listen' cannot be changed without a restart",
    )
    assert_one_line_error(
        run(broker, "broker", "config", "--set", "log.flush.interval.ms=0"),
        "'log.flush.interval.ms' must be at least 1",
    )


def test_broker_config_as_a_subprocess(broker: BrokerProcess) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "logq_cli.main",
            "-b",
            broker.bootstrap,
            "broker",
            "config",
            "--set",
            "retention.bytes=1000000",
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    row = next(line for line in result.stdout.splitlines() if line.startswith("retention.bytes"))
    assert row.split() == ["retention.bytes", "1000000", "cluster"]
    refused = subprocess.run(
        [
            sys.executable,
            "-m",
            "logq_cli.main",
            "-b",
            broker.bootstrap,
            "broker",
            "config",
            "--set",
            "data.dir=/x",
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines() == [refused.stderr.strip().splitlines()[-1]]  # one line
    assert "'data.dir' cannot be changed without a restart" in refused.stderr
    assert "Traceback" not in refused.stderr
