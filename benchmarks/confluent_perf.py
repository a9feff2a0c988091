"""`logq perf`'s twin written with confluent-kafka (librdkafka): the same arguments, the same JSON result,
so benchmarks/client_bench.py can compare the two clients run for run.

Usage: python benchmarks/confluent_perf.py -b HOST:PORT perf produce|consume QUEUE --count N [--size B] --json
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

from confluent_kafka import Consumer, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

LATENCY_SAMPLE_EVERY = 1000


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def result(count: int, total_bytes: int, seconds: float, latencies: list[float]) -> dict[str, Any]:
    return {
        "messages": count,
        "bytes": total_bytes,
        "seconds": round(seconds, 4),
        "msgs_per_sec": round(count / seconds, 1),
        "mb_per_sec": round(total_bytes / seconds / 1e6, 2),
        "latency_ms_p50": round(percentile(latencies, 0.5), 3),
        "latency_ms_p99": round(percentile(latencies, 0.99), 3),
        "latency_ms_max": round(max(latencies, default=0.0), 3),
    }


def produce(bootstrap: str, queue: str, count: int, size: int) -> dict[str, Any]:
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "compression.type": "zstd",
            "linger.ms": 5,
            "batch.size": 131072,
            "queue.buffering.max.messages": 1_000_000,
        }
    )
    value = os.urandom(size)
    latencies: list[float] = []

    def sampled(started: float) -> Any:
        return lambda err, _msg: latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    for i in range(count):
        while True:
            try:
                if i % LATENCY_SAMPLE_EVERY == 0:
                    producer.produce(queue, value, on_delivery=sampled(time.perf_counter()))
                else:
                    producer.produce(queue, value)
                break
            except BufferError:
                producer.poll(0.001)
    producer.flush(120)
    return result(count, count * size, time.perf_counter() - started, latencies)


def consume(bootstrap: str, queue: str, count: int) -> dict[str, Any]:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    partitions = len(admin.list_topics(queue, timeout=10).topics[queue].partitions)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False})
    consumer.assign([TopicPartition(queue, p, -2) for p in range(partitions)])
    seen = 0
    total = 0
    ages: list[float] = []
    started = time.perf_counter()
    deadline = started + 120
    while seen < count and time.perf_counter() < deadline:
        msgs = consumer.consume(10_000, 0.5)
        # As logq perf consume: touch every value at C speed (errors, e.g. partition EOF, are off).
        total += sum(map(len, filter(None, map(Message.value, msgs))))
        seen += len(msgs)
        if msgs:
            ages.append(time.time() * 1000 - msgs[-1].timestamp()[1])
    seconds = time.perf_counter() - started
    consumer.close()
    return result(seen, total, seconds, ages)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-b", "--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("perf", choices=["perf"])
    parser.add_argument("mode", choices=["produce", "consume"])
    parser.add_argument("queue")
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.mode == "produce":
        out = produce(args.bootstrap, args.queue, args.count, args.size)
    else:
        out = consume(args.bootstrap, args.queue, args.count)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
