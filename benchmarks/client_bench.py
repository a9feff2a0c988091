"""Client benchmark: logq's Python client (`logq perf produce/consume`) against the same runs made with
confluent-kafka (librdkafka), on one standalone logq broker, in one run, alternating the two clients.

Usage: python benchmarks/client_bench.py [--quick] [--rounds N] [--json FILE]

Cases: 1,000,000 x 100 B and 200,000 x 1 KiB records; produce with acks=all, zstd, linger 5 ms and 128 KiB
batches into a fresh 3-partition queue, then consume the queue from the beginning with no group.
Each client runs in its own process (`logq perf ...` and `benchmarks/confluent_perf.py`), so neither
shares an interpreter with the other or with the broker. The figure per case is the best of the rounds
(the machine is shared and noisy; the best run is the least disturbed); the ratios of every round follow
the table. logq's record codec is the compiled one unless LOGQ_PURE_PYTHON=1 (or it is not built): the
first line says which. Traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from logq.client.records import CODEC  # noqa: E402 (the one `logq perf` uses: same interpreter and env)
from tests.broker_process import BrokerProcess  # noqa: E402

CASES = ((1_000_000, 100), (200_000, 1024))
QUICK_CASES = ((100_000, 100), (20_000, 1024))
PARTITIONS = 3
TIMEOUT_S = 600


def run_json(args: list[str]) -> dict[str, Any]:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT_S, check=False, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:6])}... failed: {proc.stderr.strip() or proc.stdout.strip()}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def logq(bootstrap: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "logq_cli.main", "-b", bootstrap, *args]


def confluent(bootstrap: str, *args: str) -> list[str]:
    return [sys.executable, str(ROOT / "benchmarks" / "confluent_perf.py"), "-b", bootstrap, *args]


def one_round(bootstrap: str, count: int, size: int, tag: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    clients = (("logq", logq), ("confluent", confluent))
    if tag.endswith("1"):
        clients = clients[::-1]  # alternate who goes first
    for name, command in clients:
        queue = f"bench-{name}-{size}-{tag}"
        subprocess.run(
            logq(bootstrap, "queue", "create", queue, "-p", str(PARTITIONS)),
            check=True,
            capture_output=True,
            timeout=60,
        )
        out[f"{name}-produce"] = run_json(
            command(bootstrap, "perf", "produce", queue, "--count", str(count), "--size", str(size), "--json")
        )
        out[f"{name}-consume"] = run_json(
            command(bootstrap, "perf", "consume", queue, "--count", str(count), "--json")
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="Ten times fewer records (a smoke run).")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, help="Also write the raw results here.")
    args = parser.parse_args()
    cases = QUICK_CASES if args.quick else CASES
    results: dict[str, Any] = {}
    rounds: dict[str, list[dict[str, dict[str, Any]]]] = {}
    with tempfile.TemporaryDirectory(prefix="logq-client-bench-") as tmp:
        broker = BrokerProcess(Path(tmp) / "data").start()
        try:
            for count, size in cases:
                best: dict[str, dict[str, Any]] = {}
                case = rounds[f"{count}x{size}"] = []
                for r in range(args.rounds):
                    case.append(one_round(broker.bootstrap, count, size, f"r{r}"))
                    for key, value in case[-1].items():
                        if key not in best or value["msgs_per_sec"] > best[key]["msgs_per_sec"]:
                            best[key] = value
                results[f"{count}x{size}"] = best
        finally:
            broker.kill()
    print(f"logq record codec: {CODEC.name}")
    print(
        "| records | client | produce msg/s | produce MB/s | produce p99 ms | consume msg/s | consume MB/s |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    for case, best in results.items():
        for name in ("logq", "confluent"):
            p, c = best[f"{name}-produce"], best[f"{name}-consume"]
            print(
                f"| {case} B | {name} | {p['msgs_per_sec']:,.0f} | {p['mb_per_sec']:.1f} "
                f"| {p['latency_ms_p99']:.1f} | {c['msgs_per_sec']:,.0f} | {c['mb_per_sec']:.1f} |"
            )
        lp, cp = best["logq-produce"]["msgs_per_sec"], best["confluent-produce"]["msgs_per_sec"]
        lc, cc = best["logq-consume"]["msgs_per_sec"], best["confluent-consume"]["msgs_per_sec"]
        print(f"| {case} B | logq / confluent | {lp / cp:.2f} | | | {lc / cc:.2f} | |")
    for case, each in rounds.items():
        produce = ", ".join(f"{ratio(r, 'produce'):.2f}" for r in each)
        consume = ", ".join(f"{ratio(r, 'consume'):.2f}" for r in each)
        print(f"{case} B, logq / confluent in each round: produce {produce}; consume {consume}")
    if args.json:
        args.json.write_text(json.dumps({"codec": CODEC.name, "best": results, "rounds": rounds}, indent=2))


def ratio(one: dict[str, dict[str, Any]], mode: str) -> float:
    logq_rate: float = one[f"logq-{mode}"]["msgs_per_sec"]
    return logq_rate / one[f"confluent-{mode}"]["msgs_per_sec"]


if __name__ == "__main__":
    main()
