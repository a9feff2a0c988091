"""`logq perf`'s twin written with confluent-kafka (librdkafka): the same arguments, the same JSON result,
so benchmarks/client_bench.py can compare the two clients run for run.

Usage: python benchmarks/confluent_perf.py -b HOST:PORT [-X KEY=VALUE ...] perf produce|consume|connect QUEUE
       --count N [--size B] [--batch] [--offset N] --json

``-X`` sets a librdkafka property over this script's defaults, as librdkafka's own perf tool does
(``-X security.protocol=SASL_SSL -X acks=1``); it applies to every client the script makes. ``--batch``
produces with ``produce_batch`` (10,000 messages per Python call), so that what is measured is librdkafka
and the broker rather than one Python call per message. ``connect`` makes a fresh client COUNT times and
times each from its creation until the broker's first Metadata answer (connect, TLS, SASL, ApiVersions,
Metadata). Every result carries the process's CPU seconds (librdkafka's threads included) for the run.
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
BATCH_MESSAGES = 10_000


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def result(
    count: int, total_bytes: int, seconds: float, latencies: list[float], cpu_seconds: float
) -> dict[str, Any]:
    return {
        "messages": count,
        "bytes": total_bytes,
        "seconds": round(seconds, 4),
        "msgs_per_sec": round(count / seconds, 1),
        "mb_per_sec": round(total_bytes / seconds / 1e6, 2),
        "latency_ms_p50": round(percentile(latencies, 0.5), 3),
        "latency_ms_p99": round(percentile(latencies, 0.99), 3),
        "latency_ms_max": round(max(latencies, default=0.0), 3),
        "client_cpu_seconds": round(cpu_seconds, 4),
    }


def produce(
    bootstrap: str, queue: str, count: int, size: int, extra: dict[str, str], *, batch: bool = False
) -> dict[str, Any]:
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "compression.type": "zstd",
            "linger.ms": 5,
            "batch.size": 131072,
            "queue.buffering.max.messages": 1_000_000,
            # produce_batch takes one callback for all: only failures call it
            **({"delivery.report.only.error": True} if batch else {}),
            **extra,
        }
    )
    value = os.urandom(size)
    latencies: list[float] = []
    errors: list[str] = []

    def sampled(started: float) -> Any:
        return lambda err, _msg: latencies.append((time.perf_counter() - started) * 1000)

    cpu = time.process_time()
    started = time.perf_counter()
    if batch:
        chunk = [{"value": value} for _ in range(BATCH_MESSAGES)]
        sent = 0
        while sent < count:
            try:
                sent += producer.produce_batch(
                    queue,
                    chunk[: count - sent],
                    on_delivery=lambda err, _msg: err and errors.append(str(err)),
                )
            except BufferError:
                producer.poll(0.005)
            producer.poll(0)
    else:
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
    remaining = producer.flush(120)
    seconds = time.perf_counter() - started
    if remaining or errors:
        raise SystemExit(f"{remaining} messages undelivered; errors: {errors[:3]}")
    return result(count, count * size, seconds, latencies, time.process_time() - cpu)


def consume(
    bootstrap: str, queue: str, count: int, extra: dict[str, str], offset: int = -2
) -> dict[str, Any]:
    admin = AdminClient({"bootstrap.servers": bootstrap, **extra})
    partitions = len(admin.list_topics(queue, timeout=10).topics[queue].partitions)
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False, **extra}
    )
    consumer.assign([TopicPartition(queue, p, offset) for p in range(partitions)])
    seen = 0
    total = 0
    ages: list[float] = []
    cpu = time.process_time()
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
    cpu = time.process_time() - cpu
    consumer.close()
    return result(seen, total, seconds, ages, cpu)


def connect(bootstrap: str, queue: str, count: int, extra: dict[str, str]) -> dict[str, Any]:
    """A fresh client ``count`` times: milliseconds from its creation to the first Metadata answer."""
    times: list[float] = []
    cpu = time.process_time()
    started = time.perf_counter()
    for _ in range(count):
        began = time.perf_counter()
        admin = AdminClient({"bootstrap.servers": bootstrap, **extra})
        admin.list_topics(queue, timeout=10)
        times.append((time.perf_counter() - began) * 1000)
        del admin  # closes its connection before the next one opens
    seconds = time.perf_counter() - started
    out = result(count, 0, seconds, times, time.process_time() - cpu)
    out["connect_ms"] = [round(t, 3) for t in times]
    return out


def properties(pairs: list[str]) -> dict[str, str]:
    extra: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"-X takes KEY=VALUE, not {pair!r}")
        extra[key] = value
    return extra


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-b", "--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("-X", dest="properties", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("perf", choices=["perf"])
    parser.add_argument("mode", choices=["produce", "consume", "connect"])
    parser.add_argument("queue")
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--batch", action="store_true", help="produce_batch, 10,000 messages per call")
    parser.add_argument(
        "--offset",
        type=int,
        default=-2,
        help="consume from this offset of every partition (default -2, the beginning: librdkafka then "
        "asks the broker for it first, which it schedules about half a second after connecting)",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    extra = properties(args.properties)
    if args.mode == "produce":
        out = produce(args.bootstrap, args.queue, args.count, args.size, extra, batch=args.batch)
    elif args.mode == "consume":
        out = consume(args.bootstrap, args.queue, args.count, extra, args.offset)
    else:
        out = connect(args.bootstrap, args.queue, args.count, extra)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
