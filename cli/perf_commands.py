"""``logq perf produce`` and ``logq perf consume``: load generators with a final line of figures."""

from __future__ import annotations

import json
import operator
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import click

from logq.client.cluster import QueuePartition
from logq.client.producer import RecordFuture
from logq.client.sync_consumer import Consumer
from logq.client.sync_producer import Producer
from logq.errors import LogqError
from logq_cli.common import client_options, one_line_errors, settings
from logq_cli.interrupts import stop_on_signals

_VALUE = operator.attrgetter("value")
LATENCY_SAMPLE_EVERY = 1000  # one record in this many has its latency measured (cheap enough to keep on)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Progress:
    """A progress bar on stderr when it is a terminal; nothing otherwise."""

    def __init__(self, total: int, label: str) -> None:
        self.enabled = sys.stderr.isatty()
        self._bar: Any = None
        if self.enabled:
            self._bar = click.progressbar(length=total, label=label, file=sys.stderr).__enter__()
        self._done = 0
        self._shown = 0

    def update(self, done: int) -> None:
        if self._bar is not None and done - self._shown >= 10_000:
            self._bar.update(done - self._shown)
            self._shown = done

    def close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)


def report(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(result))
        return
    click.echo(
        f"{result['messages']} messages in {result['seconds']:.2f} s: "
        f"{result['msgs_per_sec']:,.0f} msg/s, {result['mb_per_sec']:.1f} MB/s, "
        f"latency p50 {result['latency_ms_p50']:.1f} ms, p99 {result['latency_ms_p99']:.1f} ms, "
        f"max {result['latency_ms_max']:.1f} ms"
    )


@click.group()
def perf() -> None:
    """Measure produce and consume throughput against a running broker.

    \b
    Example:
      logq perf produce bench --count 100000 && logq perf consume bench --count 100000
    """


@perf.command("produce")
@click.argument("queue_name", metavar="QUEUE")
@click.option("--count", type=click.IntRange(min=1), default=1_000_000, show_default=True)
@click.option("--size", type=click.IntRange(min=0), default=100, show_default=True, help="Value bytes.")
@click.option("--acks", type=click.Choice(["0", "1", "all"]), default="all", show_default=True)
@click.option(
    "--batch",
    "batch_size",
    type=click.IntRange(min=1024),
    default=131072,
    show_default=True,
    help="Batch bytes.",
)
@click.option("--linger-ms", type=click.FloatRange(min=0), default=5, show_default=True)
@click.option(
    "-z", "--compression", type=click.Choice(["none", "gzip", "zstd"]), default="zstd", show_default=True
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
@client_options
@click.pass_context
def perf_produce(
    ctx: click.Context,
    *,
    queue_name: str,
    count: int,
    size: int,
    acks: str,
    batch_size: int,
    linger_ms: float,
    compression: str,
    as_json: bool,
) -> None:
    """Send COUNT messages of SIZE random bytes to QUEUE as fast as the producer allows.

    Latency is from send() to acknowledgement, measured on one message in a thousand.

    \b
    Example:
      logq perf produce bench --count 1000000 --size 100 --acks all --json
    """
    opts = settings(ctx)
    value = os.urandom(size)
    latencies: list[float] = []
    failures: list[LogqError] = []

    def sampler(started: float) -> Callable[[RecordFuture], None]:
        def done(future: RecordFuture) -> None:
            error = future.exception()
            if error is not None:
                failures.append(error if isinstance(error, LogqError) else LogqError(str(error)))
            latencies.append((time.perf_counter() - started) * 1000)

        return done

    progress = Progress(count, "producing")
    sent = 0
    with one_line_errors(opts.bootstrap), stop_on_signals() as stop:  # SIGTERM stops it as Ctrl-C does
        with Producer(
            opts.bootstrap,
            acks=acks,
            batch_size=batch_size,
            linger_ms=linger_ms,
            compression=compression,
            **opts.security(),
        ) as producer:
            producer.partitions_for(queue_name)  # fails fast on an unknown queue
            send = producer.send
            started = time.perf_counter()
            for i in range(count):
                future = send(queue_name, value)
                if i % LATENCY_SAMPLE_EVERY == 0:
                    future.add_done_callback(sampler(time.perf_counter()))
                    progress.update(i)
                    if failures or stop.requested:
                        break
            sent = i + 1
            producer.flush()
            seconds = time.perf_counter() - started
        progress.close()
        if failures:
            raise failures[0]
        if stop.requested:
            raise click.ClickException(
                f"interrupted by {stop.signal_name} after sending {sent} of {count} messages"
            )
    report(_result(count, size, seconds, latencies), as_json)


def _result(count: int, size: int, seconds: float, latencies: list[float]) -> dict[str, Any]:
    return {
        "messages": count,
        "bytes": count * size,
        "seconds": round(seconds, 4),
        "msgs_per_sec": round(count / seconds, 1),
        "mb_per_sec": round(count * size / seconds / 1e6, 2),
        "latency_ms_p50": round(percentile(latencies, 0.50), 3),
        "latency_ms_p99": round(percentile(latencies, 0.99), 3),
        "latency_ms_max": round(max(latencies, default=0.0), 3),
    }


@perf.command("consume")
@click.argument("queue_name", metavar="QUEUE")
@click.option("--count", type=click.IntRange(min=1), default=1_000_000, show_default=True)
@click.option("-g", "--group", "group_id", help="Consume as GROUP (default: every partition from the start).")
@click.option("--timeout", type=float, default=60, show_default=True, help="Give up after this many seconds.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
@client_options
@click.pass_context
def perf_consume(
    ctx: click.Context, *, queue_name: str, count: int, group_id: str | None, timeout: float, as_json: bool
) -> None:
    """Read COUNT messages of QUEUE from the beginning as fast as the consumer allows.

    Latency is each record's age when it is handed out (now - its timestamp), in ms: end-to-end when a
    producer runs at the same time.

    \b
    Example:
      logq perf consume bench --count 1000000 --json
    """
    opts = settings(ctx)
    seen = 0
    total_bytes = 0
    ages: list[float] = []
    progress = Progress(count, "consuming")
    with one_line_errors(opts.bootstrap), stop_on_signals() as stop:  # SIGTERM stops it as Ctrl-C does
        consumer = Consumer(
            opts.bootstrap,
            group_id=group_id,
            auto_offset_reset="earliest",
            enable_auto_commit=group_id is not None,
            **opts.security(),
        )
        try:
            if group_id is None:
                partitions = [
                    QueuePartition(queue_name, p) for p in range(consumer.partitions_for(queue_name))
                ]
                consumer.assign(partitions)
                consumer.seek_to_beginning(partitions)
            else:
                consumer.subscribe([queue_name])
            started = time.perf_counter()
            deadline = started + timeout
            while seen < count and not stop.requested:
                records = consumer.poll(timeout=0.5)
                if records:
                    # Touch every value, as an application would, at C speed (map/filter, no Python loop).
                    total_bytes += sum(map(len, filter(None, map(_VALUE, records))))
                    seen += len(records)
                    ages.append(time.time() * 1000 - records[-1].timestamp)
                    progress.update(seen)
                elif time.perf_counter() > deadline:
                    raise TimeoutError(f"read {seen} of {count} messages in {timeout:g} s")
            seconds = time.perf_counter() - started
        finally:
            consumer.close()  # leaves the group, also when stopped
            progress.close()
        if stop.requested:
            raise click.ClickException(
                f"interrupted by {stop.signal_name} after reading {seen} of {count} messages"
            )
    result = _result(seen, 0, seconds, ages)
    result["bytes"] = total_bytes
    result["mb_per_sec"] = round(total_bytes / seconds / 1e6, 2)
    report(result, as_json)
