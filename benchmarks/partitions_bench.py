"""Partition-count benchmark: a real standalone logq broker process creating a queue of 10,000 partitions
through the wire, then restarted with them.

Usage: python benchmarks/partitions_bench.py [--partitions N] [--rounds N] [--json FILE]

Each round starts a fresh broker (default settings; its 50 ``__consumer_offsets`` partitions come on top)
and measures:
- create: one CreateTopics request for N partitions (timeout_ms 15 minutes, so the broker answers when
  the creation is complete), from sending it to the answer; then a Metadata request must list every
  partition with a leader, and a produce to the last partition must be acknowledged (acks=all);
- restart after SIGTERM (a clean shutdown) and after SIGKILL (a crash just after a produce to every
  100th partition): from starting the process until it has answered a Metadata request listing every
  partition with a leader; of that, the time the broker itself logs for loading the partitions;
- the broker's resident memory (VmRSS) and open file descriptors, before the queue exists, after its
  creation and after each restart.
Targets: create <= 10 s, restart <= 10 s. Traffic stays on 127.0.0.1; every step is bounded in time;
every broker process started here is stopped by its PID, also on failure.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from logq.error_codes import ErrorCode  # noqa: E402
from logq.protocol import messages as m  # noqa: E402
from logq.testing import make_batch  # noqa: E402
from tests.broker_process import BrokerProcess  # noqa: E402
from tests.wire_client import WireClient  # noqa: E402

QUEUE = "big"
CREATE_TIMEOUT_MS = 15 * 60 * 1000
START_TIMEOUT_S = 15 * 60
TARGET_S = 10.0
LOADED = re.compile(r"loaded (\d+) partitions from .* in ([0-9.]+) s")


def memory_and_files(broker: BrokerProcess) -> tuple[float, int]:
    """(VmRSS in MiB, open descriptors) of the broker process."""
    assert broker.proc is not None
    pid = broker.proc.pid
    status = Path(f"/proc/{pid}/status").read_text()
    rss_kib = int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1))  # type: ignore[union-attr]
    return rss_kib / 1024, len(list(Path(f"/proc/{pid}/fd").iterdir()))


def every_partition_led(client: WireClient, partitions: int) -> None:
    request = m.MetadataRequest(topics=[m.MetadataRequestTopic(name=QUEUE)], allow_auto_topic_creation=False)
    topic = client.call(request, 8).topics[0]
    leaders = [p.leader_id for p in topic.partitions]
    if topic.error_code != ErrorCode.NONE or len(leaders) != partitions or min(leaders) < 0:
        raise RuntimeError(f"queue {QUEUE}: error {topic.error_code}, {len(leaders)} partitions listed")


def produce(client: WireClient, partition: int) -> None:
    data = m.PartitionProduceData(index=partition, records=make_batch(10, value_size=100))
    request = m.ProduceRequest(
        acks=-1, timeout_ms=30_000, topic_data=[m.TopicProduceData(name=QUEUE, partition_data=[data])]
    )
    answer = client.call(request, 8).responses[0].partition_responses[0]
    if answer.error_code != ErrorCode.NONE:
        raise RuntimeError(f"produce to partition {partition}: error {answer.error_code}")


def timed_start(broker: BrokerProcess, partitions: int) -> dict[str, float]:
    """Start the broker; seconds until it serves the whole queue, and its own loading time."""
    started = time.monotonic()
    broker.start(timeout=START_TIMEOUT_S)
    with WireClient(broker.bootstrap, timeout=60) as client:
        every_partition_led(client, partitions)
    serving = time.monotonic() - started
    loaded = [found for line in broker.output if (found := LOADED.search(line))]
    load_s = float(loaded[-1].group(2)) if loaded else float("nan")  # nan: a version that does not log it
    rss, fds = memory_and_files(broker)
    return {"serving_s": serving, "load_s": load_s, "rss_mib": rss, "fds": fds}


def one_round(work: Path, partitions: int) -> dict[str, Any]:
    work.mkdir(parents=True)
    broker = BrokerProcess(work / "data").start(timeout=START_TIMEOUT_S)
    try:
        empty_rss, empty_fds = memory_and_files(broker)
        topic = m.CreatableTopic(name=QUEUE, num_partitions=partitions, replication_factor=1)
        with WireClient(broker.bootstrap, timeout=CREATE_TIMEOUT_MS / 1000 + 60) as client:
            started = time.monotonic()
            answer = client.call(m.CreateTopicsRequest(topics=[topic], timeout_ms=CREATE_TIMEOUT_MS), 4)
            create_s = time.monotonic() - started
            if answer.topics[0].error_code != ErrorCode.NONE:
                raise RuntimeError(f"CreateTopics: error {answer.topics[0].error_code}")
            every_partition_led(client, partitions)
            produce(client, partitions - 1)
        created_rss, created_fds = memory_and_files(broker)
        broker.stop(timeout=START_TIMEOUT_S)
        clean = timed_start(broker, partitions)
        with WireClient(broker.bootstrap, timeout=60) as client:
            for partition in range(0, partitions, 100):
                produce(client, partition)
        broker.kill()
        crashed = timed_start(broker, partitions)
    finally:
        broker.kill()
    return {
        "partitions": partitions,
        "create_s": create_s,
        "empty": {"rss_mib": empty_rss, "fds": empty_fds},
        "created": {"rss_mib": created_rss, "fds": created_fds},
        "restart_clean": clean,
        "restart_after_sigkill": crashed,
    }


def values(rounds: list[dict[str, Any]], *path: str) -> list[float]:
    out = []
    for result in rounds:
        value: Any = result
        for key in path:
            value = value[key]
        out.append(float(value))
    return out


def median(rounds: list[dict[str, Any]], *path: str) -> float:
    return statistics.median(values(rounds, *path))


def seconds(rounds: list[dict[str, Any]], *path: str) -> str:
    """The median, then every round."""
    return f"{median(rounds, *path):.2f} ({', '.join(f'{v:.2f}' for v in values(rounds, *path))})"


def verdict(value: float) -> str:
    return f"<= {TARGET_S:g} s: {'met' if value <= TARGET_S else 'MISSED'}"


def report(rounds: list[dict[str, Any]]) -> None:
    partitions = rounds[0]["partitions"]
    total = partitions + 50
    print(f"\n{partitions:,} partitions (+ 50 of __consumer_offsets), {len(rounds)} round(s), medians:\n")
    print("| case | seconds: median (rounds) | of which the broker's loading | target |")
    print("|---|---|---|---|")
    create = median(rounds, "create_s")
    print(f"| create {partitions:,} partitions (CreateTopics) | {seconds(rounds, 'create_s')} |", end="")
    print(f" | {verdict(create)} |")
    for case, label in (
        ("restart_clean", "restart after SIGTERM"),
        ("restart_after_sigkill", "after SIGKILL"),
    ):
        serving = median(rounds, case, "serving_s")
        loading = median(rounds, case, "load_s")
        print(
            f"| {label}, until it serves all {total:,} | {seconds(rounds, case, 'serving_s')} "
            f"| {loading:.2f} | {verdict(serving)} |"
        )
    print("\n| broker | RSS | open descriptors |")
    print("|---|---|---|")
    for label, path in (
        ("fresh (50 partitions)", "empty"),
        (f"after creating {partitions:,}", "created"),
        ("after a clean restart", "restart_clean"),
        ("after a restart from SIGKILL", "restart_after_sigkill"),
    ):
        print(f"| {label} | {median(rounds, path, 'rss_mib'):.1f} MiB | {median(rounds, path, 'fds'):.0f} |")
    grown = median(rounds, "restart_clean", "rss_mib") - median(rounds, "empty", "rss_mib")
    print(f"\nmemory per partition after a clean restart: {grown * 1024 / partitions:.1f} KiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--partitions", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    rounds = []
    # Every round's data is deleted only at the end: ext4 avoids reusing recently freed inodes, and with
    # tens of thousands of them its inode allocator (recently_deleted) made the next round's mkdirs
    # several times slower.
    work = Path(tempfile.mkdtemp(prefix="logq-partitions-bench-"))
    try:
        for i in range(args.rounds):
            result = one_round(work / f"round-{i + 1}", args.partitions)
            rounds.append(result)
            print(f"round {i + 1}: {json.dumps(result)}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(rounds)
    if args.json:
        args.json.write_text(json.dumps(rounds, indent=1))


if __name__ == "__main__":
    main()
