"""``logq queue``, ``logq admin delete-queue`` and ``logq group`` end to end against a real broker, through
click's CliRunner (in process) and as subprocesses."""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from confluent_kafka import Consumer, Producer, TopicPartition

from logq.client.sync_admin import Admin as SyncAdmin
from logq.errors import TopicDeletionDisabledError
from logq_cli.main import main
from tests.broker_process import BrokerProcess, free_port

GROUP_SETTINGS = {"group.initial.rebalance.delay.ms": 0, "group.min.session.timeout.ms": 1000}


def run(broker: BrokerProcess, *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(main, ["-b", broker.bootstrap, *args], input=input)


def run_json(broker: BrokerProcess, *args: str) -> Any:
    result = run(broker, "--format", "json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # warnings go to stderr


def assert_one_line_error(result: Result, *fragments: str) -> None:
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert lines, "no error message"
    assert lines[-1].startswith("Error: ") or lines[-1] == "Aborted!", result.output
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[-1], result.output


def produce(bootstrap: str, queue: str, per_partition: int, partitions: int, ts: int | None = None) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for p in range(partitions):
        for i in range(per_partition):
            producer.produce(queue, f"{p}-{i}".encode(), partition=p, timestamp=ts or 0)
    assert producer.flush(30) == 0


@pytest.fixture
def group_broker(tmp_path: Path) -> Iterator[BrokerProcess]:
    proc = BrokerProcess(tmp_path / "data", broker=GROUP_SETTINGS).start()
    yield proc
    proc.kill()


def test_queue_create_list_describe(broker: BrokerProcess) -> None:
    created = run(broker, "queue", "create", "orders", "-p", "3", "-c", "retention.ms=86400000")
    assert created.exit_code == 0, created.output
    assert "created queue orders with 3 partition(s)" in created.output
    listing = run_json(broker, "queue", "list")
    assert {"queue": "orders", "partitions": 3, "replication": 1, "internal": False} in listing
    assert all(not q["queue"].startswith("__") for q in listing)
    ts = int(time.time() * 1000) - 60_000
    produce(broker.bootstrap, "orders", per_partition=5, partitions=2, ts=ts)
    desc = run_json(broker, "queue", "describe", "orders")
    assert desc["messages"] == 10
    parts = {p["partition"]: p for p in desc["partitions"]}
    assert parts[0]["log_end_offset"] == 5
    assert parts[2]["log_end_offset"] == 0
    assert parts[0]["oldest_timestamp_ms"] == ts
    assert parts[2]["oldest_timestamp_ms"] is None
    assert parts[0]["leader"] == 0
    assert parts[0]["replicas"] == [0]
    assert parts[0]["isr"] == [0]
    assert parts[0]["size_bytes"] > 5 * 3
    assert parts[2]["size_bytes"] == 0
    assert desc["size_bytes"] == sum(p["size_bytes"] for p in desc["partitions"])
    assert desc["settings"] == {"retention.ms": "86400000"}
    table = run(broker, "queue", "describe", "orders")
    assert table.exit_code == 0
    assert "PARTITION" in table.output
    assert "10 message(s)" in table.output


def test_queue_errors_are_one_line(broker: BrokerProcess) -> None:
    assert run(broker, "queue", "create", "orders").exit_code == 0
    assert_one_line_error(run(broker, "queue", "create", "orders"), "orders", "exists")
    assert_one_line_error(run(broker, "queue", "describe", "nope"), "'nope' does not exist")
    assert_one_line_error(run(broker, "queue", "create", "bad name!"), "bad name!")
    assert_one_line_error(run(broker, "queue", "create", "x", "-c", "oops"), "key=value")
    assert_one_line_error(run(broker, "queue", "create", "y", "-c", "no.such.setting=1"))
    down = CliRunner().invoke(main, ["-b", f"127.0.0.1:{free_port()}", "queue", "list"])
    assert_one_line_error(down, "cannot reach a broker")
    bad = CliRunner().invoke(main, ["-b", "nowhere", "queue", "list"])
    assert bad.exit_code == 2
    assert "HOST:PORT" in bad.output


def test_connection_errors_say_once_what_happened() -> None:
    port = free_port()
    refused = CliRunner().invoke(main, ["-b", f"127.0.0.1:{port}", "queue", "list"])
    assert_one_line_error(refused)
    assert refused.output.strip() == f"Error: cannot reach a broker at 127.0.0.1:{port}: connection refused"

    # A web port given as a broker (e.g. the broker's own --metrics-listen) answers in HTTP.
    web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    try:
        address = f"127.0.0.1:{web.server_address[1]}"
        http_peer = CliRunner().invoke(main, ["-b", address, "queue", "list"])
        assert_one_line_error(http_peer, "answered in HTTP", "not a Kafka/logq broker?")
        assert http_peer.output.count(address) == 1
        assert "frame size" not in http_peer.output
    finally:
        web.shutdown()
        web.server_close()


def test_delete_queue_asks_and_can_be_refused(broker: BrokerProcess, tmp_path: Path) -> None:
    assert run(broker, "queue", "create", "doomed").exit_code == 0
    declined = run(broker, "admin", "delete-queue", "doomed", input="n\n")
    assert_one_line_error(declined)
    assert any(q["queue"] == "doomed" for q in run_json(broker, "queue", "list"))
    confirmed = run(broker, "admin", "delete-queue", "doomed", input="y\n")
    assert confirmed.exit_code == 0, confirmed.output
    assert "deleted queue doomed" in confirmed.output
    assert not any(q["queue"] == "doomed" for q in run_json(broker, "queue", "list"))
    assert_one_line_error(run(broker, "admin", "delete-queue", "doomed", "--yes"), "does not exist")

    # Refused before the question, not after it: nothing is asked when the broker would say no.
    missing = run(broker, "admin", "delete-queue", "doomed", input="y\n")
    assert_one_line_error(missing, "'doomed' does not exist")
    assert "Delete queue" not in missing.output
    internal = run(broker, "admin", "delete-queue", "__consumer_offsets", input="y\n")
    assert_one_line_error(internal, "'__consumer_offsets' is internal", "cannot be deleted")
    assert "Delete queue" not in internal.output
    assert "INVALID_TOPIC_EXCEPTION" not in internal.output

    locked = BrokerProcess(tmp_path / "locked", broker={"delete.queue.enable": False}).start()
    try:
        assert run(locked, "queue", "create", "kept").exit_code == 0
        refused = run(locked, "admin", "delete-queue", "kept", "--yes")
        assert_one_line_error(refused, "delete.queue.enable")
        unasked = run(locked, "admin", "delete-queue", "kept", input="y\n")
        assert_one_line_error(unasked, "does not allow deleting queues", "delete.queue.enable = false")
        assert "Delete queue" not in unasked.output
        assert any(q["queue"] == "kept" for q in run_json(locked, "queue", "list"))
        with SyncAdmin(locked.bootstrap) as admin:
            allowed, reason = admin.may_delete_queue("kept")
            assert not allowed
            assert "delete.queue.enable" in reason
            with pytest.raises(TopicDeletionDisabledError):  # the broker's own refusal stays too
                admin.delete_queue("kept")
        with SyncAdmin(broker.bootstrap) as admin:
            assert run(broker, "queue", "create", "deletable").exit_code == 0
            assert admin.may_delete_queue("deletable").allowed
            assert admin.may_delete_queue("deletable").reason == ""
    finally:
        locked.kill()


def test_queue_delete_points_to_admin_delete_queue(broker: BrokerProcess) -> None:
    assert run(broker, "queue", "create", "orders").exit_code == 0
    for args in (["queue", "delete", "orders"], ["queue", "delete", "orders", "--yes"]):
        pointed = run(broker, *args)
        assert_one_line_error(pointed, "logq admin delete-queue orders")
    listed = run(broker, "queue", "--help").output.split("Commands:")[1].splitlines()
    assert "delete" not in [line.split()[0] for line in listed if line.strip()]  # not advertised
    assert any(q["queue"] == "orders" for q in run_json(broker, "queue", "list"))


def _consume_and_commit(bootstrap: str, group: str, queue: str, count: int) -> Consumer:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
        }
    )
    consumer.subscribe([queue])
    seen = 0
    deadline = time.monotonic() + 30
    while seen < count and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is not None and msg.error() is None:
            seen += 1
            if seen == count:
                consumer.commit(msg, asynchronous=False)
    assert seen == count
    return consumer


def test_group_list_describe_and_reset(group_broker: BrokerProcess) -> None:
    b = group_broker
    assert run(b, "queue", "create", "orders", "-p", "1").exit_code == 0
    produce(b.bootstrap, "orders", per_partition=20, partitions=1)
    consumer = _consume_and_commit(b.bootstrap, "billing", "orders", 12)
    try:
        live = run_json(b, "group", "describe", "billing")
        assert live["state"] == "Stable"
        assert len(live["members"]) == 1
        assert live["members"][0]["assignment"] == [{"queue": "orders", "partition": 0}]
        assert live["offsets"][0]["committed"] == 12
        assert live["total_lag"] == 8
        assert live["offsets"][0]["owner"] == live["members"][0]["member_id"]
        refused = run(
            b, "group", "reset-offsets", "billing", "--queue", "orders", "--to-earliest", "--execute"
        )
        assert_one_line_error(refused, "live member", "stop them")
    finally:
        consumer.close()
    assert {"group": "billing", "protocol_type": "consumer", "state": "Empty"} in run_json(b, "group", "list")

    plan = run_json(b, "group", "reset-offsets", "billing", "--queue", "orders", "--shift-by", "-5")
    assert plan["executed"] is False
    assert plan["partitions"] == [
        {"queue": "orders", "partition": 0, "current": 12, "new": 7, "lag_before": 8, "lag_after": 13}
    ]
    dry = run(b, "group", "reset-offsets", "billing", "--all-queues", "--to-latest")
    assert dry.exit_code == 0
    assert "dry run" in dry.output
    assert run_json(b, "group", "describe", "billing")["offsets"][0]["committed"] == 12  # unchanged

    done = run(b, "group", "reset-offsets", "billing", "--queue", "orders:0", "--to-offset", "3", "--execute")
    assert done.exit_code == 0, done.output
    assert run_json(b, "group", "describe", "billing")["offsets"][0]["committed"] == 3
    clamped = run(
        b, "--format", "json", "group", "reset-offsets", "billing", "--all-queues", "--to-offset", "999"
    )
    assert json.loads(clamped.stdout)["partitions"][0]["new"] == 20
    assert clamped.stderr == "warning: offset 999 is past the end of orders/0 (20): the reset uses 20\n"
    below = run(b, "group", "reset-offsets", "billing", "--queue", "orders", "--shift-by", "-100")
    assert "warning: offset -97 is before the start of orders/0 (0): the reset uses 0" in below.stderr
    assert run(b, "group", "reset-offsets", "billing", "--all-queues", "--to-offset", "20").stderr == ""
    by_time = run_json(b, "group", "reset-offsets", "billing", "--all-queues", "--by-duration", "PT1H")
    assert by_time["partitions"][0]["new"] == 0
    future = run_json(b, "group", "reset-offsets", "billing", "--all-queues", "--to-datetime", "2999-01-01")
    assert future["partitions"][0]["new"] == 20

    # confluent-kafka sees the reset: a new member of the group starts at offset 3.
    verifier = Consumer(
        {"bootstrap.servers": b.bootstrap, "group.id": "billing", "enable.auto.commit": False}
    )
    try:
        assert verifier.committed([TopicPartition("orders", 0)], timeout=10)[0].offset == 3
    finally:
        verifier.close()


def test_group_errors_are_one_line(group_broker: BrokerProcess) -> None:
    b = group_broker
    assert run(b, "queue", "create", "orders").exit_code == 0
    assert_one_line_error(run(b, "group", "reset-offsets", "g", "--queue", "orders"), "exactly one of")
    assert_one_line_error(
        run(b, "group", "reset-offsets", "g", "--queue", "orders", "--to-earliest", "--to-latest"),
        "exactly one",
    )
    assert_one_line_error(run(b, "group", "reset-offsets", "g", "--to-earliest"), "--all-queues")
    assert_one_line_error(
        run(b, "group", "reset-offsets", "g", "--queue", "orders", "--by-duration", "1h"), "bad duration"
    )
    assert_one_line_error(
        run(b, "group", "reset-offsets", "g", "--queue", "orders:7", "--to-earliest"), "no partition 7"
    )
    assert_one_line_error(
        run(b, "group", "reset-offsets", "g", "--queue", "nope", "--to-earliest"), "does not exist"
    )
    assert_one_line_error(
        run(b, "group", "reset-offsets", "g", "--all-queues", "--to-earliest"), "no committed offsets"
    )
    assert_one_line_error(run(b, "group", "describe", "never-seen"), "never-seen")


def test_commands_as_subprocesses(broker: BrokerProcess) -> None:
    def logq(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "logq_cli.main", *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={"LOGQ_BOOTSTRAP": broker.bootstrap, "PATH": ""},
        )

    assert logq("queue", "create", "orders", "-p", "2").returncode == 0
    listed = logq("--format", "json", "queue", "list")
    assert listed.returncode == 0
    assert json.loads(listed.stdout)[0]["queue"] == "orders"
    assert "orders" in logq("queue", "describe", "orders").stdout
    assert logq("group", "list").returncode == 0
    missing = logq("queue", "describe", "nope")
    assert missing.returncode == 1
    assert missing.stderr.strip() == "Error: queue 'nope' does not exist"
    assert logq("admin", "delete-queue", "orders", "--yes").returncode == 0
    for command in (
        ["queue", "create"],
        ["queue", "list"],
        ["queue", "describe"],
        ["admin", "delete-queue"],
        ["group", "list"],
        ["group", "describe"],
        ["group", "reset-offsets"],
    ):
        helped = logq(*command, "--help")
        assert helped.returncode == 0, command
        assert "Example" in helped.stdout, command
