"""The long-running commands (consume, produce, perf) as real processes sent real signals: SIGTERM does what
Ctrl-C does (a consumer commits and leaves its group, a producer reports what it delivered), and a
terminal shows a progress line. Checked through the broker, with logq's admin client."""

from __future__ import annotations

import contextlib
import os
import pty
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import pytest

from logq.client.cluster import QueuePartition
from logq.client.sync_admin import Admin
from logq.errors import LogqError
from tests.broker_process import ROOT, BrokerProcess
from tests.commands.test_admin_cli import GROUP_SETTINGS, run

DEADLINE_S = 30.0


@pytest.fixture
def group_broker(tmp_path: Path) -> Iterator[BrokerProcess]:
    proc = BrokerProcess(tmp_path / "data", broker=GROUP_SETTINGS).start()
    yield proc
    proc.kill()


@contextlib.contextmanager
def logq(
    broker: BrokerProcess, *args: str, stderr: int | IO[bytes] = subprocess.PIPE
) -> Iterator[subprocess.Popen[bytes]]:
    """``logq -b BROKER ARGS...`` as a process with its stdin and stdout (and stderr) piped; killed if
    still running on the way out, then reaped."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "logq_cli.main", "-b", broker.bootstrap, *args],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=stderr,
    )
    with proc:  # closes the pipes and waits
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()


def stderr_of(proc: subprocess.Popen[bytes]) -> list[str]:
    assert proc.stderr is not None
    return proc.stderr.read().decode().strip().splitlines()


class Lines:
    """A process's output lines, read by a thread so that waiting for one never blocks for ever."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._lines: queue.Queue[bytes] = queue.Queue()
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: IO[bytes]) -> None:
        for line in stream:
            self._lines.put(line.rstrip(b"\n"))

    def take(self, count: int) -> list[bytes]:
        deadline = time.monotonic() + DEADLINE_S
        return [self._lines.get(timeout=max(deadline - time.monotonic(), 0.01)) for _ in range(count)]


def wait_until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def end_offset(broker: BrokerProcess, queue_name: str) -> int:
    with Admin(broker.bootstrap) as admin:
        return sum(admin.list_offsets(admin.partitions_of(queue_name), -1).values())


def members_of(broker: BrokerProcess, group: str) -> int:
    with Admin(broker.bootstrap) as admin:
        try:
            return len(admin.describe_group(group).members)
        except LogqError:  # not known yet
            return 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stopped_consume_commits_every_partition_and_leaves_its_group(
    group_broker: BrokerProcess, sig: signal.Signals
) -> None:
    b = group_broker
    assert run(b, "queue", "create", "q", "-p", "3").exit_code == 0
    assert run(b, "produce", "q", "-p", "0", input="".join(f"m{i}\n" for i in range(5))).exit_code == 0
    with logq(b, "consume", "q", "-g", "g") as proc:
        assert proc.stdout is not None
        assert Lines(proc.stdout).take(5) == [b"m0", b"m1", b"m2", b"m3", b"m4"]
        with Admin(b.bootstrap) as admin:
            assert len(admin.describe_group("g").members) == 1
        proc.send_signal(sig)
        assert proc.wait(DEADLINE_S) == 0
        assert stderr_of(proc) == ["consumed 5 message(s)"]
    with Admin(b.bootstrap) as admin:
        group = admin.describe_group("g")
        assert group.members == ()  # left at once, not after the session timeout
        assert group.state == "Empty"
        # Every assigned partition, also those nothing was read from (where reading would start).
        assert admin.committed_offsets("g") == {
            QueuePartition("q", 0): 5,
            QueuePartition("q", 1): 0,
            QueuePartition("q", 2): 0,
        }


def test_consume_n_commits_what_it_printed_and_where_the_other_partitions_start(
    group_broker: BrokerProcess,
) -> None:
    b = group_broker
    assert run(b, "queue", "create", "q", "-p", "3").exit_code == 0
    assert run(b, "produce", "q", "-p", "1", input="".join(f"m{i}\n" for i in range(6))).exit_code == 0
    out = run(b, "consume", "q", "-g", "g", "-n", "2")
    assert out.stdout.split() == ["m0", "m1"]
    with Admin(b.bootstrap) as admin:
        assert admin.committed_offsets("g") == {
            QueuePartition("q", 0): 0,
            QueuePartition("q", 1): 2,  # not 6: the four records -n left unprinted come again
            QueuePartition("q", 2): 0,
        }
    rest = run(b, "consume", "q", "-g", "g", "-e")
    assert rest.stdout.split() == ["m2", "m3", "m4", "m5"]


def test_sigterm_while_produce_waits_for_input_reports_what_was_delivered(broker: BrokerProcess) -> None:
    assert run(broker, "queue", "create", "q").exit_code == 0
    with logq(broker, "produce", "q") as proc:
        assert proc.stdin is not None
        proc.stdin.write(b"a\nb\nc\n")
        proc.stdin.flush()  # and kept open: the command waits for more
        wait_until(lambda: end_offset(broker, "q") == 3, "3 messages delivered")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(DEADLINE_S) == 1
        assert stderr_of(proc) == [
            "Error: interrupted by SIGTERM: 3 of 3 message(s) delivered to q, 0 not delivered"
        ]


def test_a_second_signal_stops_waiting_for_a_broker_that_does_not_answer(broker: BrokerProcess) -> None:
    assert run(broker, "queue", "create", "q").exit_code == 0
    with logq(broker, "produce", "q") as proc:
        assert proc.stdin is not None
        proc.stdin.write(b"a\nb\n")
        proc.stdin.flush()
        wait_until(lambda: end_offset(broker, "q") == 2, "2 messages delivered")
        broker.pause()  # SIGSTOP: it no longer answers
        try:
            proc.stdin.write(b"c\nd\ne\n")
            proc.stdin.flush()
            time.sleep(0.5)  # read and sent, never acknowledged
            proc.send_signal(signal.SIGTERM)  # stops reading, waits for the acknowledgements...
            time.sleep(0.5)
            assert proc.poll() is None
            proc.send_signal(signal.SIGTERM)  # ...until told not to wait
            assert proc.wait(DEADLINE_S) == 1
        finally:
            broker.resume()
        err = stderr_of(proc)
    assert err[-1] == "Error: interrupted by SIGTERM: 2 of 5 message(s) delivered to q, 3 not delivered"
    assert all(line.startswith(("warning: ", "Error: ")) for line in err), err


def test_sigterm_stops_perf_consume_and_leaves_its_group(group_broker: BrokerProcess) -> None:
    b = group_broker
    assert run(b, "queue", "create", "q").exit_code == 0
    assert run(b, "produce", "q", input="x\ny\n").exit_code == 0
    with logq(b, "perf", "consume", "q", "--count", "1000000", "-g", "pg") as proc:
        wait_until(lambda: members_of(b, "pg") == 1, "perf consume joined")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(DEADLINE_S) == 1
        [said] = stderr_of(proc)
        assert re.fullmatch(r"Error: interrupted by SIGTERM after reading [0-2] of 1000000 messages", said)
    assert members_of(b, "pg") == 0


def _on_a_terminal(
    broker: BrokerProcess, args: list[str], feed: Callable[[IO[bytes]], None] = lambda _stdin: None
) -> tuple[str, str]:
    """Run a command whose stderr is a terminal (a pty) and whose stdout is a pipe; ``feed`` writes its
    stdin, which is closed after. Returns its stdout, and what the terminal showed."""
    master, slave = pty.openpty()
    shown = bytearray()

    def read_terminal() -> None:
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: every process holding the terminal closed it
                return
            if not chunk:
                return
            shown.extend(chunk)

    reader = threading.Thread(target=read_terminal, daemon=True)
    reader.start()
    try:
        with os.fdopen(slave, "wb", buffering=0) as terminal, logq(broker, *args, stderr=terminal) as proc:
            terminal.close()  # the command holds its own copy
            assert proc.stdin is not None
            assert proc.stdout is not None
            feed(proc.stdin)
            proc.stdin.close()
            out = proc.stdout.read().decode()
            assert proc.wait(DEADLINE_S) == 0
        reader.join(DEADLINE_S)
    finally:
        os.close(master)
    return out, shown.decode()


def test_long_produces_and_consumes_show_a_progress_line_on_a_terminal(broker: BrokerProcess) -> None:
    assert run(broker, "queue", "create", "q").exit_code == 0

    def slowly(stdin: IO[bytes]) -> None:
        stdin.write(b"a\nb\n")
        stdin.flush()
        wait_until(lambda: end_offset(broker, "q") == 2, "the first 2 messages delivered")  # running
        time.sleep(1.5)  # past the first second: the line shows
        stdin.write(b"c\n")

    out, shown = _on_a_terminal(broker, ["produce", "q"], slowly)
    assert out.startswith("produced 3 message(s) to q")
    assert re.search(r"\r\x1b\[Kproducing to q: 2 sent, 2 delivered \(\d+ msg/s\)", shown), shown
    assert shown.endswith("\r\x1b[K")  # cleared: the terminal keeps no stale line

    out, shown = _on_a_terminal(broker, ["consume", "q", "-o", "beginning", "--timeout", "2"])
    assert out.split() == ["a", "b", "c"]
    assert re.search(r"\r\x1b\[Kconsuming q: 3 message\(s\) \(\d+ msg/s\)", shown), shown
    assert shown.endswith("\r\x1b[Kconsumed 3 message(s)\r\n")  # the pty turns \n into \r\n
