"""kcat 1.7.1 (Debian, librdkafka 2.0.2: the oldest librdkafka we support) against a real broker:
auto-created queue, idempotent produce in each codec, read from offset 0, ListOffsets, delete."""

from __future__ import annotations

import json
import re
import subprocess
import time

import pytest

from logq.protocol import messages as m
from tests.broker_process import BrokerProcess
from tests.compat.helpers import (
    CODECS,
    DEADLINE_S,
    FETCH_PARTITION_BYTES,
    N_MESSAGES,
    PARTITIONS,
    Received,
    Sent,
    check_codec,
    check_round_trip,
    encode_value,
    first_offsets_at_or_after,
    now_ms,
    seq_of,
    stored_codecs,
)
from tests.wire_client import WireClient

RUNS = 2  # two kcat processes, so the second run's timestamps are strictly later than the first's


def run_kcat(kcat: str, bootstrap: str, *args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        [kcat, "-b", bootstrap, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=DEADLINE_S,
        check=False,
    )
    assert result.returncode == 0, f"kcat {' '.join(args)} exited {result.returncode}:\n{result.stderr}"
    return result.stdout


def produce(kcat: str, bootstrap: str, queue: str, codec: str) -> tuple[list[Sent], list[tuple[int, int]]]:
    """N_MESSAGES in RUNS kcat runs; returns the messages and each run's wall-clock window (ms).
    kcat -P sets one header list for every message of a run (-H) and lets librdkafka stamp CreateTime,
    so headers are per run and timestamps are checked against the run's window."""
    sent: list[Sent] = []
    windows = []
    per_run = N_MESSAGES // RUNS
    for run in range(RUNS):
        headers = (("client", b"kcat"), ("run", b"%d" % run), ("variant", codec.encode()))
        batch = [
            Sent(i, b"key-%06d" % i, encode_value(codec, i), headers, None)
            for i in range(run * per_run, (run + 1) * per_run)
        ]
        lines = "".join(f"{s.key.decode()}\t{s.value.decode()}\n" for s in batch)
        compression = [] if codec == "none" else ["-z", codec]
        header_args = [arg for k, v in headers for arg in ("-H", f"{k}={v.decode()}")]
        time.sleep(0.005)  # a fresh millisecond for the new run
        started = now_ms()
        # -K: "key<TAB>value" lines; the idempotent producer implies acks=all, which we ask for anyway
        out = run_kcat(
            kcat, bootstrap, "-P", "-t", queue, "-K", "\t", *compression, *header_args,
            "-X", "enable.idempotence=true", "-X", "acks=all", stdin=lines,
        )  # fmt: skip
        assert out == ""
        windows.append((started, now_ms()))
        sent += batch
    return sent, windows


def consume(kcat: str, bootstrap: str, queue: str, *start: str) -> list[Received]:
    """Every partition from ``start`` (default: the beginning) to its end, without a consumer group."""
    out = run_kcat(
        kcat, bootstrap, "-C", "-t", queue, "-o", *(start or ("beginning",)), "-e", "-J",
        "-X", f"fetch.message.max.bytes={FETCH_PARTITION_BYTES}",
    )  # fmt: skip
    received = []
    for line in out.splitlines():
        msg = json.loads(line)
        assert msg["tstype"] == "create"
        flat = msg.get("headers") or []
        headers = tuple((flat[i], flat[i + 1].encode()) for i in range(0, len(flat), 2))
        received.append(
            Received(
                msg["partition"],
                msg["offset"],
                msg["key"].encode(),
                msg["payload"].encode(),
                headers,
                msg["ts"],
            )
        )
    return received


def query_offsets(kcat: str, bootstrap: str, queue: str, timestamp: int) -> dict[int, int]:
    """kcat -Q: ListOffsets for one timestamp (or -1 latest, -2 earliest) in every partition."""
    args = [a for p in range(PARTITIONS) for a in ("-t", f"{queue}:{p}:{timestamp}")]
    out = run_kcat(kcat, bootstrap, "-Q", *args)
    found = re.findall(rf"^{re.escape(queue)} \[(\d+)\] offset (-?\d+)$", out, re.MULTILINE)
    assert len(found) == PARTITIONS, out
    return {int(p): int(o) for p, o in found}


@pytest.mark.parametrize("codec", CODECS)
def test_produce_read_list_offsets_delete(auto_create_broker: BrokerProcess, kcat: str, codec: str) -> None:
    bootstrap = auto_create_broker.bootstrap
    queue = f"compat.kcat.{codec}"
    sent, windows = produce(kcat, bootstrap, queue, codec)

    by_partition = check_round_trip(consume(kcat, bootstrap, queue), sent)
    check_codec(stored_codecs(bootstrap, queue), codec)  # -z really compresses, with the right codec
    split = len(sent) // RUNS
    for records in by_partition.values():
        stamps = [r.timestamp for r in records]
        assert stamps == sorted(stamps)
        for r in records:
            low, high = windows[seq_of(r.value) // split]
            assert low <= r.timestamp <= high, "CreateTime outside the window of its kcat run"

    assert query_offsets(kcat, bootstrap, queue, -2) == dict.fromkeys(range(PARTITIONS), 0)
    assert query_offsets(kcat, bootstrap, queue, -1) == {p: len(r) for p, r in by_partition.items()}
    records = [r for part in by_partition.values() for r in part]
    second = min(r.timestamp for r in records if seq_of(r.value) >= split)
    assert second > max(r.timestamp for r in records if seq_of(r.value) < split)
    # the answer for the second run's first timestamp is where that run starts in each partition
    expected = {
        p: next(r.offset for r in part if seq_of(r.value) >= split) for p, part in by_partition.items()
    }
    assert first_offsets_at_or_after(by_partition, second) == expected
    assert query_offsets(kcat, bootstrap, queue, second) == expected
    newest = max(r.timestamp for r in records)
    assert query_offsets(kcat, bootstrap, queue, newest + 1) == dict.fromkeys(range(PARTITIONS), -1)
    # -o s@TS starts each partition at ListOffsets(TS): exactly the second run is read
    from_second = consume(kcat, bootstrap, queue, f"s@{second}")
    assert sorted(seq_of(r.value) for r in from_second) == list(range(split, len(sent)))

    # kcat has no admin API: delete with a DeleteTopics request, then ask kcat's metadata
    with WireClient(bootstrap) as client:
        response = client.call(m.DeleteTopicsRequest(topic_names=[queue], timeout_ms=10_000), 3)
    assert [(r.name, r.error_code) for r in response.responses] == [(queue, 0)]
    # -L without -t asks for all queues, which auto-creates nothing
    listed = json.loads(run_kcat(kcat, bootstrap, "-L", "-J"))
    assert queue not in [t["topic"] for t in listed["topics"]]
