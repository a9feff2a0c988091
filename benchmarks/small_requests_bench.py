"""The cost of a small request: a broker flooded with one-message Produce requests and small Fetches.

Usage: python benchmarks/small_requests_bench.py [--clients 4] [--messages 40000] [--rounds 3]
                                                 [--variant NAME=CHECKOUT[,ENV=VALUE...]] [--json FILE]

Two cases, each on a fresh standalone broker on 127.0.0.1:
- produce: ``--clients`` confluent-kafka producers, each in its own process, send ``--messages`` 100 B
  messages as fast as the broker answers, with ``linger.ms=0`` and ``batch.num.messages=1`` so that every
  message is its own Produce request (acks=1);
- fetch: as many consumers, each in its own process, read a queue of such one-message batches from the
  start with ``max.partition.fetch.bytes=1024`` (a few batches per Fetch).
The figures are the broker's requests per second (its own request counter over the case's wall time) and
its CPU time per request (user + system, from /proc).

``--variant`` compares brokers side by side in one run, alternating: NAME=CHECKOUT runs the broker from
another checkout of logq (its own ``.venv``), with optional environment variables; the default is this
checkout as it is. Traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.broker_process import free_port  # noqa: E402

PRODUCER = """
import sys
from confluent_kafka import Producer
bootstrap, count = sys.argv[1], int(sys.argv[2])
p = Producer({"bootstrap.servers": bootstrap, "acks": "1", "linger.ms": 0, "batch.num.messages": 1,
              "queue.buffering.max.messages": 10000})
value = b"x" * 100
sent = 0
while sent < count:
    try:
        p.produce("small", value)
        sent += 1
    except BufferError:
        p.poll(0.001)
    p.poll(0)
p.flush(120)
"""

CONSUMER = """
import sys
from confluent_kafka import Consumer, TopicPartition
bootstrap, count = sys.argv[1], int(sys.argv[2])
c = Consumer({"bootstrap.servers": bootstrap, "group.id": "small", "enable.auto.commit": False,
              "max.partition.fetch.bytes": 1024, "fetch.max.bytes": 1024, "message.max.bytes": 1024,
              "fetch.wait.max.ms": 100})
c.assign([TopicPartition("small", 0, 0)])
seen = 0
while seen < count:
    seen += sum(1 for m in c.consume(1000, 1.0) if not m.error())
c.close()
"""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def requests_served(metrics_port: int, api: str) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
    for line in text.splitlines():
        if line.startswith(f'logq_requests_total{{api="{api}"}}'):
            return float(line.split()[-1])
    return 0.0


class Broker:
    """A standalone broker run from ``checkout`` (its .venv), with extra environment variables."""

    def __init__(self, checkout: Path, env: dict[str, str], work: Path) -> None:
        self.port, self.metrics_port = free_port(), free_port()
        data = work / "data"
        data.mkdir(mode=0o700)
        python = checkout / ".venv" / "bin" / "python"
        self.log = work / "broker.log"
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(
                [str(python), "-m", "logq_cli.main", "broker", "start", "--data-dir", str(data),
                 "--listen", f"127.0.0.1:{self.port}", "--metrics-listen", f"127.0.0.1:{self.metrics_port}"],
                cwd=checkout, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + 30
        while "listening on" not in self.log.read_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the broker did not start:\n" + self.log.read_text()[-2000:])
            time.sleep(0.05)
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.python = python

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def clients(script: str, bootstrap: str, count: int, n: int) -> float:
    """Run ``n`` client processes at once; the wall time until all are done."""
    started = time.monotonic()
    procs = [subprocess.Popen([sys.executable, "-c", script, bootstrap, str(count)]) for _ in range(n)]
    for proc in procs:
        if proc.wait(timeout=600) != 0:
            raise RuntimeError("a client failed")
    return time.monotonic() - started


def one_round(checkout: Path, env: dict[str, str], work: Path, n: int, count: int) -> dict[str, Any]:
    broker = Broker(checkout, env, work)
    try:
        subprocess.run(
            [str(broker.python), "-m", "logq_cli.main", "queue", "create", "small", "-b", broker.bootstrap],
            cwd=checkout, check=True, capture_output=True, timeout=30,
        )  # fmt: skip
        result: dict[str, Any] = {}
        for case, script, api in (("produce", PRODUCER, "Produce"), ("fetch", CONSUMER, "Fetch")):
            served0, cpu0 = requests_served(broker.metrics_port, api), cpu_seconds(broker.proc.pid)
            wall = clients(script, broker.bootstrap, count if case == "produce" else n * count, n)
            served = requests_served(broker.metrics_port, api) - served0
            cpu = cpu_seconds(broker.proc.pid) - cpu0
            result[case] = {
                "requests": served,
                "requests_per_s": served / wall,
                "broker_cpu_us_per_request": cpu / served * 1e6,
                "broker_cpu_share": cpu / wall,
            }
        return result
    finally:
        broker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--messages", type=int, default=40_000, help="per producer")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=CHECKOUT[,ENV=VALUE...]")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    variants: list[tuple[str, Path, dict[str, str]]] = []
    for spec in args.variant or [f"this={ROOT}"]:
        name, _, rest = spec.partition("=")
        checkout, *pairs = rest.split(",")
        variants.append((name, Path(checkout).resolve(), dict(p.split("=", 1) for p in pairs)))
    results: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _ in variants}
    with tempfile.TemporaryDirectory(prefix="logq-small-") as tmp:
        for round_no in range(args.rounds):
            order = variants if round_no % 2 == 0 else variants[::-1]
            for name, checkout, env in order:
                work = Path(tmp) / f"{name}-{round_no}"
                work.mkdir()
                result = one_round(checkout, env, work, args.clients, args.messages)
                shutil.rmtree(work, ignore_errors=True)
                results[name].append(result)
                print(name, round_no + 1, json.dumps(result), flush=True)
    print("\n| variant | produce req/s | produce CPU us/req | fetch req/s | fetch CPU us/req |")
    print("|---|---|---|---|---|")
    for name, rounds in results.items():

        def col(case: str, key: str, fmt: str, rounds: list[dict[str, Any]] = rounds) -> str:
            return " / ".join(format(r[case][key], fmt) for r in rounds)

        print(
            f"| {name} | {col('produce', 'requests_per_s', ',.0f')} | "
            f"{col('produce', 'broker_cpu_us_per_request', '.1f')} | "
            f"{col('fetch', 'requests_per_s', ',.0f')} | "
            f"{col('fetch', 'broker_cpu_us_per_request', '.1f')} |"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
