"""``logq queue delete-records``: the dry run, the real run, by offset and by time, bad input as one line,
and the principal-based refusal with an authorizer (the broker's own TOPIC_AUTHORIZATION_FAILED too)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from confluent_kafka import Producer

from logq.client.cluster import QueuePartition
from logq.client.sync_admin import Admin
from logq.error_codes import ErrorCode
from tests.broker.test_authorization import start_with_admin_acl
from tests.broker_process import BrokerProcess
from tests.commands.test_admin_cli import assert_one_line_error, run, run_json
from tests.compat.test_delete_records import delete_records_raw


def produce(bootstrap: str, queue: str, partitions: int, count: int, timestamp_ms: int = 0) -> None:
    """``count`` records per partition; record i's timestamp is ``timestamp_ms + 1000 * i`` if given."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    for p in range(partitions):
        for i in range(count):
            producer.produce(
                queue, b"v", partition=p, timestamp=timestamp_ms + 1000 * i if timestamp_ms else 0
            )
    assert producer.flush(10) == 0


def log_starts(bootstrap: str, queue: str, partitions: int) -> list[int]:
    with Admin(bootstrap) as admin:
        found = admin.list_offsets([QueuePartition(queue, p) for p in range(partitions)], -2)
    return [found[QueuePartition(queue, p)] for p in range(partitions)]


def test_dry_run_then_execute(broker: BrokerProcess) -> None:
    assert run(broker, "queue", "create", "trimmed", "-p", "2").exit_code == 0
    produce(broker.bootstrap, "trimmed", 2, 40)
    dry = run(broker, "queue", "delete-records", "trimmed", "--before", "30")
    assert dry.exit_code == 0, dry.output
    assert "dry run: nothing deleted (60 record(s) would go)" in dry.output
    assert log_starts(broker.bootstrap, "trimmed", 2) == [0, 0]
    plan = run_json(broker, "queue", "delete-records", "trimmed", "--before", "30", "-p", "1")
    assert plan["partitions"] == [{"partition": 1, "log_start": 0, "new_log_start": 30, "records": 30}]
    done = run(broker, "queue", "delete-records", "trimmed", "--before", "30", "-p", "1", "--execute")
    assert done.exit_code == 0, done.output
    assert "deleted 30 record(s) of queue trimmed" in done.output
    assert log_starts(broker.bootstrap, "trimmed", 2) == [0, 30]
    # past the end: up to the end; below the start: nothing
    assert run_json(broker, "queue", "delete-records", "trimmed", "--before", "99")["partitions"] == [
        {"partition": 0, "log_start": 0, "new_log_start": 40, "records": 40},
        {"partition": 1, "log_start": 30, "new_log_start": 40, "records": 10},
    ]
    assert run_json(broker, "queue", "delete-records", "trimmed", "--before", "5", "-p", "1")[
        "partitions"
    ] == [{"partition": 1, "log_start": 30, "new_log_start": 30, "records": 0}]


def test_before_time_uses_the_record_timestamps(broker: BrokerProcess) -> None:
    assert run(broker, "queue", "create", "timed").exit_code == 0
    base = 1_767_225_600_000  # 2026-01-01T00:00:00Z; record i at base + i seconds
    produce(broker.bootstrap, "timed", 1, 20, timestamp_ms=base)
    done = run_json(
        broker, "queue", "delete-records", "timed", "--before-time", "2026-01-01T00:00:12Z", "--execute"
    )
    assert done["partitions"] == [{"partition": 0, "log_start": 0, "new_log_start": 12, "records": 12}]
    assert log_starts(broker.bootstrap, "timed", 1) == [12]


def test_bad_input_is_one_line(broker: BrokerProcess) -> None:
    assert run(broker, "queue", "create", "kept").exit_code == 0
    assert_one_line_error(run(broker, "queue", "delete-records", "kept"), "give exactly one of --before")
    assert_one_line_error(
        run(broker, "queue", "delete-records", "kept", "--before", "1", "--before-time", "2026-01-01"),
        "give exactly one of --before",
    )
    assert_one_line_error(run(broker, "queue", "delete-records", "kept", "--before", "-3"), "negative")
    assert_one_line_error(
        run(broker, "queue", "delete-records", "kept", "--before", "1", "-p", "4"), "no partition 4"
    )
    assert_one_line_error(run(broker, "queue", "delete-records", "missing", "--before", "1"), "missing")
    assert_one_line_error(
        run(broker, "queue", "delete-records", "kept", "--before-time", "yesterday"), "yesterday"
    )


@pytest.fixture(scope="module")
def acl_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    proc = start_with_admin_acl(tmp_path_factory.mktemp("records-acl") / "data")
    yield proc
    proc.kill()


def test_needs_delete_on_the_queue(acl_broker: BrokerProcess) -> None:
    b = acl_broker
    granted = run(
        b, "acl", "add", "--allow-principal", "User:ANONYMOUS",
        "--operation", "create", "--operation", "describe", "--queue", "guarded",
    )  # fmt: skip
    assert granted.exit_code == 0, granted.output
    assert run(b, "queue", "create", "guarded").exit_code == 0
    why = "User:ANONYMOUS may not delete records of queue guarded (needs DELETE on TOPIC:guarded)"
    assert_one_line_error(run(b, "queue", "delete-records", "guarded", "--before", "0"), why)
    assert delete_records_raw(b.bootstrap, "guarded", 0) == (ErrorCode.TOPIC_AUTHORIZATION_FAILED, -1)
    allowed = run(
        b, "acl", "add", "--allow-principal", "User:ANONYMOUS", "--operation", "delete", "--queue", "guarded"
    )
    assert allowed.exit_code == 0, allowed.output
    assert delete_records_raw(b.bootstrap, "guarded", 0) == (ErrorCode.NONE, 0)
    done = run(b, "queue", "delete-records", "guarded", "--before", "0", "--execute")
    assert done.exit_code == 0, done.output
