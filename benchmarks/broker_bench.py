"""Broker benchmark: a real logq broker process driven by confluent-kafka (librdkafka, C), side by side
with Redis Streams driven by its own C client (redis-benchmark), in one run.

Usage: python benchmarks/broker_bench.py [--quick] [--json FILE] [--peers DIR] [--skip-redis]

Cases, each on a fresh broker (standalone, fsync before acks=all on):
- produce 1,000,000 x 100 B and 200,000 x 1 KiB into one queue with 1 and with 8 partitions, acks=1 and
  acks=all (msg/s, MB/s, broker CPU per message);
- a consumer draining the backlog of each acks=1 run, three times from offset 0 (the median pass, msg/s);
- end-to-end latency at 5,000 msg/s for 10 s, producer and consumer in separate processes (p50, p99,
  p99.9, max);
- Redis 7 Streams: ``redis-benchmark -P 1000 -c 1 -n 1000000 XADD s * d <100 B>`` on a server without
  persistence, and (with ``--peers DIR``) the Python-client peer script ``DIR/redis_streams_bench.py``.
Traffic stays on 127.0.0.1; every phase is bounded in count and time.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

from tests.broker_process import BrokerProcess, free_port  # noqa: E402


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def create_queue(bootstrap: str, name: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1)]
    ).values():
        future.result(30)


def produce(bootstrap: str, queue: str, count: int, size: int, acks: str) -> dict[str, float]:
    errors: list[str] = []

    def failed(err: object, _msg: object) -> None:
        errors.append(str(err))

    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": acks,
            "linger.ms": 5,
            "batch.size": 1_000_000,
            "queue.buffering.max.messages": 2_000_000,
            "queue.buffering.max.kbytes": 2_000_000,
            "delivery.report.only.error": True,
        }
    )
    # produce_batch: one Python call per 10,000 messages, so the client's Python side is not what is
    # measured (one produce() call costs about 1 us of Python, i.e. a ceiling near 1M msg/s).
    chunk = [{"value": os.urandom(size)} for _ in range(10_000)]
    started = time.perf_counter()
    sent = 0
    while sent < count:
        batch = chunk[: count - sent]
        try:
            sent += producer.produce_batch(
                queue, batch, on_delivery=lambda err, _msg: errors.append(str(err))
            )
        except BufferError:
            producer.poll(0.005)
        producer.poll(0)
    remaining = producer.flush(120)
    elapsed = time.perf_counter() - started
    if remaining or errors:
        raise RuntimeError(f"{remaining} undelivered, errors: {errors[:3]}")
    return {"msgs_per_s": count / elapsed, "mb_per_s": count * size / elapsed / 1e6, "seconds": elapsed}


def consume(bootstrap: str, queue: str, partitions: int, count: int, size: int) -> dict[str, float]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "bench",
            "enable.auto.commit": False,
            # 4 MiB per partition per fetch: small enough that librdkafka parses one response while the
            # next is in flight (32 MiB drained a single partition ~10% slower, 1 MiB ~25% slower)
            "fetch.max.bytes": 64 * 1024 * 1024,
            "max.partition.fetch.bytes": 4 * 1024 * 1024,
            "queued.min.messages": 1_000_000,
        }
    )
    consumer.assign([TopicPartition(queue, p, 0) for p in range(partitions)])
    seen = 0
    started = time.perf_counter()
    deadline = started + 120
    while seen < count and time.perf_counter() < deadline:
        seen += len(consumer.consume(10_000, 1.0))
    elapsed = time.perf_counter() - started
    consumer.close()
    if seen < count:
        raise RuntimeError(f"consumed {seen} of {count}")
    return {"msgs_per_s": count / elapsed, "mb_per_s": count * size / elapsed / 1e6, "seconds": elapsed}


def consume_with_kcat(bootstrap: str, queue: str, count: int, size: int) -> dict[str, float] | None:
    """The same drain with kcat, a consumer with no Python in it (librdkafka's own C loop)."""
    kcat = shutil.which("kcat")
    if kcat is None:
        return None
    command = [kcat, "-C", "-b", bootstrap, "-t", queue, "-o", "beginning", "-e", "-q", "-f", "%o\n"]
    command += ["-X", "fetch.max.bytes=67108864", "-X", "max.partition.fetch.bytes=33554432"]
    command += ["-X", "queued.min.messages=1000000"]
    started = time.perf_counter()
    out = subprocess.run(command, capture_output=True, timeout=300, check=True).stdout
    elapsed = time.perf_counter() - started
    lines = out.count(b"\n")
    if lines != count:
        raise RuntimeError(f"kcat read {lines} of {count}")
    return {"msgs_per_s": count / elapsed, "mb_per_s": count * size / elapsed / 1e6, "seconds": elapsed}


E2E_CONSUMER = """
import json, sys, time
from confluent_kafka import Consumer, TopicPartition
bootstrap, queue, expected = sys.argv[1], sys.argv[2], int(sys.argv[3])
c = Consumer({"bootstrap.servers": bootstrap, "group.id": "e2e", "enable.auto.commit": False,
              "fetch.wait.max.ms": 100, "fetch.min.bytes": 1})
c.assign([TopicPartition(queue, 0, 0)])
print("ready", flush=True)
lat, deadline = [], time.monotonic() + 60
while len(lat) < expected and time.monotonic() < deadline:
    msg = c.poll(0.5)
    if msg is not None and not msg.error():
        lat.append(time.monotonic_ns() - int(msg.value()[:20]))
c.close()
print(json.dumps(lat))
"""


def end_to_end(bootstrap: str, queue: str, rate: int, seconds: int) -> dict[str, float]:
    total = rate * seconds
    reader = subprocess.Popen(
        [sys.executable, "-c", E2E_CONSUMER, bootstrap, queue, str(total)], stdout=subprocess.PIPE, text=True
    )
    assert reader.stdout is not None
    assert reader.stdout.readline().strip() == "ready"
    time.sleep(1.0)  # let the consumer's first fetch reach the broker
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "1", "linger.ms": 0})
    filler = b"x" * 80
    started = time.monotonic()
    for i in range(total):
        due = started + i / rate
        while (now := time.monotonic()) < due:
            time.sleep(min(due - now, 0.0005))
        producer.produce(queue, b"%020d" % time.monotonic_ns() + filler)
        producer.poll(0)
    producer.flush(30)
    out, _ = reader.communicate(timeout=90)
    latencies = sorted(json.loads(out.strip().splitlines()[-1]))
    if len(latencies) < total:
        raise RuntimeError(f"e2e consumer saw {len(latencies)} of {total}")

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] / 1e6

    return {"p50_ms": pct(50), "p99_ms": pct(99), "p99_9_ms": pct(99.9), "max_ms": latencies[-1] / 1e6}


def logq_cases(work: Path, quick: bool) -> dict[str, Any]:
    scale = 20 if quick else 1
    results: dict[str, Any] = {}
    for size, count in ((100, 1_000_000 // scale), (1024, 200_000 // scale)):
        for partitions in (1, 8):
            for acks in ("1", "all"):
                name = f"produce_{size}B_p{partitions}_acks{acks}"
                broker = BrokerProcess(work / name).start()
                try:
                    create_queue(broker.bootstrap, "bench", partitions)
                    assert broker.proc is not None
                    cpu0 = cpu_seconds(broker.proc.pid)
                    result = produce(broker.bootstrap, "bench", count, size, acks)
                    result["broker_cpu_us_per_msg"] = (cpu_seconds(broker.proc.pid) - cpu0) / count * 1e6
                    results[name] = result
                    print(name, json.dumps(result), flush=True)
                    if acks == "1":
                        # the same backlog drained three times from offset 0: the median pass
                        cpu0 = cpu_seconds(broker.proc.pid)
                        passes = [
                            consume(broker.bootstrap, "bench", partitions, count, size) for _ in range(3)
                        ]
                        drain = sorted(passes, key=lambda r: r["msgs_per_s"])[1]
                        drain["broker_cpu_us_per_msg"] = (
                            (cpu_seconds(broker.proc.pid) - cpu0) / (3 * count) * 1e6
                        )
                        drain["passes_msgs_per_s"] = [round(r["msgs_per_s"]) for r in passes]
                        results[f"consume_{size}B_p{partitions}"] = drain
                        print(f"consume_{size}B_p{partitions}", json.dumps(drain), flush=True)
                        c_drain = consume_with_kcat(broker.bootstrap, "bench", count, size)
                        if c_drain is not None:
                            results[f"consume_kcat_{size}B_p{partitions}"] = c_drain
                            print(f"consume_kcat_{size}B_p{partitions}", json.dumps(c_drain), flush=True)
                finally:
                    broker.stop()
                    shutil.rmtree(work / name, ignore_errors=True)
    broker = BrokerProcess(work / "e2e").start()
    try:
        create_queue(broker.bootstrap, "e2e", 1)
        results["e2e_5000_per_s"] = end_to_end(broker.bootstrap, "e2e", 5000, 2 if quick else 10)
        print("e2e", json.dumps(results["e2e_5000_per_s"]), flush=True)
    finally:
        broker.stop()
    return results


def redis_cases(work: Path, peers: Path | None, quick: bool) -> dict[str, Any]:
    server = shutil.which("redis-server")
    bench = shutil.which("redis-benchmark")
    if server is None or bench is None:
        return {
            "redis_skipped": "redis-server / redis-benchmark not installed (apt-get install redis-server)"
        }
    port = free_port()
    proc = subprocess.Popen(
        [
            server,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(work),
        ],
        stdout=subprocess.DEVNULL,
    )
    results: dict[str, Any] = {}
    try:
        time.sleep(0.5)
        count = 50_000 if quick else 1_000_000
        command = [bench, "-p", str(port), "-P", "1000", "-c", "1", "-n", str(count), "-q"]
        command += ["XADD", "s", "*", "d", "x" * 100]
        out = subprocess.run(command, capture_output=True, text=True, timeout=300, check=True).stdout
        rate = float(re.findall(r"([\d.]+) requests per second", out)[-1])
        results["redis_benchmark_xadd_100B"] = {"msgs_per_s": rate, "mb_per_s": rate * 100 / 1e6}
        print("redis-benchmark", out.strip().splitlines()[-1], flush=True)
    finally:
        proc.terminate()
        proc.wait(10)
    if peers is not None:
        peers = peers.resolve()
        script = peers / "redis_streams_bench.py"
        out_file = work / "redis_py.json"
        sizes = "100:50000" if quick else "100:1000000,1024:200000"
        command = [sys.executable, str(script), "--sizes", sizes, "--seconds", "2" if quick else "10"]
        subprocess.run(
            [*command, "--out", str(out_file)], cwd=peers, timeout=900, check=False, stdout=subprocess.DEVNULL
        )
        if out_file.exists():
            results["redis_streams_python_client"] = json.loads(out_file.read_text())
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="1/20 of the message counts, a 2 s latency phase"
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--peers", type=Path, help="a directory with the peer script redis_streams_bench.py")
    parser.add_argument("--skip-redis", action="store_true")
    parser.add_argument("--dir", type=Path, default=ROOT / "bench-data")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=args.dir))
    try:
        results = logq_cases(work, args.quick)
        if not args.skip_redis:
            results |= redis_cases(work, args.peers, args.quick)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    redis = results.get("redis_benchmark_xadd_100B", {}).get("msgs_per_s")
    if redis:
        for key, value in results.items():
            if key.startswith("produce_100B") and isinstance(value, dict):
                value["vs_redis_benchmark"] = value["msgs_per_s"] / redis
    print(json.dumps(results, indent=1))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    print("median produce 100B acks=1 msg/s:", statistics.median(
        v["msgs_per_s"] for k, v in results.items() if k.startswith("produce_100B") and k.endswith("acks1")
    ))  # fmt: skip


if __name__ == "__main__":
    main()
