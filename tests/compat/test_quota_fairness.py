"""Fairness under a quota: a flooder with a producer_byte_rate quota sends as fast as it can next to a
well-behaved producer sending at a steady rate. The flooder is held to its quota within 10% over 10 s,
and the steady producer's p99 delivery latency stays within 2x of its p99 when it runs alone (plus a
few milliseconds, so that a sub-millisecond baseline is not a flaky bound)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from confluent_kafka import Producer

from tests.broker_process import BrokerProcess
from tests.compat.test_quota_clients import create_queue, set_quota

QUOTA = 500_000  # bytes per second
RUN_S = 10.0
STEADY_INTERVAL_S = 0.01
BATCH = 16_384


def steady_latencies(bootstrap: str, seconds: float) -> list[float]:
    """Send a 1 KB message every 10 ms; each one's delivery latency."""
    latencies: list[float] = []
    producer = Producer({"bootstrap.servers": bootstrap, "client.id": "steady", "linger.ms": 0, "acks": 1})

    def delivered(err: Any, msg: Any, sent: float) -> None:
        if err is None:
            latencies.append(time.monotonic() - sent)

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        sent = time.monotonic()
        producer.produce("steady", b"s" * 1000, on_delivery=lambda e, m, s=sent: delivered(e, m, s))
        producer.poll(0)
        time.sleep(max(0.0, STEADY_INTERVAL_S - (time.monotonic() - sent)))
    producer.flush(10)
    return latencies


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[int(len(ordered) * 0.99) - 1]


def test_a_flooder_is_held_to_its_quota_and_a_steady_producer_keeps_its_latency(tmp_path: Path) -> None:
    broker = BrokerProcess(tmp_path / "data").start()
    try:
        create_queue(broker.bootstrap, "steady")
        create_queue(broker.bootstrap, "flood")
        set_quota(broker.bootstrap, "flooder", "producer_byte_rate", QUOTA)
        alone = p99(steady_latencies(broker.bootstrap, 3.0))

        delivered = 0
        stop = threading.Event()

        def on_delivery(err: Any, msg: Any) -> None:
            nonlocal delivered
            if err is None:
                delivered += len(msg)

        flooder = Producer(
            {
                "bootstrap.servers": broker.bootstrap,
                "client.id": "flooder",
                "linger.ms": 5,
                "batch.size": BATCH,
                "max.in.flight.requests.per.connection": 1,
            }
        )

        def flood() -> None:
            value = b"f" * 1000
            while not stop.is_set():
                try:
                    flooder.produce("flood", value, on_delivery=on_delivery)
                except BufferError:
                    flooder.poll(0.01)
                flooder.poll(0)

        thread = threading.Thread(target=flood, daemon=True)
        started = time.monotonic()
        thread.start()
        together = steady_latencies(broker.bootstrap, RUN_S)
        stop.set()
        thread.join(10)
        flooded_for = time.monotonic() - started
        flooder.purge()
        flooder.flush(5)
        held = delivered / flooded_for
        assert held <= QUOTA * 1.1, f"the flooder got {held:,.0f} B/s against a quota of {QUOTA:,}"
        assert held >= QUOTA * 0.5, f"the flooder got only {held:,.0f} B/s"
        assert p99(together) <= 2 * alone + 0.005, (p99(together), alone)
    finally:
        broker.kill()
