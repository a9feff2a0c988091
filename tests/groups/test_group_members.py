"""Group members as separate processes: a member killed with SIGKILL, a mixed-client group, kcat -G."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.broker_process import BrokerProcess
from tests.groups.test_group_broker import gbroker, make_queue
from tests.member_process import MemberProcess

__all__ = ["gbroker"]  # the fixture


def start_member(bootstrap: str, queue: str, group: str, client: str, seconds: float) -> MemberProcess:
    """A member of ``tests.groups.group_member`` (confluent-kafka or kafka-python) in its own process."""
    return MemberProcess("tests.groups.group_member", bootstrap, queue, group, client, str(seconds))


def wait_for(condition: Any, seconds: float, what: str) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > seconds:
            raise AssertionError(f"timed out after {seconds} s waiting for {what}")
        time.sleep(0.1)
    return time.monotonic() - started


def produce(bootstrap: str, queue: str, start: int, count: int) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for i in range(start, start + count):
        producer.produce(queue, key=b"%d" % i, value=b"v%06d" % i)
    assert producer.flush(30) == 0


def all_offsets(bootstrap: str, queue: str, partitions: int) -> set[tuple[int, int]]:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "probe", "enable.auto.commit": False})
    ends = [
        consumer.get_watermark_offsets(TopicPartition(queue, p), timeout=10)[1] for p in range(partitions)
    ]
    consumer.close()
    return {(p, o) for p in range(partitions) for o in range(ends[p])}


def test_a_killed_member_s_partitions_move_to_the_others_and_nothing_is_lost(gbroker: BrokerProcess) -> None:
    make_queue(gbroker.bootstrap, "kq", 6, 300)
    members = [start_member(gbroker.bootstrap, "kq", "kg", "confluent", 40) for _ in range(3)]
    try:
        wait_for(lambda: sorted(p for x in members for p in x.assignment) == list(range(6)), 30, "assignment")
        victim, survivors = members[0], members[1:]
        wait_for(lambda: bool(victim.consumed), 20, "the victim to consume")
        victim.kill()
        produce(gbroker.bootstrap, "kq", 300, 300)
        took = wait_for(
            lambda: sorted(p for x in survivors for p in x.assignment) == list(range(6)), 25, "takeover"
        )
        assert took < 6 + 10  # the session timeout (6 s) plus the rebalance, with slack for this machine
        expected = all_offsets(gbroker.bootstrap, "kq", 6)
        assert len(expected) == 600
        try:
            wait_for(lambda: set().union(*(x.consumed for x in members)) >= expected, 30, "every message")
        except AssertionError:
            missing = sorted(expected - set().union(*(x.consumed for x in members)))
            raise AssertionError(
                f"missing {len(missing)}: {missing[:10]}; assignments {[x.assignment for x in members]}; "
                f"events {[x.events[:3] + x.events[-3:] for x in survivors]}"
            ) from None
    finally:
        for member in members:
            if member.proc.poll() is None:
                member.kill()


def test_a_mixed_group_agrees_on_the_assignment(gbroker: BrokerProcess) -> None:
    make_queue(gbroker.bootstrap, "mq", 4, 200)
    members = [
        start_member(gbroker.bootstrap, "mq", "mixed", "confluent", 15),
        start_member(gbroker.bootstrap, "mq", "mixed", "kafka-python", 15),
    ]
    try:
        # The first member may hold all four partitions until the second one's join rebalances the group.
        wait_for(
            lambda: (
                sorted(p for x in members for p in x.assignment) == [0, 1, 2, 3]
                and all(len(x.assignment) == 2 for x in members)
            ),
            30,
            "a settled assignment of two partitions each",
        )
        wait_for(lambda: len(set().union(*(x.consumed for x in members))) == 200, 30, "every message")
    finally:
        for member in members:
            member.kill()


def test_two_kcat_members_share_a_queue(gbroker: BrokerProcess, tmp_path: Path) -> None:
    make_queue(gbroker.bootstrap, "kcq", 4, 400)
    command = ["kcat", "-b", gbroker.bootstrap, "-G", "kcg", "kcq", "-o", "beginning", "-q", "-u"]
    command += ["-f", "%p %o\\n", "-X", "session.timeout.ms=6000"]
    outputs = [open(tmp_path / f"kcat{i}.out", "w+") for i in range(2)]  # noqa: SIM115 - closed below
    procs = [subprocess.Popen(command, stdout=out) for out in outputs]
    try:

        def seen() -> list[set[tuple[int, int]]]:
            return [
                {
                    tuple(map(int, line.split()))
                    for line in (tmp_path / f"kcat{i}.out").read_text().splitlines()
                }
                for i in range(2)
            ]

        wait_for(lambda: len(set().union(*seen())) == 400, 40, "both kcat members to read everything")
        assert all(seen()), "one kcat member got no partition"
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
            proc.wait(20)
        for out in outputs:
            out.close()
