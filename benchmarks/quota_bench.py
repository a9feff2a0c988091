"""The cost of client quota accounting on the produce path: a broker flooded with one-message Produce
requests, without any quota and with a quota that applies to every client but never throttles.

Usage: python benchmarks/quota_bench.py [--clients 2] [--messages 20000] [--rounds 3] [--json FILE]

Each round starts a fresh standalone broker on 127.0.0.1 per case ("none", "quota"; which goes first
alternates from round to round):
``--clients`` confluent-kafka producers, each in its own process, send ``--messages`` 100 B messages with
``linger.ms=0`` and ``batch.num.messages=1`` (one Produce request per message, acks=1), as in
``small_requests_bench.py``. "quota" sets ``producer_byte_rate`` and ``consumer_byte_rate`` of 1 TB/s on
the default client id first, so every request is measured against a quota. The figures are the broker's
CPU time per Produce request (user + system, from /proc) and its requests per second.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.small_requests_bench import (  # noqa: E402
    PRODUCER,
    Broker,
    clients,
    cpu_seconds,
    requests_served,
)

NEVER_THROTTLES = "1000000000000"  # 1 TB/s


def one_case(case: str, work: Path, n: int, count: int) -> dict[str, float]:
    broker = Broker(ROOT, {}, work)
    try:
        logq = [str(broker.python), "-m", "logq_cli.main", "-b", broker.bootstrap]
        subprocess.run(
            [*logq, "queue", "create", "small"], cwd=ROOT, check=True, capture_output=True, timeout=30
        )
        if case == "quota":
            subprocess.run(
                [*logq, "quota", "set", "--default-client-id", "--producer-byte-rate", NEVER_THROTTLES,
                 "--consumer-byte-rate", NEVER_THROTTLES],
                cwd=ROOT, check=True, capture_output=True, timeout=30,
            )  # fmt: skip
        served0, cpu0 = requests_served(broker.metrics_port, "Produce"), cpu_seconds(broker.proc.pid)
        wall = clients(PRODUCER, broker.bootstrap, count, n)
        served = requests_served(broker.metrics_port, "Produce") - served0
        cpu = cpu_seconds(broker.proc.pid) - cpu0
        return {"requests_per_s": served / wall, "broker_cpu_us_per_request": cpu / served * 1e6}
    finally:
        broker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--messages", type=int, default=20_000, help="per producer")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    runs: dict[str, list[dict[str, float]]] = {"none": [], "quota": []}
    for round_number in range(args.rounds):
        # alternate which case goes first: the machine's state drifts within a round
        for case in ("none", "quota") if round_number % 2 == 0 else ("quota", "none"):
            with tempfile.TemporaryDirectory(prefix="logq-quota-bench-") as work:
                runs[case].append(one_case(case, Path(work), args.clients, args.messages))
    summary: dict[str, Any] = {}
    for case, results in runs.items():
        cpu = [r["broker_cpu_us_per_request"] for r in results]
        rate = [r["requests_per_s"] for r in results]
        summary[case] = {"cpu_us_per_request": cpu, "requests_per_s": rate}
        print(
            f"{case:6} CPU/request {statistics.median(cpu):6.1f} us (runs: "
            f"{', '.join(f'{c:.1f}' for c in cpu)}), {statistics.median(rate):,.0f} req/s "
            f"(runs: {', '.join(f'{r:,.0f}' for r in rate)})"
        )
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
