"""What a queue's compression.type and message.timestamp.type cost the broker.

Usage: python benchmarks/recompression_bench.py [--quick] [--rewrite-only] [--json FILE]

Two parts:
- the rewrite alone (logq/broker/batch_rewrite.py, in this process): MB/s of uncompressed records through
  ``rewrite`` for a 1 MiB batch of 100 B JSON-like records, per (batch codec -> queue setting);
- a real broker process fed by confluent-kafka (librdkafka), idempotent, acks=all, 100 B records, one
  partition: msg/s, MB/s (uncompressed bytes) and the broker's CPU per MB, for a queue that stores batches
  as sent (compression.type=producer, the default) next to one that recompresses into zstd, and a
  LogAppendTime queue. Each run gets a fresh broker; the median of 3 runs is shown. Traffic stays on
  127.0.0.1, bounded in count.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from confluent_kafka import Producer  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

from logq import batch as rb  # noqa: E402
from logq import codec  # noqa: E402
from logq.broker.batch_rewrite import RewritePlan, rewrite  # noqa: E402
from tests.broker_process import BrokerProcess  # noqa: E402

SIZE = 100


def value(i: int) -> bytes:
    """A compressible 100-byte record, like a small JSON event."""
    text = b'{"user":%7d,"event":"page_view","path":"/items/%05d","ms":%6d,"ok":true}' % (
        i * 7919 % 10_000_000,
        i % 50_000,
        i % 1_000_000,
    )
    return text.ljust(SIZE, b" ")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- the rewrite alone -------------------------------------------------------------------------------


def rewrite_cases(rounds: int) -> list[dict[str, Any]]:
    records = [rb.Record(value(i), key=b"k%d" % (i % 1000), timestamp=1_000 + i) for i in range(10_000)]
    raw, _, _ = rb.encode_records(records, 1_000)
    out = []
    cases = [
        ("none", "zstd", rb.CODEC_NONE, RewritePlan(rb.CODEC_ZSTD, False)),
        ("gzip", "zstd", rb.CODEC_GZIP, RewritePlan(rb.CODEC_ZSTD, False)),
        ("zstd", "gzip", rb.CODEC_ZSTD, RewritePlan(rb.CODEC_GZIP, False)),
        ("lz4", "zstd", rb.CODEC_LZ4, RewritePlan(rb.CODEC_ZSTD, False)),
        ("snappy", "zstd", rb.CODEC_SNAPPY, RewritePlan(rb.CODEC_ZSTD, False)),
        ("zstd", "lz4", rb.CODEC_ZSTD, RewritePlan(rb.CODEC_LZ4, False)),
        ("zstd", "snappy", rb.CODEC_ZSTD, RewritePlan(rb.CODEC_SNAPPY, False)),
        ("zstd", "uncompressed", rb.CODEC_ZSTD, RewritePlan(rb.CODEC_NONE, False)),
        ("zstd", "zstd (kept)", rb.CODEC_ZSTD, RewritePlan(rb.CODEC_ZSTD, False)),
        ("zstd", "LogAppendTime", rb.CODEC_ZSTD, RewritePlan(None, True)),
        ("none", "LogAppendTime", rb.CODEC_NONE, RewritePlan(None, True)),
    ]
    for source, setting, source_codec, plan in cases:
        batch = memoryview(
            rb.build_batch(
                records,
                base_timestamp=1_000,
                attributes=source_codec,
                compressed_records=None
                if source_codec == rb.CODEC_NONE
                else codec.compress(source_codec, raw),
            )
        )
        started = time.perf_counter()
        for _ in range(rounds):
            rewrite(plan, batch, 2_000)
        elapsed = (time.perf_counter() - started) / rounds
        out.append(
            {
                "batch": source,
                "queue": setting,
                "batch_bytes": len(batch),
                "ms_per_batch": elapsed * 1000,
                "mb_per_s": len(raw) / elapsed / 1e6,
            }
        )
    return out


# --- through a broker --------------------------------------------------------------------------------


def produce(bootstrap: str, queue: str, count: int, producer_codec: str) -> float:
    errors: list[str] = []
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "compression.type": producer_codec,
            "linger.ms": 5,
            "batch.size": 1_000_000,
            "queue.buffering.max.messages": 2_000_000,
            "queue.buffering.max.kbytes": 2_000_000,
            "delivery.report.only.error": True,
        }
    )
    chunk = [{"value": value(i)} for i in range(10_000)]
    started = time.perf_counter()
    sent = 0
    while sent < count:
        try:
            sent += producer.produce_batch(
                queue, chunk[: count - sent], on_delivery=lambda err, _msg: errors.append(str(err))
            )
        except BufferError:
            producer.poll(0.005)
        producer.poll(0)
    remaining = producer.flush(120)
    elapsed = time.perf_counter() - started
    if remaining or errors:
        raise RuntimeError(f"{remaining} undelivered, errors: {errors[:3]}")
    return elapsed


def broker_run(
    root: Path, config: dict[str, str], producer_codec: str, count: int
) -> tuple[float, float, int]:
    """One fresh broker: (seconds, broker CPU seconds, stored bytes) for ``count`` records."""
    root.mkdir(parents=True)
    broker = BrokerProcess(root / "data").start()
    try:
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        topic = NewTopic("bench", num_partitions=1, replication_factor=1, config=config)
        admin.create_topics([topic])["bench"].result(30)
        produce(broker.bootstrap, "bench", min(count, 50_000), producer_codec)  # warm-up
        assert broker.proc is not None
        cpu0 = cpu_seconds(broker.proc.pid)
        elapsed = produce(broker.bootstrap, "bench", count, producer_codec)
        cpu = cpu_seconds(broker.proc.pid) - cpu0
        stored = sum(f.stat().st_size for f in root.rglob("*.log"))
    finally:
        broker.kill()
    return elapsed, cpu, stored


def broker_case(
    root: Path, config: dict[str, str], producer_codec: str, count: int, repeats: int
) -> dict[str, Any]:
    """The median of ``repeats`` runs (the machine is shared: single runs vary by tens of percent)."""
    runs = [broker_run(root / f"run-{i}", config, producer_codec, count) for i in range(repeats)]
    elapsed = statistics.median(r[0] for r in runs)
    cpu = statistics.median(r[1] for r in runs)
    mb = count * SIZE / 1e6
    return {
        "queue": ", ".join(f"{k}={v}" for k, v in config.items()) or "compression.type=producer",
        "producer": producer_codec,
        "msgs_per_s": count / elapsed,
        "mb_per_s": mb / elapsed,
        "broker_cpu_ms_per_mb": cpu / mb * 1000,
        "stored_mb": runs[0][2] / 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and messages")
    parser.add_argument("--json", type=Path, help="write the results here too")
    parser.add_argument("--rewrite-only", action="store_true", help="only the in-process part")
    args = parser.parse_args()
    rounds, count, repeats = (5, 200_000, 1) if args.quick else (30, 1_000_000, 3)

    results: dict[str, Any] = {"rewrite": rewrite_cases(rounds), "broker": []}
    print("| batch | queue setting | batch bytes | ms per 1 MB batch | MB/s (uncompressed) |")
    print("|---|---|---:|---:|---:|")
    for r in results["rewrite"]:
        print(
            f"| {r['batch']} | {r['queue']} | {r['batch_bytes']:,} | "
            f"{r['ms_per_batch']:.2f} | {r['mb_per_s']:,.0f} |"
        )

    if args.rewrite_only:
        return
    cases = [
        ({}, "none"),
        ({}, "zstd"),
        ({"compression.type": "zstd"}, "none"),
        ({"compression.type": "zstd"}, "gzip"),
        ({"compression.type": "zstd"}, "lz4"),
        ({"compression.type": "zstd"}, "zstd"),
        ({"message.timestamp.type": "LogAppendTime"}, "zstd"),
    ]
    with tempfile.TemporaryDirectory(prefix="logq-recompress-") as tmp:
        for i, (config, producer_codec) in enumerate(cases):
            case = broker_case(Path(tmp) / f"case-{i}", config, producer_codec, count, repeats)
            results["broker"].append(case)
    print()
    print(
        f"| queue | producer codec | msg/s | MB/s | broker CPU ms per MB | stored MB ({count:,} x {SIZE} B) |"
    )
    print("|---|---|---:|---:|---:|---:|")
    for r in results["broker"]:
        print(
            f"| {r['queue']} | {r['producer']} | {r['msgs_per_s']:,.0f} | {r['mb_per_s']:.1f} | "
            f"{r['broker_cpu_ms_per_mb']:.1f} | {r['stored_mb']:.1f} |"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
