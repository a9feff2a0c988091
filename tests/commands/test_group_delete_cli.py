"""``logq group delete`` and ``logq group delete-offsets`` end to end against a real broker: dry runs
unless --execute, refusals that name the live members, one-line errors."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition

from logq.client.cluster import QueuePartition
from logq.client.sync_admin import Admin
from tests.broker_process import BrokerProcess
from tests.commands.test_admin_cli import GROUP_SETTINGS, assert_one_line_error, produce, run, run_json


@pytest.fixture
def group_broker(tmp_path: Path) -> Iterator[BrokerProcess]:
    proc = BrokerProcess(tmp_path / "data", broker=GROUP_SETTINGS).start()
    yield proc
    proc.kill()


def live_member(bootstrap: str, group: str, queue: str, count: int) -> Consumer:
    """A subscribed consumer that read ``count`` records and committed its positions."""
    consumer = Consumer({
        "bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
        "enable.auto.commit": False, "session.timeout.ms": 6000, "client.id": "billing-app",
    })  # fmt: skip
    consumer.subscribe([queue])
    seen = 0
    deadline = time.monotonic() + 30
    while seen < count and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is not None and msg.error() is None:
            seen += 1
    assert seen == count
    consumer.commit(asynchronous=False)
    return consumer


def test_group_delete_shows_what_would_go_and_refuses_a_live_group(group_broker: BrokerProcess) -> None:
    b = group_broker
    assert run(b, "queue", "create", "orders", "-p", "2").exit_code == 0
    produce(b.bootstrap, "orders", per_partition=10, partitions=2)
    consumer = live_member(b.bootstrap, "billing", "orders", 20)
    try:
        for extra in ((), ("--execute",)):
            refused = run(b, "group", "delete", "billing", *extra)
            assert_one_line_error(refused, "group 'billing' is Stable with 1 live member(s): billing-app (")
        refused = run(b, "group", "delete-offsets", "billing", "--queue", "orders", "--execute")
        assert_one_line_error(refused, "group 'billing' consumes queue 'orders': 1 live member(s)")
    finally:
        consumer.close()

    dry = run_json(b, "group", "delete", "billing")
    assert dry == {
        "group": "billing",
        "executed": False,
        "offsets": [
            {"queue": "orders", "partition": 0, "committed": 10},
            {"queue": "orders", "partition": 1, "committed": 10},
        ],
    }
    text = run(b, "group", "delete", "billing")
    assert text.exit_code == 0
    assert (
        "dry run: nothing deleted; add --execute to delete group billing and its 2 committed offset(s)"
        in (text.output)
    )
    assert run_json(b, "group", "describe", "billing")["offsets"][0]["committed"] == 10  # still there

    done = run(b, "group", "delete", "billing", "--execute")
    assert done.exit_code == 0, done.output
    assert done.output.strip().endswith("deleted group billing and its 2 committed offset(s)")
    assert "billing" not in {g["group"] for g in run_json(b, "group", "list")}
    assert_one_line_error(run(b, "group", "delete", "billing", "--execute"), "group 'billing' does not exist")


def test_group_delete_offsets_of_one_queue(group_broker: BrokerProcess) -> None:
    b = group_broker
    for name in ("orders", "archive"):
        assert run(b, "queue", "create", name, "-p", "2").exit_code == 0
    committer = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "ops"})
    committer.commit(
        offsets=[TopicPartition(q, p, 5 + p) for q in ("orders", "archive") for p in (0, 1)],
        asynchronous=False,
    )
    committer.close()

    dry = run(b, "group", "delete-offsets", "ops", "--queue", "archive", "--partition", "1")
    assert dry.exit_code == 0, dry.output
    assert dry.output.splitlines()[1].split() == ["archive", "1", "6"]
    assert "dry run: nothing deleted; add --execute to delete 1 committed offset(s)" in dry.output
    done = run_json(
        b, "group", "delete-offsets", "ops", "--queue", "archive", "--partition", "1", "--execute"
    )
    assert done == {
        "group": "ops",
        "executed": True,
        "offsets": [{"queue": "archive", "partition": 1, "committed": 6}],
    }
    with Admin(b.bootstrap) as admin:
        assert admin.committed_offsets("ops") == {
            QueuePartition("orders", 0): 5,
            QueuePartition("orders", 1): 6,
            QueuePartition("archive", 0): 5,
        }
    every = run(b, "group", "delete-offsets", "ops", "--queue", "orders", "--execute")
    assert every.output.strip().endswith("deleted 2 committed offset(s) of group ops for queue orders")

    missing = run(b, "group", "delete-offsets", "ops", "--queue", "archive", "--partition", "7")
    assert_one_line_error(missing, "queue 'archive' has no partition 7 (it has 2)")
    assert_one_line_error(run(b, "group", "delete-offsets", "ops", "--queue", "nope"), "does not exist")
    assert_one_line_error(
        run(b, "group", "delete-offsets", "nobody", "--queue", "orders"), "group 'nobody' does not exist"
    )


def test_help_has_examples() -> None:
    for command in ("delete", "delete-offsets"):
        helped = subprocess.run(
            [sys.executable, "-m", "logq_cli.main", "group", command, "--help"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert helped.returncode == 0, helped.stderr
        assert "Example" in helped.stdout
