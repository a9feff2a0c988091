"""The log cleaner at scale: a compacted queue of N records over K keys, each key updated N/K times.

Usage: python benchmarks/compaction_bench.py [--records 1000000] [--keys 10000] [--value-bytes 100]
                                             [--json FILE]

Two runs on a fresh standalone broker each (one at a time; traffic stays on 127.0.0.1):
- ``delete``: the same load into a queue with cleanup.policy=delete (no cleaning): the baseline;
- ``compact``: cleanup.policy=compact, min.cleanable.dirty.ratio 0.5 (Kafka's default), 16 MiB
  segments rolled after 2 s, max.compaction.lag.ms 5 s (so the last segment is cleaned even when it is
  less than half the log), log.cleaner.backoff.ms 200: the cleaner works while the load goes on and
  after it, until the partition is clean.
Meanwhile a probe sends one record every 20 ms to another queue (logq's producer, acks=1, each send
flushed: its produce latency) and a consumer reads them (its fetch latency: receive time minus the
record's timestamp, ms resolution), and the broker's metrics endpoint is scraped every second for
``logq_event_loop_longest_stall_seconds`` (the event loop's longest stall over the last minute).
After the compact run the whole partition is read from offset 0: how many records are left, and whether
each key's value is its last update. The cleaner's throughput is the MB it read per second of cleaning,
from its log lines (one per pass). Results: docs/benchmarks.md, "Compacted queues".
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from logq import Admin, Consumer, Producer  # noqa: E402
from tests.broker_process import BrokerProcess, free_port  # noqa: E402

QUEUE, PROBE = "bench.compacted", "bench.probe"
PROBE_INTERVAL_S = 0.02
PASS_LINE = re.compile(
    r"cleaned (\S+): offsets \d+-\d+, (\d+) segments of (\d+) bytes -> (\d+) segments of (\d+) bytes "
    r"in ([\d.]+) s \(([\d.]+) MB/s read\)"
)


class Probe:
    """Produce and fetch latencies of a trickle, and the broker's longest event-loop stall."""

    def __init__(self, bootstrap: str, metrics_url: str) -> None:
        self.produce_ms: list[float] = []
        self.fetch_ms: list[float] = []
        self.longest_stall_s = 0.0
        self.longest_gc_s = 0.0
        self._bootstrap = bootstrap
        self._metrics_url = metrics_url
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=t, daemon=True) for t in (self._send, self._read, self._scrape)
        ]

    def __enter__(self) -> Probe:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def _send(self) -> None:
        with Producer(self._bootstrap, acks=1, linger_ms=0) as producer:
            while not self._stop.wait(PROBE_INTERVAL_S):
                started = time.monotonic()
                producer.send(PROBE, b"p" * 100, b"probe", timestamp=int(time.time() * 1000))
                producer.flush()
                self.produce_ms.append((time.monotonic() - started) * 1000)

    def _read(self) -> None:
        with Consumer(self._bootstrap, fetch_max_wait_ms=100) as consumer:
            consumer.assign([(PROBE, 0)])
            consumer.seek_to_end()
            while not self._stop.is_set():
                for record in consumer.poll(0.2):
                    self.fetch_ms.append(time.time() * 1000 - record.timestamp)

    def _scrape(self) -> None:
        while not self._stop.wait(1.0):
            with urllib.request.urlopen(self._metrics_url, timeout=5) as answer:
                text = answer.read().decode()
            match = re.search(r"^logq_event_loop_longest_stall_seconds (\S+)$", text, re.MULTILINE)
            if match:
                self.longest_stall_s = max(self.longest_stall_s, float(match[1]))
            match = re.search(r"^logq_gc_longest_pause_seconds (\S+)$", text, re.MULTILINE)
            if match:
                self.longest_gc_s = max(self.longest_gc_s, float(match[1]))


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else float("nan")


def load(bootstrap: str, records: int, keys: int, value_bytes: int) -> float:
    started = time.monotonic()
    with Producer(bootstrap, acks=1, linger_ms=5, batch_size=256 << 10, compression="none") as producer:
        for i in range(records):
            version = b"%d" % (i // keys)
            producer.send(
                QUEUE, version + b" " * (value_bytes - len(version)), b"key-%d" % (i % keys), partition=0
            )
        producer.flush()
    return time.monotonic() - started


def read_all(bootstrap: str) -> dict[bytes | None, bytes | None]:
    """Partition 0 from offset 0: every key's last value as read (and how many records there were)."""
    seen: dict[bytes | None, bytes | None] = {}
    count = 0
    with Consumer(bootstrap, max_poll_records=100_000) as consumer:
        end = consumer.end_offsets([(QUEUE, 0)])
        (partition,) = end
        consumer.assign([partition])
        consumer.seek_to_beginning()
        while consumer.position(partition) < end[partition]:
            for record in consumer.poll(1.0):
                seen[record.key] = record.value
                count += 1
    seen[None] = b"%d" % count
    return seen


def wait_until_clean(broker: BrokerProcess, quiet_s: float, deadline_s: float) -> None:
    """Until no cleaning pass has been logged for ``quiet_s`` after the last segment rolled."""
    deadline = time.monotonic() + deadline_s
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        passes = broker.log_text.count("cleaned " + QUEUE)
        if passes != last:
            last, since = passes, time.monotonic()
        elif time.monotonic() - since > quiet_s and passes:
            return
        time.sleep(0.2)


def run(policy: str, records: int, keys: int, value_bytes: int, work: Path) -> dict[str, Any]:
    metrics_port = free_port()
    broker = BrokerProcess(
        work / f"data-{policy}",
        broker={"metrics.listen": f"127.0.0.1:{metrics_port}"},
        log={"log.cleaner.backoff.ms": 200, "retention.check.interval.ms": 500},
    ).start()
    try:
        settings = {"cleanup.policy": policy, "segment.bytes": str(16 << 20), "segment.ms": "2000"}
        if policy == "compact":  # the head left below min.cleanable.dirty.ratio is cleaned within 5 s too
            settings["max.compaction.lag.ms"] = "5000"
        with Admin(broker.bootstrap) as admin:
            admin.create_queue(QUEUE, 1, settings=settings)
            admin.create_queue(PROBE, 1)
        result: dict[str, Any] = {"policy": policy, "records": records, "keys": keys}
        with Probe(broker.bootstrap, f"http://127.0.0.1:{metrics_port}/metrics") as probe:
            result["load_s"] = load(broker.bootstrap, records, keys, value_bytes)
            if policy == "compact":
                wait_until_clean(broker, quiet_s=8.0, deadline_s=600)
            else:
                time.sleep(5.0)  # the compact run's tail: the probe keeps measuring meanwhile
            time.sleep(1.5)  # a last scrape
        result["probe_sends"] = len(probe.produce_ms)
        for name, values in (("produce", probe.produce_ms), ("fetch", probe.fetch_ms)):
            for p in (50, 99, 100):
                result[f"{name}_p{p}_ms"] = round(percentile(values, p), 1)
        result["longest_loop_stall_ms"] = round(probe.longest_stall_s * 1000, 1)
        result["longest_gc_pause_ms"] = round(probe.longest_gc_s * 1000, 1)
        passes = [m.groups() for m in PASS_LINE.finditer(broker.log_text) if m[1].startswith(QUEUE)]
        read_mb = sum(float(p[5]) * float(p[6]) for p in passes)
        seconds = sum(float(p[5]) for p in passes)
        result["cleaner_passes"] = len(passes)
        result["cleaner_seconds"] = round(seconds, 2)
        result["cleaner_mb_per_s"] = round(read_mb / seconds, 1) if seconds else 0.0
        result["bytes_before_last_pass"] = int(passes[-1][2]) if passes else 0
        result["bytes_after_last_pass"] = int(passes[-1][4]) if passes else 0
        seen = read_all(broker.bootstrap)
        result["records_read"] = int(seen.pop(None) or b"0")
        last_version = b"%d" % ((records - 1) // keys)
        result["keys_with_latest_value"] = sum(
            1 for v in seen.values() if v is not None and v.rstrip() == last_version
        )
        return result
    finally:
        broker.kill()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--value-bytes", type=int, default=100)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="logq-compaction-bench-") as tmp:
        for policy in ("delete", "compact"):
            results.append(run(policy, args.records, args.keys, args.value_bytes, Path(tmp)))
            print(json.dumps(results[-1]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    keys = list(results[0])
    print("| " + " | ".join(keys) + " |")
    for r in results:
        print("| " + " | ".join(str(r.get(k, "")) for k in keys) + " |")


if __name__ == "__main__":
    main()
