"""Cluster benchmark: a three-broker logq cluster (ZooKeeper + 3 broker processes) against a standalone
broker, side by side in one run, and how long a partition is unavailable when its leader's process dies.

Usage: python benchmarks/cluster_bench.py [--quick] [--replication-factor N] [--min-insync-replicas N]
           [--partitions N] [--rounds N] [--repeats N] [--json FILE]

Run from the repository root's virtualenv; it needs Debian's zookeeper package (and java). Cases:
- throughput: produce COUNT x 100 B values (acks=all) into a fresh queue of --partitions partitions, then
  read everything back from the earliest offset, on a standalone broker (`logq broker start`, no
  ZooKeeper) and on the cluster (replication factor --replication-factor, queue setting
  ``min.insync.replicas`` from --min-insync-replicas). Both driven by confluent-kafka configured the same
  way: acks=all, linger.ms 5, batch.size 1,000,000, no compression, not idempotent, ``produce_batch`` of
  10,000 messages; consumer with 4 MiB per partition per fetch. The two systems alternate over --rounds
  rounds, each round with a fresh queue; the ratio reported is the median of the rounds' ratios.
- SIGKILL of a partition leader: one producer (acks=all, linger.ms 0, message.timeout.ms 120 s, short
  client retry/reconnect backoffs) sends a 100 B message every 2 ms to one partition and records the time
  of every successful delivery report; the partition's leader (from list_topics() metadata) is killed with
  SIGKILL. The window is the longest gap between consecutive successful deliveries from the last one
  before the signal until 1 s after the partition is served again (the first delivery of a message sent
  after the signalled process had exited); "signal -> resume" is the time from the signal to the delivery
  that ends that gap, i.e. the first delivery after the outage. Also recorded: when the metadata first
  names another leader (polled every 50 ms), to tell the brokers' part from the client's. Then the
  killed broker is restarted, and the next run waits until every partition has a leader (and, for up to
  10 s, a full ISR). Target: the ZooKeeper session timeout (``zookeeper.session.timeout.ms``, 2,000 ms;
  ZooKeeper runs with tickTime 500 ms) + at most 1 s.
- SIGTERM (controlled shutdown) of a partition leader: the same with SIGTERM. Target: < 1 s.
Each failover case runs --repeats times (median and max reported), alternating the two signals, each run
on the next partition of the queue. If the partition is not served again within --outage-limit seconds
of the signal (e.g. with replication factor 1, where no other broker has the partition), the broker is
restarted then, and the run is reported as recovered only after the restart (its window includes it).
Traffic stays on 127.0.0.1; every wait is bounded; every process started here (ZooKeeper, brokers) is
stopped by its PID and every data directory removed, also on errors and Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import confluent_kafka  # noqa: E402
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient  # noqa: E402
from confluent_kafka.cimpl import NewTopic  # noqa: E402

from tests.broker_process import BrokerProcess  # noqa: E402
from tests.zookeeper_server import LocalZooKeeper  # noqa: E402

VALUE_SIZE = 100
COUNT = 1_000_000  # about a second per run: shorter runs swing too much on this machine
QUICK_COUNT = 100_000
BROKERS = 3
CHROOT = "/logq-cluster-bench"
SESSION_TIMEOUT_MS = 2000  # allowed by tickTime 500 ms (sessions of 1-10 s)
OFFSETS_PARTITIONS = 6  # __consumer_offsets (the drain's consumer has a group id, as librdkafka requires)
BROKER_SETTINGS: dict[str, Any] = {"offsets.topic.num.partitions": OFFSETS_PARTITIONS}
PRODUCER_SETTINGS: dict[str, Any] = {
    "acks": "all",
    "linger.ms": 5,
    "batch.size": 1_000_000,
    "compression.type": "none",
    "enable.idempotence": False,
    "queue.buffering.max.messages": 2_000_000,
    "queue.buffering.max.kbytes": 2_000_000,
    "delivery.report.only.error": True,
}
CONSUMER_SETTINGS: dict[str, Any] = {
    "group.id": "cluster-bench",
    "enable.auto.commit": False,
    "fetch.max.bytes": 64 * 1024 * 1024,
    "max.partition.fetch.bytes": 4 * 1024 * 1024,
    "queued.min.messages": 1_000_000,
}
# The failover producer: retries until the partition is back, and notices leader changes quickly (the
# client's own backoffs are kept short so that what is measured is the brokers, not librdkafka's waits).
STREAM_SETTINGS: dict[str, Any] = {
    "acks": "all",
    "linger.ms": 0,
    "enable.idempotence": False,
    "message.timeout.ms": 120_000,
    "retry.backoff.ms": 20,
    "retry.backoff.max.ms": 100,
    "reconnect.backoff.ms": 20,
    "reconnect.backoff.max.ms": 200,
    "topic.metadata.refresh.fast.interval.ms": 50,
    # librdkafka re-reads metadata only on its own schedule while the dead leader is still listed (until
    # the session timeout removes it); its default refresh interval adds ~2 s to the window. See
    # docs/benchmarks.md for the window with the defaults.
    "topic.metadata.refresh.interval.ms": 500,
    "log_level": 2,  # no "Connect failed" lines while a broker is down
}
STREAM_INTERVAL_S = 0.002
WARMUP_S = 1.0
TAIL_S = 1.0  # keep producing this long after the first new delivery (to see a second gap, if any)
PRODUCE_TIMEOUT_S = 120
CONSUME_TIMEOUT_S = 120
START_TIMEOUT_S = 30
HEALTH_TIMEOUT_S = 30
ISR_TIMEOUT_S = 10
SHUTDOWN_TIMEOUT_S = 30
EXIT_GRACE_S = 1.0
METADATA_POLL_S = 0.05
METADATA_TIMEOUT_S = 0.5
RECOVERY_AFTER_RESTART_S = 30
STREAM_FLUSH_S = 5


class BenchError(RuntimeError):
    """A phase could not be measured; the message says why."""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- processes ------------------------------------------------------------------------------------------


class Cluster:
    """ZooKeeper (tickTime 500 ms) and ``size`` brokers with ids 1..size, each with its own data directory."""

    def __init__(self, root: Path, size: int, session_timeout_ms: int) -> None:
        self.root = root
        self.size = size
        self.session_timeout_ms = session_timeout_ms
        self.zookeeper = LocalZooKeeper(root / "zookeeper")
        self.brokers: dict[int, BrokerProcess] = {}

    def start(self) -> Cluster:
        self.root.mkdir(parents=True, exist_ok=True)
        self.zookeeper.start()
        connect = self.zookeeper.connect + CHROOT
        for i in range(1, self.size + 1):
            self.brokers[i] = BrokerProcess(
                self.root / f"broker-{i}",
                broker={
                    **BROKER_SETTINGS,
                    "broker.id": i,
                    "zookeeper.connect": connect,
                    "zookeeper.session.timeout.ms": self.session_timeout_ms,
                },
            )
        with ThreadPoolExecutor(self.size) as pool:
            for started in [pool.submit(b.start, START_TIMEOUT_S) for b in self.brokers.values()]:
                started.result()
        return self

    def stop(self) -> None:
        """SIGKILL every broker (its data is thrown away), then stop ZooKeeper, even if a step fails."""
        try:
            for broker in self.brokers.values():
                with contextlib.suppress(Exception):
                    broker.kill()
        finally:
            self.zookeeper.stop()

    @property
    def bootstrap(self) -> str:
        return ",".join(b.bootstrap for b in self.brokers.values())

    def pids(self) -> list[int]:
        return [b.proc.pid for b in self.brokers.values() if b.proc is not None]


def log_tail(name: str, broker: BrokerProcess, lines: int = 15) -> str:
    text = "".join(broker.output[-lines:]).rstrip()
    return f"--- {name} ({broker.bootstrap}), last lines of its output:\n{text or '(none)'}"


# --- clients --------------------------------------------------------------------------------------------


@dataclass
class Target:
    """One system under test: where it listens and how its queues are created."""

    name: str
    bootstrap: str
    brokers: int
    replication: int
    settings: dict[str, str]
    pids: Callable[[], list[int]]
    admin: AdminClient = field(init=False)

    def __post_init__(self) -> None:
        self.admin = AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 2})


def create_queue(target: Target, name: str, partitions: int) -> None:
    topic = NewTopic(
        name, num_partitions=partitions, replication_factor=target.replication, config=target.settings
    )
    for future in target.admin.create_topics([topic], request_timeout=30).values():
        try:
            future.result(60)
        except KafkaException as exc:
            raise BenchError(
                f"{target.name}: creating queue {name} ({partitions} partitions, replication factor "
                f"{target.replication}, settings {target.settings}) was refused: {exc}"
            ) from None


def leaders(admin: AdminClient, queue: str, timeout: float = 5) -> tuple[set[int], dict[int, Any]]:
    """The live broker ids and the queue's partitions (PartitionMetadata by index) from one Metadata call."""
    metadata = admin.list_topics(queue, timeout=timeout)
    topic = metadata.topics.get(queue)
    if topic is None or topic.error is not None:
        return set(metadata.brokers), {}
    return set(metadata.brokers), dict(topic.partitions)


def wait_for_leaders(target: Target, queue: str, partitions: int, timeout: float = HEALTH_TIMEOUT_S) -> None:
    """Until all the target's brokers are live and every partition of ``queue`` has a live leader."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            live, parts = leaders(target.admin, queue, timeout=2)
        except KafkaException as exc:
            last = str(exc)
        else:
            led = {i: p.leader for i, p in parts.items()}
            if len(live) == target.brokers and len(led) == partitions and set(led.values()) <= live:
                return
            last = f"live brokers {sorted(live)}, leaders {led}"
        time.sleep(0.1)
    raise BenchError(f"{target.name}: no leader for every partition of {queue} after {timeout} s ({last})")


def wait_for_full_isr(target: Target, queue: str, timeout: float = ISR_TIMEOUT_S) -> bool:
    """Until every partition's in-sync replicas are all its replicas; False (not an error) on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(KafkaException):
            _, parts = leaders(target.admin, queue, timeout=2)
            if parts and all(set(p.replicas) <= set(p.isrs) for p in parts.values()):
                return True
        time.sleep(0.1)
    return False


def produce(target: Target, queue: str, count: int, size: int) -> dict[str, float]:
    errors: list[str] = []

    def failed(err: Any, _msg: Any) -> None:
        errors.append(str(err))

    producer = Producer({"bootstrap.servers": target.bootstrap, **PRODUCER_SETTINGS})
    chunk = [{"value": os.urandom(size)} for _ in range(10_000)]
    cpu0 = sum(map(cpu_seconds, target.pids()))
    started = time.perf_counter()
    deadline = started + PRODUCE_TIMEOUT_S
    sent = 0
    while sent < count and time.perf_counter() < deadline:
        sent += producer.produce_batch(queue, chunk[: count - sent], on_delivery=failed)
        producer.poll(0)
    remaining = producer.flush(max(1.0, deadline - time.perf_counter()))
    elapsed = time.perf_counter() - started
    cpu = sum(map(cpu_seconds, target.pids())) - cpu0
    if sent < count or remaining or errors:
        producer.purge()
        producer.flush(5)
        raise BenchError(
            f"{target.name}: produced {sent} of {count} in {elapsed:.0f} s, {remaining} undelivered, "
            f"errors: {errors[:3]}"
        )
    return {
        "msgs_per_s": count / elapsed,
        "mb_per_s": count * size / elapsed / 1e6,
        "seconds": elapsed,
        "broker_cpu_us_per_msg": cpu / count * 1e6,
    }


def consume(target: Target, queue: str, partitions: int, count: int, size: int) -> dict[str, float]:
    consumer = Consumer({"bootstrap.servers": target.bootstrap, **CONSUMER_SETTINGS})
    try:
        consumer.assign([TopicPartition(queue, p, 0) for p in range(partitions)])
        seen = 0
        cpu0 = sum(map(cpu_seconds, target.pids()))
        started = time.perf_counter()
        deadline = started + CONSUME_TIMEOUT_S
        while seen < count and time.perf_counter() < deadline:
            for msg in consumer.consume(10_000, 1.0):
                if msg.error() is None:
                    seen += 1
        elapsed = time.perf_counter() - started
        cpu = sum(map(cpu_seconds, target.pids())) - cpu0
    finally:
        consumer.close()
    if seen < count:
        raise BenchError(f"{target.name}: consumed {seen} of {count} in {elapsed:.0f} s")
    return {
        "msgs_per_s": count / elapsed,
        "mb_per_s": count * size / elapsed / 1e6,
        "seconds": elapsed,
        "broker_cpu_us_per_msg": cpu / count * 1e6,
    }


def throughput(
    standalone: Target, cluster: Target, partitions: int, count: int, rounds: int
) -> dict[str, Any]:
    runs: list[dict[str, Any]] = []
    for r in range(rounds):
        run: dict[str, Any] = {}
        order = (standalone, cluster) if r % 2 == 0 else (cluster, standalone)  # alternate who goes first
        for target in order:
            queue = f"bench-r{r}"
            create_queue(target, queue, partitions)
            wait_for_leaders(target, queue, partitions)
            wait_for_full_isr(target, queue)
            run[f"{target.name}_produce"] = produce(target, queue, count, VALUE_SIZE)
            run[f"{target.name}_consume"] = consume(target, queue, partitions, count, VALUE_SIZE)
        for phase in ("produce", "consume"):
            run[f"{phase}_ratio"] = (
                run[f"cluster_{phase}"]["msgs_per_s"] / run[f"standalone_{phase}"]["msgs_per_s"]
            )
        print(f"throughput round {r}", json.dumps(run), flush=True)
        runs.append(run)
    summary: dict[str, Any] = {"rounds": runs}
    for phase in ("produce", "consume"):
        for name in ("standalone", "cluster"):
            summary[f"{name}_{phase}"] = {
                key: statistics.median(run[f"{name}_{phase}"][key] for run in runs)
                for key in ("msgs_per_s", "mb_per_s", "broker_cpu_us_per_msg")
            }
        summary[f"{phase}_ratio"] = statistics.median(run[f"{phase}_ratio"] for run in runs)
    return summary


# --- failover ------------------------------------------------------------------------------------------


class SteadyProducer:
    """A thread sending one ``size``-byte message every ``interval_s`` to one partition (acks=all), keeping
    the monotonic time of every successful delivery report. Each value starts with its sequence number, so
    a report tells when its message was sent; ``first_new_delivery`` is the report time of the first
    delivered message sent after ``mark``."""

    def __init__(self, bootstrap: str, queue: str, partition: int, interval_s: float, size: int) -> None:
        self._producer = Producer({"bootstrap.servers": bootstrap, **STREAM_SETTINGS})
        self._queue = queue
        self._partition = partition
        self._interval_s = interval_s
        self._size = size
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="steady-producer", daemon=True)
        self.sent_at: list[float] = []
        self.delivered: list[float] = []
        self.failed: list[str] = []
        self.purged = 0
        self.mark = float("inf")
        self.first_new_delivery: float | None = None
        self.error: BaseException | None = None

    def start(self) -> SteadyProducer:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop sending, wait up to a few seconds for what is in flight, drop the rest."""
        self._stop.set()
        self._thread.join(STREAM_FLUSH_S + 10)

    def _on_delivery(self, err: Any, msg: Any) -> None:
        now = time.monotonic()
        if err is not None:
            if err.code() in (KafkaError._PURGE_QUEUE, KafkaError._PURGE_INFLIGHT):
                self.purged += 1
            else:
                self.failed.append(str(err))
            return
        self.delivered.append(now)
        if self.first_new_delivery is None and self.sent_at[int(msg.value()[:12])] > self.mark:
            self.first_new_delivery = now

    def _run(self) -> None:
        filler = b"x" * (self._size - 12)
        try:
            next_send = time.monotonic()
            while not self._stop.is_set():
                now = time.monotonic()
                if now >= next_send:
                    seq = len(self.sent_at)
                    self.sent_at.append(now)  # before produce(): its report can only come after
                    try:
                        self._producer.produce(
                            self._queue,
                            b"%012d" % seq + filler,
                            partition=self._partition,
                            on_delivery=self._on_delivery,
                        )
                    except BufferError:
                        self.sent_at.pop()
                    next_send = max(next_send + self._interval_s, now)
                self._producer.poll(max(0.0, min(next_send - time.monotonic(), 0.001)))
            if self._producer.flush(STREAM_FLUSH_S):
                self._producer.purge()
                self._producer.flush(1)
        except BaseException as exc:
            self.error = exc


class LeaderWatcher:
    """A thread asking the other brokers for the partition's leader every METADATA_POLL_S seconds, until
    one names a leader other than ``old`` (``moved_at``: when that answer came)."""

    def __init__(self, bootstrap: str, queue: str, partition: int, old: int) -> None:
        self._admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 2})
        self._queue = queue
        self._partition = partition
        self._old = old
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="leader-watcher", daemon=True)
        self.moved_at: float | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(METADATA_TIMEOUT_S + 5)

    def _run(self) -> None:
        while not self._stop.wait(METADATA_POLL_S):
            with contextlib.suppress(KafkaException):
                _, parts = leaders(self._admin, self._queue, timeout=METADATA_TIMEOUT_S)
                part = parts.get(self._partition)
                if part is not None and part.leader not in (-1, self._old):
                    self.moved_at = time.monotonic()
                    return


@dataclass
class Victim:
    """The broker process being signalled, and what happened to it."""

    broker_id: int
    process: subprocess.Popen[str]
    exited_at: float | None = None
    forced_kill: bool = False

    def poll(self) -> float | None:
        """When it was first seen to have exited (None: still running)."""
        if self.exited_at is None and self.process.poll() is not None:
            self.exited_at = time.monotonic()
        return self.exited_at

    def ensure_dead(self, timeout: float) -> None:
        """Wait up to ``timeout`` for it to exit, then SIGKILL it."""
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.forced_kill = True
            self.process.kill()
            self.process.wait(10)
        self.poll()


def failover_run(
    cluster: Cluster, target: Target, queue: str, *, partitions: int, partition: int, sig: signal.Signals,
    outage_limit_s: float,
) -> dict[str, Any]:  # fmt: skip
    wait_for_leaders(target, queue, partitions)
    full_isr = wait_for_full_isr(target, queue)
    stream = SteadyProducer(target.bootstrap, queue, partition, STREAM_INTERVAL_S, VALUE_SIZE).start()
    victim: Victim | None = None
    restart_begun: float | None = None
    restarted_at: float | None = None
    watcher: LeaderWatcher | None = None
    try:
        started = time.monotonic()
        while time.monotonic() < started + 15 and (
            len(stream.delivered) < 100 or time.monotonic() < started + WARMUP_S
        ):
            time.sleep(0.01)
        if len(stream.delivered) < 100:
            raise BenchError(f"the steady producer delivered {len(stream.delivered)} messages in 15 s")
        _, parts = leaders(target.admin, queue)
        leader = parts[partition].leader if partition in parts else -1
        broker = cluster.brokers.get(leader)
        if broker is None or broker.proc is None:
            raise BenchError(f"partition {queue}-{partition} has leader {leader}, not a running broker")
        victim = Victim(leader, broker.proc)
        others = ",".join(b.bootstrap for i, b in cluster.brokers.items() if i != leader)
        watcher = LeaderWatcher(others, queue, partition, leader)
        t_signal = time.monotonic()
        victim.process.send_signal(sig)
        watcher.start()
        while True:
            time.sleep(0.005)
            now = time.monotonic()
            if victim.exited_at is None and (exited := victim.poll()) is not None:
                # From now on a message can only be served by another broker (or the restarted one);
                # before, the signalled broker may still be answering while it shuts down.
                stream.mark = exited
            recovered = stream.first_new_delivery
            if recovered is not None and now >= recovered + TAIL_S:
                break
            if restarted_at is not None and now >= restarted_at + RECOVERY_AFTER_RESTART_S:
                break
            if restart_begun is None and recovered is None and now >= t_signal + outage_limit_s:
                if victim.exited_at is None and now < t_signal + SHUTDOWN_TIMEOUT_S:
                    continue  # still shutting down: give it time
                if victim.exited_at is not None and now < victim.exited_at + EXIT_GRACE_S:
                    continue  # just exited: give the others time to take over
                victim.ensure_dead(0)  # SIGKILL if it has not exited in SHUTDOWN_TIMEOUT_S
                stream.mark = min(stream.mark, time.monotonic())
                restart_begun = time.monotonic()
                broker.start(START_TIMEOUT_S)
                restarted_at = time.monotonic()
        t_end = time.monotonic()
    finally:
        if watcher is not None:
            watcher.stop()
        stream.stop()
    assert victim is not None  # the loop above ran
    assert watcher is not None
    moved_at = watcher.moved_at
    if stream.error is not None:
        raise BenchError(f"the steady producer failed: {stream.error!r}")
    victim.ensure_dead(SHUTDOWN_TIMEOUT_S)
    if restart_begun is None:
        broker.start(START_TIMEOUT_S)
    wait_for_leaders(target, queue, partitions)

    recovered = stream.first_new_delivery
    times = sorted(stream.delivered)
    result: dict[str, Any] = {
        "signal": sig.name,
        "partition": partition,
        "broker_id": victim.broker_id,
        "full_isr_before": full_isr,
        "sent": len(stream.sent_at),
        "delivered": len(times),
        "failed": len(stream.failed),
        "failed_examples": stream.failed[:3],
        "purged_at_end": stream.purged,
        "process_exit_s": None if victim.exited_at is None else victim.exited_at - t_signal,
        "process_exit_code": victim.process.returncode,
        "forced_kill": victim.forced_kill,
        "restarted_after_s": None if restart_begun is None else restart_begun - t_signal,
        "other_leader_in_metadata_s": None if moved_at is None else moved_at - t_signal,
        "recovered_before_restart": recovered is not None
        and (restart_begun is None or recovered < restart_begun),
        "window_s": None,
        "gap_start_s": None,
        "signal_to_resume_s": None,
    }
    if recovered is not None:
        # from the last delivery before the signal to TAIL_S after the first delivery of a message sent
        # once the signalled process was gone
        around = [t for t in times if t <= t_signal][-1:] + [
            t for t in times if t_signal < t <= recovered + TAIL_S
        ]
        start, end = max(itertools.pairwise(around), key=lambda gap: gap[1] - gap[0])
        result |= {
            "window_s": end - start,
            "gap_start_s": start - t_signal,
            "signal_to_resume_s": end - t_signal,
        }
    else:
        result["unavailable_at_least_s"] = t_end - (times[-1] if times else t_signal)
    return result


def summarize_failover(runs: list[dict[str, Any]]) -> dict[str, Any]:
    windows = [r["window_s"] for r in runs if r["window_s"] is not None]
    resumes = [r["signal_to_resume_s"] for r in runs if r["window_s"] is not None]
    return {
        "runs": runs,
        "recovered": len(windows),
        "recovered_before_restart": sum(r["recovered_before_restart"] for r in runs),
        "window_s_median": statistics.median(windows) if windows else None,
        "window_s_max": max(windows) if windows else None,
        "signal_to_resume_s_median": statistics.median(resumes) if resumes else None,
        "signal_to_resume_s_max": max(resumes) if resumes else None,
    }


def failover(
    cluster: Cluster, target: Target, partitions: int, repeats: int, outage_limit_s: float
) -> dict[str, Any]:
    queue = "failover"
    create_queue(target, queue, partitions)
    runs: dict[signal.Signals, list[dict[str, Any]]] = {signal.SIGKILL: [], signal.SIGTERM: []}
    n = 0
    for r in range(repeats):
        for sig, done in runs.items():
            result = failover_run(
                cluster, target, queue, partitions=partitions, partition=n % partitions, sig=sig,
                outage_limit_s=outage_limit_s,
            )  # fmt: skip
            n += 1
            print(f"failover {sig.name} run {r}", json.dumps(result), flush=True)
            done.append(result)
    return {
        "sigkill": summarize_failover(runs[signal.SIGKILL]),
        "sigterm": summarize_failover(runs[signal.SIGTERM]),
    }


# --- report --------------------------------------------------------------------------------------------


def rate(result: dict[str, float]) -> str:
    return f"{result['msgs_per_s']:,.0f} msg/s, {result['mb_per_s']:.1f} MB/s"


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def seconds_cell(summary: dict[str, Any], key: str) -> str:
    if summary[f"{key}_median"] is None:
        return "no recovery"
    return f"{summary[f'{key}_median']:.2f} / {summary[f'{key}_max']:.2f} s"


def table(results: dict[str, Any]) -> str:
    s = results["settings"]
    t = results["throughput"]
    lines = [
        f"Cluster: {BROKERS} brokers, replication factor {s['replication_factor']}, min.insync.replicas "
        f"{s['min_insync_replicas']}, ZooKeeper session timeout {s['session_timeout_ms']} ms (tickTime "
        f"500 ms); standalone: replication factor 1. Client: confluent-kafka {s['confluent_kafka']} "
        f"(librdkafka {s['librdkafka']}), acks=all, linger.ms 5, batch.size 1,000,000, compression none. "
        f"{s['partitions']} partitions, {s['count']:,} x {VALUE_SIZE} B, median of {s['rounds']} round(s).",
        "",
        "| case | standalone | cluster | cluster / standalone | target |",
        "|---|---:|---:|---:|---|",
    ]
    for phase, what in (("produce", "produce, acks=all"), ("consume", "consume from the earliest offset")):
        ratio = t[f"{phase}_ratio"]
        lines.append(
            f"| {what} | {rate(t[f'standalone_{phase}'])} | {rate(t[f'cluster_{phase}'])} | {ratio:.2f} "
            f"| >= 0.50: {verdict(ratio >= 0.50)} |"
        )
        lines.append(
            f"| broker CPU per message ({phase}, all brokers) "
            f"| {t[f'standalone_{phase}']['broker_cpu_us_per_msg']:.2f} us "
            f"| {t[f'cluster_{phase}']['broker_cpu_us_per_msg']:.2f} us | | |"
        )
    session_s = s["session_timeout_ms"] / 1000
    lines += [
        "",
        f"| leader's process gets (runs: {s['repeats']}) | longest gap between deliveries, median / max "
        "| signal -> first delivery after that gap, median / max | recovered without restart "
        "| target (window) |",
        "|---|---:|---:|---:|---|",
    ]
    for key, what, limit, strict in (
        ("sigkill", "SIGKILL", session_s + 1, False),
        ("sigterm", "SIGTERM (controlled shutdown)", 1.0, True),
    ):
        f = results[key]
        worst = f["window_s_max"]
        ok = (
            worst is not None
            and f["recovered_before_restart"] == len(f["runs"])
            and (worst < limit if strict else worst <= limit)
        )
        target = f"{'<' if strict else '<='} {limit:.1f} s: {verdict(ok)}"
        lines.append(
            f"| {what} | {seconds_cell(f, 'window_s')} | {seconds_cell(f, 'signal_to_resume_s')} "
            f"| {f['recovered_before_restart']} of {len(f['runs'])} | {target} |"
        )
    lines += [
        "",
        "| run | signal | partition (leader) | process exited after | metadata names another leader after "
        "| longest gap, from -> to after the signal | restarted after |",
        "|---|---|---|---:|---:|---|---:|",
    ]
    for key in ("sigkill", "sigterm"):
        for i, run in enumerate(results[key]["runs"]):
            exited = "-" if run["process_exit_s"] is None else f"{run['process_exit_s']:.2f} s"
            if run["window_s"] is None:
                gap = f"no delivery for at least {run['unavailable_at_least_s']:.2f} s"
            else:
                gap = (
                    f"{run['window_s']:.3f} s, {run['gap_start_s']:+.3f} -> "
                    f"{run['signal_to_resume_s']:+.3f} s"
                )
            restarted = "-" if run["restarted_after_s"] is None else f"{run['restarted_after_s']:.1f} s"
            moved = run["other_leader_in_metadata_s"]
            moved_text = "-" if moved is None else f"{moved:.2f} s"
            lines.append(
                f"| {i + 1} | {run['signal']} | {run['partition']} (broker {run['broker_id']}) | {exited} "
                f"| {moved_text} | {gap} | {restarted} |"
            )
    if any(
        not run["recovered_before_restart"] for key in ("sigkill", "sigterm") for run in results[key]["runs"]
    ):
        lines += [
            "",
            "Runs not recovered without a restart: the partition was not served again until the signalled "
            f"broker was restarted ({s['outage_limit_s']:.0f} s after the signal, or 1 s after it exited if "
            "later); their figures include that restart.",
        ]
    return "\n".join(lines)


# --- main ----------------------------------------------------------------------------------------------


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # run the clean-up of main() on SIGTERM too


def _ignore_interrupts() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help=f"{QUICK_COUNT:,} messages, 2 rounds, 1 failover run per signal"
    )
    parser.add_argument("--replication-factor", type=int, default=3, help="of the cluster's queues (3)")
    parser.add_argument(
        "--min-insync-replicas", type=int, default=2, help="queue setting (2; at most the replication factor)"
    )
    parser.add_argument("--partitions", type=int, default=6, help="of each queue (6)")
    parser.add_argument(
        "--count", type=int, help=f"messages per throughput run ({COUNT:,}; quick {QUICK_COUNT:,})"
    )
    parser.add_argument("--rounds", type=int, help="throughput rounds, alternating the systems (5; quick 2)")
    parser.add_argument("--repeats", type=int, help="failover runs per signal (3; quick 1)")
    parser.add_argument(
        "--session-timeout-ms", type=int, default=SESSION_TIMEOUT_MS, help="1000-10000 (2000)"
    )
    parser.add_argument(
        "--outage-limit", type=float, help="seconds to wait for recovery before restarting (session + 5 s)"
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--dir", type=Path, default=ROOT / "bench-data", help="where the temp dirs go")
    args = parser.parse_args()
    if not 1 <= args.replication_factor <= BROKERS:
        parser.error(f"--replication-factor must be 1..{BROKERS}")
    if args.partitions < 1 or args.min_insync_replicas < 1:
        parser.error("--partitions and --min-insync-replicas must be at least 1")
    if not 1000 <= args.session_timeout_ms <= 10_000:
        parser.error("--session-timeout-ms must be 1000..10000 (ZooKeeper's tickTime is 500 ms)")
    count = args.count or (QUICK_COUNT if args.quick else COUNT)
    rounds = args.rounds or (2 if args.quick else 5)
    repeats = args.repeats or (1 if args.quick else 3)
    outage_limit_s = args.outage_limit or args.session_timeout_ms / 1000 + 5
    min_isr = min(args.min_insync_replicas, args.replication_factor)
    if min_isr != args.min_insync_replicas:
        print(
            f"note: min.insync.replicas {args.min_insync_replicas} > replication factor "
            f"{args.replication_factor}: using {min_isr}",
            flush=True,
        )
    results: dict[str, Any] = {
        "settings": {
            "count": count,
            "value_size": VALUE_SIZE,
            "partitions": args.partitions,
            "rounds": rounds,
            "repeats": repeats,
            "replication_factor": args.replication_factor,
            "min_insync_replicas": min_isr,
            "session_timeout_ms": args.session_timeout_ms,
            "outage_limit_s": outage_limit_s,
            "confluent_kafka": confluent_kafka.__version__,
            "librdkafka": confluent_kafka.libversion()[0],
            "producer": PRODUCER_SETTINGS,
            "consumer": CONSUMER_SETTINGS,
            "failover_producer": STREAM_SETTINGS | {"interval_s": STREAM_INTERVAL_S},
        }
    }
    signal.signal(signal.SIGTERM, _terminate)
    args.dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="logq-cluster-bench-", dir=args.dir))
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(shutil.rmtree, work, True)  # registered first: runs last
        (work / "standalone").mkdir()
        standalone = BrokerProcess(work / "standalone" / "data", broker=BROKER_SETTINGS)
        cleanup.callback(standalone.kill)
        cluster = Cluster(work / "cluster", BROKERS, args.session_timeout_ms)
        cleanup.callback(cluster.stop)
        cleanup.callback(_ignore_interrupts)  # registered last: runs first, so a second Ctrl-C cannot cut it
        try:
            standalone.start(START_TIMEOUT_S)
            cluster.start()
            solo = Target(
                "standalone",
                standalone.bootstrap,
                1,
                1,
                {},
                lambda: [] if standalone.proc is None else [standalone.proc.pid],
            )
            multi = Target(
                "cluster",
                cluster.bootstrap,
                BROKERS,
                args.replication_factor,
                {"min.insync.replicas": str(min_isr)},
                cluster.pids,
            )
            results["throughput"] = throughput(solo, multi, args.partitions, count, rounds)
            standalone.kill()  # not needed any more (its data is thrown away)
            results |= failover(cluster, multi, args.partitions, repeats, outage_limit_s)
        except Exception as exc:
            named = [("standalone", standalone), *((f"broker {i}", b) for i, b in cluster.brokers.items())]
            for name, broker in named:
                print(log_tail(name, broker), file=sys.stderr)
            if not isinstance(exc, RuntimeError | KafkaException):  # BenchError, ZooKeeperUnavailable, ...
                raise
            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(1) from None
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    print(table(results))


if __name__ == "__main__":
    main()
