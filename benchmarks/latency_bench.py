"""End-to-end latency under a steady trickle: logq against Redis Streams, with the same process layout.

Usage: python benchmarks/latency_bench.py [--rates 5000,20000] [--seconds 10] [--runs 5] [--json FILE]
                                          [--only logq|redis] [--variant NAME=CHECKOUT ...]

Each case has three processes: the server (a fresh standalone logq broker, or redis-server with no
persistence), one producer process and one consumer process. The producer sends 100 B messages one at a
time at a fixed rate, each stamped with the monotonic clock (logq: confluent-kafka, `linger.ms=0`,
acks=1; Redis: redis-py with hiredis, one XADD per message, the messages already due sent as one pipeline
when the producer is behind, as librdkafka batches what is queued). The consumer blocks waiting for new
messages (logq: confluent-kafka `poll`; Redis: `XREAD BLOCK`) and records receive time minus stamp.
Runs alternate between logq and Redis so that both see the same machine; ``--variant`` adds brokers run
from other checkouts of logq (their own ``.venv``), e.g. the code before a change. Every distribution is
printed (five runs each by default): the machine is shared and noisy, and the spread is the result.

After each logq run the broker's own view is read from its metrics endpoint: the event loop's longest
stall, the garbage collector's longest pause and the time requests waited before being handled.
Needs: `apt-get install redis-server` and `pip install redis hiredis` for the Redis rows (else skipped).
Traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
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

from benchmarks.small_requests_bench import Broker  # noqa: E402
from tests.broker_process import free_port  # noqa: E402

SIZE = 100
WARMUP_S = 1.0

# Shared by both producers: pace at `rate` msg/s, stamp each message with monotonic_ns (20 digits).
PACER = """
import sys, time
rate, seconds = int(sys.argv[2]), float(sys.argv[3])
total = int(rate * seconds)
filler = b"x" * 80
def paced(send, flush):
    started = time.monotonic()
    i = 0
    while i < total:
        due = started + i / rate
        now = time.monotonic()
        if now < due:
            time.sleep(min(due - now, 0.0005))
            continue
        behind = min(total, int((now - started) * rate) + 1)  # every message due by now
        send([b"%020d" % time.monotonic_ns() + filler for _ in range(behind - i)])
        i = behind
    flush()
    print(total, flush=True)
"""

LOGQ_PRODUCER = (
    PACER
    + """
from confluent_kafka import Producer
p = Producer({"bootstrap.servers": sys.argv[1], "acks": "1", "linger.ms": 0})
def send(values):
    for v in values:
        p.produce("lat", v)
    p.poll(0)
paced(send, lambda: p.flush(30))
"""
)

REDIS_PRODUCER = (
    PACER
    + """
import redis
r = redis.Redis(host="127.0.0.1", port=int(sys.argv[1]))
def send(values):
    if len(values) == 1:
        r.xadd("lat", {"d": values[0]})
        return
    pipe = r.pipeline(transaction=False)
    for v in values:
        pipe.xadd("lat", {"d": v})
    pipe.execute()
paced(send, lambda: None)
"""
)

# Both consumers: read until `expected` messages arrived (or a deadline), then print the percentiles.
SUMMARY = """
import json, time
def summary(lat, expected):
    lat.sort()
    def pct(p):
        return lat[min(len(lat) - 1, int(p / 100 * len(lat)))] / 1e6 if lat else -1.0
    print(json.dumps({"received": len(lat), "expected": expected, "p50_ms": pct(50), "p99_ms": pct(99),
                      "p99_9_ms": pct(99.9), "max_ms": lat[-1] / 1e6 if lat else -1.0}), flush=True)
"""

LOGQ_CONSUMER = (
    SUMMARY
    + """
import sys
from confluent_kafka import Consumer, TopicPartition
expected = int(sys.argv[2])
c = Consumer({"bootstrap.servers": sys.argv[1], "group.id": "lat", "enable.auto.commit": False,
              "fetch.wait.max.ms": 100, "fetch.min.bytes": 1})
c.assign([TopicPartition("lat", 0, 0)])
while c.poll(0.1) is None and not c.assignment():
    pass
print("ready", flush=True)
lat, deadline = [], time.monotonic() + 120
while len(lat) < expected and time.monotonic() < deadline:
    msg = c.poll(0.5)  # one at a time: consume(n) would wait for n messages to gather
    if msg is not None and not msg.error():
        lat.append(time.monotonic_ns() - int(msg.value()[:20]))
c.close()
summary(lat, expected)
"""
)

REDIS_CONSUMER = (
    SUMMARY
    + """
import sys
import redis
expected = int(sys.argv[2])
r = redis.Redis(host="127.0.0.1", port=int(sys.argv[1]))
print("ready", flush=True)
lat, last, deadline = [], "$", time.monotonic() + 120
while len(lat) < expected and time.monotonic() < deadline:
    for _stream, entries in r.xread({"lat": last}, count=1000, block=500) or ():
        now = time.monotonic_ns()
        for entry_id, fields in entries:
            lat.append(now - int(fields[b"d"][:20]))
            last = entry_id
summary(lat, expected)
"""
)


def run_pair(producer: str, consumer: str, target: str, rate: int, seconds: float) -> dict[str, Any]:
    total = int(rate * seconds)
    reader = subprocess.Popen(
        [sys.executable, "-c", consumer, target, str(total)], stdout=subprocess.PIPE, text=True
    )
    assert reader.stdout is not None
    if reader.stdout.readline().strip() != "ready":
        raise RuntimeError("the consumer did not start")
    time.sleep(WARMUP_S)  # the consumer's first fetch / XREAD is waiting at the server
    subprocess.run(
        [sys.executable, "-c", producer, target, str(rate), str(seconds)],
        check=True,
        timeout=seconds + 60,
        stdout=subprocess.DEVNULL,
    )
    out, _ = reader.communicate(timeout=150)
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    if result["received"] < total:
        raise RuntimeError(f"the consumer saw {result['received']} of {total}")
    return result


def scrape(port: int) -> dict[str, float]:
    """The broker's own figures for the run (see logq/broker/metrics.py; none from older checkouts)."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    wanted = {
        "logq_event_loop_longest_stall_seconds": "loop_longest_stall_ms",
        "logq_gc_longest_pause_seconds": "gc_longest_pause_ms",
    }
    figures: dict[str, float] = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in wanted:
            figures[wanted[name]] = float(value) * 1000
    return figures


def logq_run(work: Path, checkout: Path, rate: int, seconds: float) -> dict[str, Any]:
    broker = Broker(checkout, {}, work)
    try:
        subprocess.run(
            [str(broker.python), "-m", "logq_cli.main", "queue", "create", "lat", "-b", broker.bootstrap],
            check=True, capture_output=True, timeout=30, cwd=checkout,
        )  # fmt: skip
        result = run_pair(LOGQ_PRODUCER, LOGQ_CONSUMER, broker.bootstrap, rate, seconds)
        result.update(scrape(broker.metrics_port))
        return result
    finally:
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)


def redis_run(work: Path, rate: int, seconds: float) -> dict[str, Any]:
    port = free_port()
    server = subprocess.Popen(
        [shutil.which("redis-server") or "redis-server", "--port", str(port), "--bind", "127.0.0.1",
         "--save", "", "--appendonly", "no", "--dir", str(work)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        time.sleep(0.5)
        return run_pair(REDIS_PRODUCER, REDIS_CONSUMER, str(port), rate, seconds)
    finally:
        server.terminate()
        server.wait(10)


def redis_available() -> str | None:
    if shutil.which("redis-server") is None:
        return "redis-server is not installed (apt-get install redis-server)"
    try:
        import redis  # noqa: F401
    except ImportError:
        return "redis-py is not installed (pip install redis hiredis)"
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="5000,20000")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", choices=("logq", "redis"))
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=CHECKOUT")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    checkouts = {"logq": ROOT} | {
        name: Path(path).resolve() for name, _, path in (v.partition("=") for v in args.variant)
    }
    no_redis = redis_available() if args.only != "logq" else "not asked for"
    if no_redis and args.only != "logq":
        print(f"Redis skipped: {no_redis}", flush=True)
    results: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="logq-latency-") as tmp:
        for rate in (int(r) for r in args.rates.split(",")):
            for run in range(args.runs):
                contenders = [] if args.only == "redis" else list(checkouts)
                if not no_redis:
                    contenders.append("redis")
                if run % 2:
                    contenders.reverse()
                for name in contenders:
                    work = Path(tmp) / f"{name}-{rate}-{run}"
                    work.mkdir(mode=0o700)
                    if name == "redis":
                        result = redis_run(work, rate, args.seconds)
                    else:
                        result = logq_run(work, checkouts[name], rate, args.seconds)
                    results.setdefault(f"{name}_{rate}", []).append(result)
                    print(f"{name} {rate}/s run {run + 1}:", json.dumps(result), flush=True)
    print("\n| case | p50 ms | p99 ms | p99.9 ms | max ms |\n|---|---|---|---|---|")
    for case, runs in results.items():
        cols = [" / ".join(f"{r[k]:.2f}" for r in runs) for k in ("p50_ms", "p99_ms", "p99_9_ms", "max_ms")]
        print(f"| {case} | " + " | ".join(cols) + " |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
