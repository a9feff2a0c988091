"""``logq queue alter NAME -p N`` against a real broker: it grows the queue, and every refusal is one
line and a non-zero exit."""

from __future__ import annotations

import json

from logq.client.sync_admin import Admin
from tests.broker_process import BrokerProcess
from tests.commands.test_admin_cli import assert_one_line_error, run


def test_queue_alter_grows_a_queue(broker: BrokerProcess) -> None:
    assert run(broker, "queue", "create", "alt", "-p", "2").exit_code == 0
    grown = run(broker, "queue", "alter", "alt", "-p", "5")
    assert grown.exit_code == 0, grown.output
    assert grown.stdout == "altered queue alt: 2 -> 5 partitions\n"
    assert "keyed messages may now go to other partitions" in grown.stderr
    with Admin(broker.bootstrap) as admin:
        assert len(admin.partitions_of("alt")) == 5
    as_json = run(broker, "--format", "json", "queue", "alter", "alt", "-p", "6")
    assert json.loads(as_json.stdout) == {"queue": "alt", "dry_run": False, "partitions": 6, "before": 5}
    dry = run(broker, "queue", "alter", "alt", "-p", "8", "-c", "retention.ms=60000", "--dry-run")
    assert dry.stdout == "would alter queue alt: retention.ms=60000, 6 -> 8 partitions\n", dry.output
    with Admin(broker.bootstrap) as admin:
        assert len(admin.partitions_of("alt")) == 6


def test_queue_alter_refusals_are_one_line(broker: BrokerProcess) -> None:
    assert run(broker, "queue", "create", "alt-bad", "-p", "3").exit_code == 0
    assert_one_line_error(run(broker, "queue", "alter", "alt-bad", "-p", "2"), "never removed")
    assert_one_line_error(run(broker, "queue", "alter", "alt-bad", "-p", "3"), "already has 3")
    assert_one_line_error(run(broker, "queue", "alter", "nope", "-p", "4"), "'nope' does not exist")
    assert_one_line_error(run(broker, "queue", "alter", "__consumer_offsets", "-p", "99"), "internal")
    nothing = run(broker, "queue", "alter", "alt-bad")
    assert nothing.exit_code == 2
    assert "nothing to change" in nothing.output
    with Admin(broker.bootstrap) as admin:
        assert len(admin.partitions_of("alt-bad")) == 3
