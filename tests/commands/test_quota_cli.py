"""``logq quota set|list|remove`` end to end against a real broker (click's CliRunner), and the byte
rate parser."""

from __future__ import annotations

import click
import pytest

from logq_cli.quota_commands import parse_byte_rate
from tests.broker_process import BrokerProcess
from tests.commands.test_admin_cli import assert_one_line_error, run, run_json


def test_quota_set_list_and_remove(broker: BrokerProcess) -> None:
    done = run(
        broker, "quota", "set", "--user", "alice", "--client-id", "app", "--producer-byte-rate", "10MB"
    )
    assert done.exit_code == 0, done.output
    assert "quotas of user 'alice', client-id 'app': set" in done.output
    assert run(broker, "quota", "set", "--default-client-id", "--consumer-byte-rate", "512KiB").exit_code == 0
    assert run(broker, "quota", "set", "--user", "alice", "--request-percentage", "25").exit_code == 0
    listed = run_json(broker, "quota", "list")
    assert listed == [
        {"user": "alice", "client_id": "app", "quotas": {"producer_byte_rate": 10_000_000.0}},
        {"user": "alice", "client_id": None, "quotas": {"request_percentage": 25.0}},
        {"user": None, "client_id": "<default>", "quotas": {"consumer_byte_rate": 524_288.0}},
    ]
    table = run(broker, "quota", "list", "--user", "alice")
    assert table.exit_code == 0
    assert "(default)" not in table.output
    assert "producer_byte_rate=1e+07" in table.output
    removed = run(broker, "quota", "remove", "--user", "alice", "--client-id", "app")
    assert removed.exit_code == 0, removed.output
    assert [q["client_id"] for q in run_json(broker, "quota", "list", "--user", "alice")] == [None]


def test_quota_mistakes_are_one_line_errors(broker: BrokerProcess) -> None:
    assert_one_line_error(run(broker, "quota", "set", "--producer-byte-rate", "1MB"), "name the entity")
    assert_one_line_error(run(broker, "quota", "set", "--user", "a"), "at least one quota")
    assert_one_line_error(
        run(broker, "quota", "set", "--user", "a", "--producer-byte-rate", "ten"), "byte rate"
    )
    assert_one_line_error(run(broker, "quota", "remove", "--client-id", "nobody"), "no quota is set")
    assert_one_line_error(
        run(broker, "quota", "set", "--user", "a", "--default-user", "--producer-byte-rate", "1"), "not both"
    )


def test_byte_rates_parse_with_decimal_and_binary_units() -> None:
    assert parse_byte_rate("1048576") == 1_048_576
    assert parse_byte_rate("10MB") == 10_000_000
    assert parse_byte_rate("1.5 KiB") == 1536
    for bad in ("", "0", "5 parsecs", "-1MB"):
        with pytest.raises(click.BadParameter):
            parse_byte_rate(bad)
