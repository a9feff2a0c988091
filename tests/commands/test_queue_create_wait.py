"""``logq queue create`` and ``Admin.create_queue`` when the broker is still creating the queue at the
request's timeout: it answers REQUEST_TIMED_OUT and goes on (Kafka's semantics), and the client waits for
the queue with a message instead of calling it a failure."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from logq.client.sync_admin import Admin
from logq.errors import ClientTimeoutError
from tests.broker_process import ROOT, BrokerProcess

MANY = 500


def test_queue_create_waits_with_a_message_for_a_creation_still_going_on(broker: BrokerProcess) -> None:
    # --timeout 0.001: the broker answers after 1 ms, long before 500 logs can exist
    command = ["queue", "create", "big", "-p", str(MANY), "--timeout", "0.001"]
    created = subprocess.run(
        [sys.executable, "-m", "logq_cli.main", "-b", broker.bootstrap, *command],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert created.returncode == 0, created.stderr
    assert created.stderr == (
        f"the broker is still creating queue big ({MANY} partitions); waiting for it...\n"
    )
    assert created.stdout == f"created queue big with {MANY} partition(s), replication 1\n"
    with Admin(broker.bootstrap) as admin:
        info = admin.describe_queue("big")
    assert len(info.partitions) == MANY
    assert all(p.leader == 0 for p in info.partitions)


def test_create_queue_gives_up_after_its_wait_with_one_clear_error(broker: BrokerProcess) -> None:
    lines: list[str] = []
    with Admin(broker.bootstrap) as admin:
        with pytest.raises(ClientTimeoutError, match="'huge' is still being created after waiting 0 s"):
            admin.create_queue("huge", 2000, timeout_ms=1, wait_s=0, on_wait=lines.append)
        assert lines == ["the broker is still creating queue huge (2000 partitions); waiting for it"]
        deadline = time.monotonic() + 60
        while True:  # the broker went on with it regardless
            listed = {q.name: q for q in admin.list_queues()}
            if "huge" in listed and all(p.leader == 0 for p in listed["huge"].partitions):
                break
            assert time.monotonic() < deadline
            time.sleep(0.2)


def test_a_quick_creation_says_nothing_more(broker: BrokerProcess) -> None:
    lines: list[str] = []
    with Admin(broker.bootstrap) as admin:
        info = admin.create_queue("small", 3, on_wait=lines.append)
    assert info.partition_count == 3
    assert lines == []
