"""``logq produce``, ``logq consume`` and ``logq perf`` end to end against a real broker (CliRunner and
subprocesses)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner

from logq_cli.main import main
from tests.broker_process import BrokerProcess, free_port
from tests.commands.test_admin_cli import assert_one_line_error, run, run_json


def lines(result_output: str) -> list[str]:
    return [line for line in result_output.splitlines() if line]


def test_produce_then_consume_with_keys_headers_and_partitions(broker: BrokerProcess, tmp_path: Path) -> None:
    assert run(broker, "queue", "create", "orders", "-p", "3").exit_code == 0
    plain = run(broker, "produce", "orders", "-p", "0", input="a\nb\nc\n")
    assert plain.exit_code == 0, plain.output
    assert plain.output.strip().startswith("produced 3 message(s) to orders (partitions 0)")
    keyed = run(broker, "produce", "orders", "-p", "1", "-K", ":", "-H", "src=cli", "-H", "n=1", "-z", "gzip",
                input="k1:v1\nk2:v:2\n")  # fmt: skip
    assert keyed.exit_code == 0, keyed.output
    source = tmp_path / "in.txt"
    source.write_bytes(b"x\r\ny\n")
    fixed = run(broker, "produce", "orders", "-f", str(source), "-k", "same", "--acks", "1", "-z", "none")
    assert fixed.exit_code == 0, fixed.output

    out = run(broker, "consume", "orders", "-o", "beginning", "-e", "--print", "partition,offset,key,headers")
    assert out.exit_code == 0, out.output
    got = sorted(lines(out.stdout))
    assert "0\t0\t\t\ta" in got
    assert "1\t1\tk2\tsrc=cli,n=1\tv:2" in got
    same = [line for line in got if "\tsame\t" in line]
    assert [line.rsplit("\t", 1)[1] for line in same] == ["x", "y"]  # one key: one partition, in order
    assert len(got) == 7

    as_json = run(broker, "--format", "json", "consume", "orders", "-p", "1", "-o", "0", "-n", "1")
    record = json.loads(lines(as_json.stdout)[0])
    assert record["key"] == "k1"
    assert record["value"] == "v1"
    assert record["headers"] == {"src": "cli", "n": "1"}
    assert record["partition"] == 1
    assert record["offset"] == 0
    assert abs(record["timestamp"] - time.time() * 1000) < 60_000


def test_consume_offset_specs(broker: BrokerProcess) -> None:
    assert run(broker, "queue", "create", "q").exit_code == 0
    assert run(broker, "produce", "q", input="".join(f"m{i}\n" for i in range(10))).exit_code == 0
    tail = run(broker, "consume", "q", "-o", "-3", "-e")
    assert lines(tail.stdout) == ["m7", "m8", "m9"]
    middle = run(broker, "consume", "q", "-o", "4", "-n", "2")
    assert lines(middle.stdout) == ["m4", "m5"]
    assert run(broker, "consume", "q", "-o", "end", "-e").stdout.strip() == ""
    future = run(broker, "consume", "q", "-o", "@2999-01-01", "-e")
    assert lines(future.stdout) == []
    past = run(broker, "consume", "q", "-o", "@1000000000000", "-e", "--print", "offset")
    assert lines(past.stdout)[0] == "0\tm0"
    idle = run(broker, "consume", "q", "-o", "end", "--timeout", "0.5")
    assert idle.exit_code == 0
    # Past the end: said, and read from the end (not silently from the beginning).
    past = run(broker, "consume", "q", "-o", "100", "-e")
    assert past.exit_code == 0, past.output
    assert lines(past.stdout) == []
    assert "warning: offset 100 is past the end of q/0 (10): reading from 10" in past.stderr
    grouped = run(broker, "consume", "q", "-g", "og", "-o", "100", "-e")
    assert lines(grouped.stdout) == []
    assert "offset 100 is past the end of q/0 (10)" in grouped.stderr
    assert run_json(broker, "group", "describe", "og")["offsets"][0]["committed"] == 10
    assert "warning" not in run(broker, "consume", "q", "-o", "10", "-e").stderr  # the end itself is fine


def test_consume_with_a_group_commits_what_it_printed(broker: BrokerProcess) -> None:
    assert run(broker, "queue", "create", "q").exit_code == 0
    assert run(broker, "produce", "q", input="".join(f"m{i}\n" for i in range(10))).exit_code == 0
    first = run(broker, "consume", "q", "-g", "g", "-n", "4")
    assert lines(first.stdout) == ["m0", "m1", "m2", "m3"]
    assert run_json(broker, "group", "describe", "g")["offsets"][0]["committed"] == 4
    rest = run(broker, "consume", "q", "-g", "g", "-e")
    assert lines(rest.stdout) == [f"m{i}" for i in range(4, 10)]
    assert run_json(broker, "group", "describe", "g")["total_lag"] == 0
    again = run(broker, "consume", "q", "-g", "g", "-o", "2", "-n", "1")
    assert lines(again.stdout) == ["m2"]


def test_consume_every_queue_a_pattern_matches(broker: BrokerProcess) -> None:
    for queue in ("pat-x", "pat-y", "unmatched"):
        assert run(broker, "queue", "create", queue).exit_code == 0
        assert run(broker, "produce", queue, input=f"{queue}-0\n{queue}-1\n").exit_code == 0
    out = run(broker, "consume", "--pattern", "pat-.*", "-g", "pg", "-n", "4", "--print", "queue,offset")
    assert out.exit_code == 0, out.output
    assert sorted(lines(out.stdout)) == [
        "pat-x\t0\tpat-x-0",
        "pat-x\t1\tpat-x-1",
        "pat-y\t0\tpat-y-0",
        "pat-y\t1\tpat-y-1",
    ]
    assert run(broker, "consume", "--pattern", "pat-.*").exit_code == 2  # a pattern needs a group
    assert run(broker, "consume", "-g", "pg").exit_code == 2  # neither a queue nor a pattern
    assert run(broker, "consume", "pat-x", "--pattern", "pat-.*", "-g", "pg").exit_code == 2
    assert_one_line_error(run(broker, "consume", "--pattern", "(", "-g", "pg"), "bad --pattern")


def test_produce_and_consume_errors_are_one_line(broker: BrokerProcess) -> None:
    assert run(broker, "queue", "create", "small", "-c", "max.message.bytes=1000").exit_code == 0
    assert_one_line_error(run(broker, "produce", "nope", input="x\n"), "'nope' does not exist")
    invalid = run(broker, "produce", "bad name!", input="x\n")
    assert_one_line_error(invalid, "'bad name!' may only contain letters, digits, '.', '_' and '-'")
    assert_one_line_error(run(broker, "consume", "bad name!", "-e"), "may only contain")
    internal = run(broker, "produce", "__consumer_offsets", input="x\n")
    assert_one_line_error(internal, "internal queues are not writable")
    assert "INVALID_TOPIC_EXCEPTION" not in internal.output
    assert_one_line_error(run(broker, "consume", "nope", "-e"), "'nope' does not exist")
    assert_one_line_error(run(broker, "consume", "nope", "-g", "g", "-e"), "'nope' does not exist")
    assert_one_line_error(run(broker, "consume", "nope", "-g", "g"), "'nope' does not exist")
    too_big = run(broker, "produce", "small", "-z", "none", input="x" * 5000 + "\n")
    assert_one_line_error(too_big, "exceeds max.message.bytes 1000")
    assert_one_line_error(run(broker, "consume", "small", "-o", "soon"), "bad offset")
    assert_one_line_error(run(broker, "consume", "small", "-p", "3", "-e"), "no partition 3")
    assert_one_line_error(run(broker, "consume", "small", "-o", "stored"), "needs a group")
    assert_one_line_error(run(broker, "consume", "small", "--print", "colour"), "cannot print 'colour'")
    assert_one_line_error(run(broker, "produce", "small", "-K", ":", input="nokey\n"), "no key separator")
    assert_one_line_error(run(broker, "produce", "small", "-H", "oops", input="x\n"), "key=value")
    assert run(broker, "consume", "small", "-g", "g", "-p", "0").exit_code == 2
    down = CliRunner().invoke(main, ["-b", f"127.0.0.1:{free_port()}", "produce", "q"], input="x\n")
    assert_one_line_error(down, "cannot reach a broker")
    down = CliRunner().invoke(main, ["-b", f"127.0.0.1:{free_port()}", "consume", "q"])
    assert_one_line_error(down, "cannot reach a broker")


def test_a_message_above_1_mib_needs_and_takes_max_request_size(
    broker: BrokerProcess, tmp_path: Path
) -> None:
    assert run(broker, "queue", "create", "big", "-c", "max.message.bytes=3000000").exit_code == 0
    line = base64.b64encode(os.urandom(1_500_000))  # 2 MB that zstd cannot shrink
    source = tmp_path / "big.txt"
    source.write_bytes(line + b"\n")
    refused = run(broker, "produce", "big", "-f", str(source))
    assert_one_line_error(refused, "max_request_size (1048576)", "--max-request-size")
    sent = run(broker, "produce", "big", "-f", str(source), "--max-request-size", "2500000")
    assert sent.exit_code == 0, sent.output
    tuned = run(
        broker, "produce", "big", "-f", str(source), "--max-request-size", "2500000", "-X", "linger.ms=1"
    )
    assert tuned.exit_code == 0, tuned.output
    read = run(broker, "consume", "big", "-e", "-X", "max.partition.fetch.bytes=1000")  # KIP-74: still whole
    assert read.exit_code == 0, read.output
    assert read.stdout.encode().splitlines() == [line, line]


def test_client_settings_with_x(broker: BrokerProcess) -> None:
    assert run(broker, "queue", "create", "q").exit_code == 0
    sent = run(broker, "produce", "q", "-X", "batch.size=65536", "-X", "client_id=loader", input="a\nb\n")
    assert sent.exit_code == 0, sent.output
    read = run(
        broker,
        "consume",
        "q",
        "-g",
        "xg",
        "-e",
        "-X",
        "session.timeout.ms=10000",
        "-X",
        "assignors=roundrobin",
    )
    assert lines(read.stdout) == ["a", "b"]
    assert_one_line_error(run(broker, "produce", "q", "-X", "acks=1", input="a\n"), "give it with --acks")
    assert_one_line_error(
        run(broker, "produce", "q", "-X", "compression.type=gzip", input="a\n"), "-z/--compression"
    )
    assert_one_line_error(run(broker, "consume", "q", "-X", "group.id=g"), "give it with -g/--group")
    assert_one_line_error(
        run(broker, "produce", "q", "-X", "lingerms=5", input="a\n"), "did you mean 'linger_ms'"
    )
    assert_one_line_error(
        run(broker, "produce", "q", "-X", "linger.ms=soon", input="a\n"), "expected a number"
    )
    assert_one_line_error(run(broker, "produce", "q", "-X", "linger.ms", input="a\n"), "key=value")
    assert_one_line_error(
        run(broker, "consume", "q", "-X", "assignors=sticky", "-g", "xg"), "unknown assignor"
    )


def test_perf_produce_and_consume(broker: BrokerProcess) -> None:
    assert run(broker, "queue", "create", "bench", "-p", "2").exit_code == 0
    produced = run_json(broker, "perf", "produce", "bench", "--count", "20000", "--size", "100", "--json")
    for key in ("messages", "seconds", "msgs_per_sec", "mb_per_sec", "latency_ms_p50", "latency_ms_p99"):
        assert key in produced
    assert produced["messages"] == 20000
    assert produced["bytes"] == 2_000_000
    consumed = run_json(broker, "perf", "consume", "bench", "--count", "20000", "--json")
    assert consumed["messages"] == 20000
    assert consumed["bytes"] == 2_000_000
    table = run(
        broker, "perf", "produce", "bench", "--count", "1000", "--size", "10", "--acks", "1", "-z", "none"
    )
    assert table.exit_code == 0, table.output
    assert "msg/s" in table.output
    assert "p99" in table.output
    grouped = run(broker, "perf", "consume", "bench", "--count", "21000", "-g", "perf")
    assert grouped.exit_code == 0, grouped.output
    assert_one_line_error(run(broker, "perf", "produce", "nope", "--count", "10"), "does not exist")
    assert_one_line_error(
        run(broker, "perf", "consume", "bench", "--count", "99999", "--timeout", "1"), "timed out"
    )


def test_produce_and_consume_as_subprocesses(broker: BrokerProcess) -> None:
    def logq(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "logq_cli.main", "-b", broker.bootstrap, *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    assert logq("queue", "create", "q").returncode == 0
    produced = logq("produce", "q", stdin="one\ntwo\n")
    assert produced.returncode == 0, produced.stderr
    consumed = logq("consume", "q", "-o", "beginning", "-e")
    assert consumed.stdout.splitlines() == ["one", "two"]
    assert consumed.stderr.strip() == "consumed 2 message(s)"
    perf = logq("perf", "produce", "q", "--count", "1000", "--json")
    assert json.loads(perf.stdout)["messages"] == 1000
    for command in (
        ["produce"],
        ["consume"],
        ["perf"],
        ["perf", "produce"],
        ["perf", "consume"],
        ["queue"],
        ["group"],
        ["admin"],
        ["broker"],
        ["broker", "start"],
        ["storage"],
        ["storage", "inspect"],
        [],
    ):
        helped = logq(*command, "--help")
        assert helped.returncode == 0, command
        assert "Example" in helped.stdout, command
    missing = logq("consume", "nope", "-e")
    assert missing.returncode == 1
    assert missing.stderr.strip() == "Error: queue 'nope' does not exist"
