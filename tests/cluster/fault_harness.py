"""Harness for the cluster fault tests (docs/reliability.md, "Fault scenarios").

Pieces, all on 127.0.0.1, with bounded counts and timeouts everywhere:

- ``FaultCluster``: broker processes (``tests/broker_process.py``) on one ZooKeeper chroot, with fault
  tools (SIGKILL, SIGSTOP/SIGCONT, SIGTERM, restart, SIGUSR1 = end the broker's own ZooKeeper session),
  Metadata lookups and bounded waits. Every fault is recorded as a ``FaultEvent`` (monotonic time).
- ``AckedRecorder``: a confluent-kafka producer (acks=all, idempotent) in a background thread, sending
  unique values ``<run>-<seq>`` round-robin over the partitions at a bounded rate, recording every
  acknowledgement (partition, offset, value, time) and every failure (error code).
- ``LeaderEpochWatcher``: a kazoo client polling the partitions' state znodes, recording per partition
  each distinct (leader, leader_epoch, isr); ``assert_epochs_only_grow()`` checks invariant I8.
- ``verify()``: heal, drain every partition from its earliest offset to its high watermark, check that
  no acknowledged message is lost (I1) and that offsets are unique and increasing (I2, I4), stop every
  broker with SIGTERM and compare the replicas on disk byte for byte up to the high watermark (I2).
  Returns the ``Figures`` (acknowledged, lost, failures, longest ack gap, time to recover, ...).

Times are ``time.monotonic()`` seconds throughout, so fault events, acks and znode samples compare.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from kazoo.client import KazooClient
from kazoo.exceptions import KazooException, NoNodeError

from logq import batch as rb
from logq import codec
from logq.coordinator.zk_layout import broker_path, decode_state, state_path
from logq.error_codes import ErrorCode
from logq.protocol import messages as m
from logq.segments import LogManager
from tests.broker_process import BrokerProcess
from tests.cluster.conftest import OFFSETS_PARTITIONS, SESSION_TIMEOUT_MS, wait_for
from tests.wire_client import WireClient

# --- settings ---------------------------------------------------------------------------------------

REPLICA_LAG_TIME_MAX_MS = 3000  # a paused follower leaves the ISR quickly
METADATA_VERSION = 8
CREATE_TOPICS_VERSION = 4
WIRE_TIMEOUT = 5.0  # one request to one broker
FIGURE_LINES: list[str] = []  # every verify()'s figures, printed at the end of the run (tests/conftest.py)


def fault_broker_settings(broker_id: int, zk_connect: str, session_timeout_ms: int) -> dict[str, Any]:
    """The [broker] settings of one broker of a fault cluster."""
    return {
        "broker.id": broker_id,
        "zookeeper.connect": zk_connect,
        "zookeeper.session.timeout.ms": session_timeout_ms,
        "group.initial.rebalance.delay.ms": 100,
        "offsets.topic.num.partitions": OFFSETS_PARTITIONS,
        "replica.lag.time.max.ms": REPLICA_LAG_TIME_MAX_MS,
    }


def chroot_connect(zookeeper: str, prefix: str = "logq-fault") -> str:
    """``HOST:PORT/<prefix>-<random>``: a fresh chroot on a shared ZooKeeper."""
    return f"{zookeeper}/{prefix}-{uuid.uuid4().hex[:12]}"


# --- the cluster ------------------------------------------------------------------------------------


class SessionExpiryUnsupportedError(AssertionError):
    """The broker died on SIGUSR1: it has no "end my own ZooKeeper session" handler (yet)."""


@dataclass(frozen=True, slots=True)
class FaultEvent:
    """Something the harness did to a broker. ``kind``: kill, pause, resume, stop, start, expire."""

    time: float
    kind: str
    broker_id: int

    @property
    def is_fault(self) -> bool:
        return self.kind in FAULT_KINDS


FAULT_KINDS = frozenset({"kill", "pause", "stop", "expire"})


@dataclass(frozen=True, slots=True)
class Registration:
    """A broker's /brokers/ids/<id> znode: ``epoch`` = czxid (KIP-380), ``session`` = ephemeralOwner."""

    epoch: int
    session: int


@dataclass(frozen=True, slots=True)
class PartitionView:
    """One partition as a broker's Metadata (v8) reports it."""

    partition: int
    error_code: int
    leader: int
    leader_epoch: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]


class FaultCluster:
    """``size`` broker processes (ids 1..size) on ``zk_connect`` (with its chroot), data under ``root``.

    Use as a context manager (or call ``close()`` in a ``finally``): every process is SIGKILLed on exit,
    whatever happened."""

    def __init__(
        self,
        root: Path,
        zk_connect: str,
        size: int = 3,
        *,
        session_timeout_ms: int = SESSION_TIMEOUT_MS,
        extra_settings: Mapping[str, Any] | None = None,
    ) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.zk_connect = zk_connect
        self.session_timeout_ms = session_timeout_ms
        self.brokers: dict[int, BrokerProcess] = {
            i: BrokerProcess(
                root / f"broker-{i}",
                broker={**fault_broker_settings(i, zk_connect, session_timeout_ms), **(extra_settings or {})},
            )
            for i in range(1, size + 1)
        }
        self.paused: set[int] = set()
        self.events: list[FaultEvent] = []
        self._zk: KazooClient | None = None

    # lifecycle

    def __enter__(self) -> FaultCluster:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def start(self, timeout: float = 30) -> FaultCluster:
        """Start every broker that is not running (in parallel) and wait until they all see each other."""
        down = [i for i in self.brokers if not self.is_running(i)]
        with ThreadPoolExecutor(max(len(down), 1)) as pool:
            for started in [pool.submit(self._start, i) for i in down]:
                started.result()
        self.wait_for_brokers(timeout=timeout)
        return self

    def heal(self, timeout: float = 30) -> FaultCluster:
        """Resume every paused broker, start every stopped one, wait until all are registered."""
        for i in sorted(self.paused):
            self.resume(i)
        return self.start(timeout)

    def close(self) -> None:
        """SIGKILL every broker process (paused ones included); never raises for one that is gone."""
        for i, b in self.brokers.items():
            with contextlib.suppress(Exception):
                b.kill()
            self.paused.discard(i)
        if self._zk is not None:
            with contextlib.suppress(Exception):
                self._zk.stop()
                self._zk.close()
            self._zk = None

    # state

    @property
    def bootstrap(self) -> str:
        return ",".join(b.bootstrap for b in self.brokers.values())

    def is_running(self, broker_id: int) -> bool:
        """The process exists and has not exited (paused or not)."""
        proc = self.brokers[broker_id].proc
        return proc is not None and proc.poll() is None

    def running(self) -> list[int]:
        """Brokers that can answer: running and not paused."""
        return [i for i in self.brokers if self.is_running(i) and i not in self.paused]

    def pid(self, broker_id: int) -> int:
        proc = self.brokers[broker_id].proc
        if proc is None or proc.poll() is not None:
            raise AssertionError(f"broker {broker_id} is not running")
        return proc.pid

    # faults (each recorded in ``events``)

    def kill(self, broker_id: int) -> None:
        """SIGKILL (a crash: the page cache survives, the ZooKeeper session lingers until it expires)."""
        self._event("kill", broker_id)
        self.brokers[broker_id].kill()
        self.paused.discard(broker_id)

    def pause(self, broker_id: int) -> None:
        """SIGSTOP: a zombie that keeps its sockets; past the session timeout ZooKeeper drops it."""
        self._event("pause", broker_id)
        self.brokers[broker_id].pause()
        self.paused.add(broker_id)

    def resume(self, broker_id: int) -> None:
        """SIGCONT."""
        self.brokers[broker_id].resume()
        self.paused.discard(broker_id)
        self._event("resume", broker_id)

    def stop(self, broker_id: int, timeout: float = 30) -> int:
        """SIGTERM: controlled shutdown. Returns the exit code (a paused broker is resumed first)."""
        if broker_id in self.paused:
            self.resume(broker_id)
        self._event("stop", broker_id)
        broker = self.brokers[broker_id]
        proc = broker.proc
        try:
            return broker.stop(timeout)
        except subprocess.TimeoutExpired:
            if proc is not None:  # BrokerProcess forgot it already: kill it here, or it outlives the test
                proc.kill()
                proc.wait(10)
            raise AssertionError(f"broker {broker_id} did not exit within {timeout} s of SIGTERM") from None

    def restart(self, broker_id: int, timeout: float = 30) -> None:
        """SIGTERM the broker if it runs (a killed one is just started), start it, wait for its
        registration to be seen by the other running brokers."""
        if self.is_running(broker_id):
            self.stop(broker_id)
        self._start(broker_id)
        self.wait_for_brokers(timeout=timeout)

    def expire_session(self, broker_id: int) -> None:
        """SIGUSR1: the broker ends its own ZooKeeper session (server-side), sees LOST and re-registers.

        Raises SessionExpiryUnsupportedError if the broker dies on it (SIGUSR1's default action is to
        terminate the process, which is what happens until the broker installs a handler)."""
        pid = self.pid(broker_id)
        self._event("expire", broker_id)
        os.kill(pid, signal.SIGUSR1)
        proc = self.brokers[broker_id].proc
        assert proc is not None
        with contextlib.suppress(subprocess.TimeoutExpired):
            code = proc.wait(0.3)
            self.brokers[broker_id].proc = None
            raise SessionExpiryUnsupportedError(
                f"broker {broker_id} exited with {code} on SIGUSR1: no session-expiry handler"
            )

    def _start(self, broker_id: int) -> None:
        self.brokers[broker_id].start()
        self.paused.discard(broker_id)
        self._event("start", broker_id)

    def _event(self, kind: str, broker_id: int) -> None:
        self.events.append(FaultEvent(time.monotonic(), kind, broker_id))

    # ZooKeeper, read directly

    def zk(self) -> KazooClient:
        """A kazoo client on the cluster's chroot (started on first use, closed by ``close()``)."""
        if self._zk is None:
            client = KazooClient(hosts=self.zk_connect, timeout=5.0, connection_retry={"max_tries": 3})
            client.start(timeout=10)
            self._zk = client
        return self._zk

    def registration(self, broker_id: int) -> Registration | None:
        """The broker's /brokers/ids/<id> znode: its broker epoch (czxid) and session (ephemeralOwner)."""
        try:
            _, stat = self.zk().get(broker_path(broker_id))
        except NoNodeError:
            return None
        return Registration(stat.czxid, stat.ephemeralOwner)

    def wait_reregistered(
        self, broker_id: int, before: Registration | None, timeout: float = 20
    ) -> Registration:
        """A registration of ``broker_id`` from another session than ``before``; returns it."""

        def check() -> Registration | None:
            now = self.registration(broker_id)
            return now if now is not None and now != before else None

        return wait_for(check, f"broker {broker_id} registered by a new session (was {before})", timeout)

    # metadata

    def metadata(self, queues: Sequence[str] | None = None, broker_id: int | None = None) -> Any:
        """A Metadata v8 response from ``broker_id``, or from the first running broker that answers."""
        topics = None if queues is None else [m.MetadataRequestTopic(name=q) for q in queues]
        request = m.MetadataRequest(topics=topics, allow_auto_topic_creation=False)
        candidates = [broker_id] if broker_id is not None else self.running()
        last: Exception | None = None
        for i in candidates:
            try:
                with WireClient(self.brokers[i].bootstrap, timeout=WIRE_TIMEOUT) as client:
                    return client.call(request, METADATA_VERSION)
            except (OSError, ConnectionError) as exc:
                last = exc
        raise ConnectionError(f"no broker of {candidates} answered Metadata: {last!r}")

    def partitions(self, queue: str, broker_id: int | None = None) -> list[PartitionView]:
        """The partitions of ``queue`` by index ([] if the broker does not know the queue)."""
        topic = self.metadata([queue], broker_id).topics[0]
        if topic.error_code != ErrorCode.NONE:
            return []
        return [
            PartitionView(
                p.partition_index,
                p.error_code,
                p.leader_id,
                p.leader_epoch,
                tuple(p.replica_nodes),
                tuple(p.isr_nodes),
            )
            for p in sorted(topic.partitions, key=lambda p: p.partition_index)
        ]

    def leader_of(self, queue: str, partition: int) -> int:
        """The leader of one partition as a running broker reports it (-1: none, or unknown queue)."""
        views = self.partitions(queue)
        return views[partition].leader if partition < len(views) else -1

    def registered(self, broker_id: int | None = None) -> set[int]:
        """Broker ids in a Metadata response (the live registrations a broker knows of)."""
        return {b.node_id for b in self.metadata(None, broker_id).brokers}

    # bounded waits (each raises AssertionError on timeout, naming what it waited for)

    def wait_for_brokers(self, timeout: float = 30) -> None:
        """Every running broker lists every running broker (a killed or paused one may still be listed
        until its session expires: see ``wait_unregistered``)."""

        def check() -> bool:
            expected = set(self.running())
            return all(expected <= self.registered(i) for i in expected)

        wait_for(check, f"brokers {self.running()} registered everywhere", timeout)

    def wait_unregistered(self, broker_id: int, timeout: float = 20) -> None:
        """No running broker lists ``broker_id`` any more (its session ended)."""
        wait_for(
            lambda: all(broker_id not in self.registered(i) for i in self.running()),
            f"broker {broker_id} gone from the cluster",
            timeout,
        )

    def agreed_partitions(self, queue: str) -> list[PartitionView] | None:
        """The partitions of ``queue`` if every running broker reports the same leaders, each one running."""
        running = self.running()
        seen = [self.partitions(queue, i) for i in running]
        if not seen or not seen[0]:
            return None
        leaders = [[v.leader for v in views] for views in seen]
        if any(ls != leaders[0] for ls in leaders) or any(leader not in running for leader in leaders[0]):
            return None
        return seen[0]

    def wait_for_leaders(self, queue: str, timeout: float = 30) -> list[int]:
        """Every partition has a running leader that every running broker agrees on; returns them."""
        views = wait_for(lambda: self.agreed_partitions(queue), f"agreed leaders of {queue}", timeout)
        return [v.leader for v in views]

    def wait_for_full_isr(self, queue: str, timeout: float = 30) -> list[PartitionView]:
        """Every partition has a running leader and all its replicas in the ISR."""

        def check() -> list[PartitionView] | None:
            views = self.agreed_partitions(queue)
            if views and all(set(v.isr) == set(v.replicas) for v in views):
                return views
            return None

        return wait_for(check, f"every replica of {queue} in sync", timeout)

    def wait_for_leader_change(self, queue: str, partition: int, old: int, timeout: float = 30) -> int:
        """A running leader other than ``old`` for ``partition``; returns it."""

        def check() -> int | None:
            leader = self.leader_of(queue, partition)
            return leader if leader not in (old, -1) and leader in self.running() else None

        return wait_for(check, f"a new leader for {queue}-{partition} (was {old})", timeout)

    # queues

    def create_queue(
        self, name: str, partitions: int, rf: int = 1, min_isr: int = 1, *, timeout: float = 30
    ) -> list[int]:
        """CreateTopics v4 through a running broker with ``min.insync.replicas`` = ``min_isr``, then wait
        for agreed leaders; returns them. Raises AssertionError with the broker's message on an error."""
        topic = m.CreatableTopic(
            name=name,
            num_partitions=partitions,
            replication_factor=rf,
            configs=[m.CreatableTopicConfig(name="min.insync.replicas", value=str(min_isr))],
        )
        request = m.CreateTopicsRequest(topics=[topic], timeout_ms=int(timeout * 1000))
        with WireClient(self.brokers[self.running()[0]].bootstrap, timeout=timeout + 10) as client:
            result = client.call(request, CREATE_TOPICS_VERSION).topics[0]
        if result.error_code != ErrorCode.NONE:
            raise AssertionError(
                f"creating {name} (partitions={partitions}, rf={rf}, min_isr={min_isr}) failed: "
                f"{ErrorCode(result.error_code).name}: {result.error_message}"
            )
        return self.wait_for_leaders(name, timeout)

    def logs(self, broker_id: int, lines: int = 40) -> str:
        """The last ``lines`` lines of a broker's output (for failure messages)."""
        return "".join(self.brokers[broker_id].output[-lines:])


# --- the producer -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ack:
    partition: int
    offset: int
    value: bytes
    time: float


@dataclass(frozen=True, slots=True)
class Failure:
    partition: int
    value: bytes
    code: int  # librdkafka's code: a Kafka error code, or negative for local errors (-192 = timed out)
    name: str
    time: float


class AckedRecorder:
    """Sends ``count`` unique values (``<run>-<seq>``) to ``queue`` at ``rate`` per second, round-robin
    over ``partitions`` (explicit partitions: one that is unavailable keeps its messages queued until
    ``message_timeout_ms``), from a background thread; records every delivery report.

    ``start()``; faults; ``wait_done()`` (every message has a report) and/or ``stop()`` (stop sending,
    flush with a bound). ``acks``/``failures`` are safe to read at any time."""

    def __init__(
        self,
        bootstrap: str,
        queue: str,
        partitions: int,
        *,
        count: int = 2000,
        rate: float = 500.0,
        run_id: str | None = None,
        message_timeout_ms: int = 30_000,
        config: Mapping[str, Any] | None = None,
    ) -> None:
        if count < 1 or rate <= 0 or partitions < 1:
            raise ValueError("count, rate and partitions must be positive")
        self.queue = queue
        self.partitions = partitions
        self.count = count
        self.rate = rate
        self.run_id = run_id or uuid.uuid4().hex[:8]
        self._config: dict[str, Any] = {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "compression.type": "none",
            "linger.ms": 5,
            "message.timeout.ms": message_timeout_ms,
            "request.timeout.ms": 5000,
            "retry.backoff.ms": 100,
            "retry.backoff.max.ms": 500,
            "reconnect.backoff.ms": 100,
            "reconnect.backoff.max.ms": 1000,
            "socket.connection.setup.timeout.ms": 3000,
            "error_cb": self._on_client_error,
            **(config or {}),
        }
        self._lock = threading.Lock()
        self._acks: list[Ack] = []
        self._failures: list[Failure] = []
        self.client_errors: list[str] = []  # connection-level errors (error_cb), for diagnostics
        self.fatal_error: str | None = None  # e.g. an idempotence failure: the producer stops working
        self.sent = 0
        self.unresolved = 0  # still queued when stop() gave up flushing: indeterminate
        self.started_at = 0.0
        self._stop = threading.Event()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._flush_timeout = 30.0

    def value(self, seq: int) -> bytes:
        return f"{self.run_id}-{seq}".encode()

    # lifecycle

    def __enter__(self) -> AckedRecorder:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop(raise_errors=kind is None)

    def start(self) -> AckedRecorder:
        assert self._thread is None, "start() twice"
        self.started_at = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=f"recorder-{self.run_id}", daemon=True)
        self._thread.start()
        return self

    def wait_done(self, timeout: float = 60) -> bool:
        """Wait until all ``count`` messages are sent and each has a delivery report (ack or failure)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                reported = len(self._acks) + len(self._failures)
            if reported >= self.count or self._done.is_set():
                return reported >= self.count
            time.sleep(0.05)
        return False

    def wait_for_acks(self, n: int, timeout: float = 30) -> None:
        """Wait until at least ``n`` messages were acknowledged."""
        wait_for(lambda: len(self.acks) >= n, f"{n} acks from recorder {self.run_id}", timeout)

    def stop(self, flush_timeout: float = 30, *, raise_errors: bool = True) -> None:
        """Stop sending, flush what is queued (at most ``flush_timeout``), end the thread."""
        self._flush_timeout = flush_timeout
        self._stop.set()
        if self._thread is not None:
            self._thread.join(flush_timeout + 10)
            if self._thread.is_alive():
                raise AssertionError(f"recorder {self.run_id} did not stop")
        if raise_errors and self._error is not None:
            raise AssertionError(f"recorder {self.run_id} failed: {self._error!r}") from self._error

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # what was recorded

    @property
    def acks(self) -> list[Ack]:
        with self._lock:
            return list(self._acks)

    @property
    def failures(self) -> list[Failure]:
        with self._lock:
            return list(self._failures)

    def longest_ack_gap(self, partition: int | None = None) -> float:
        """The longest time between two consecutive acks (of one partition, or of any): the unavailability
        window. The start-up (connecting, producer id) before the first ack is not counted."""
        times = sorted(a.time for a in self.acks if partition is None or a.partition == partition)
        return max((b - a for a, b in itertools.pairwise(times)), default=0.0)

    def time_to_next_ack(self, after: float, partitions: Sequence[int] | None = None) -> float | None:
        """Seconds from ``after`` until each of ``partitions`` had an ack (default: until any partition
        had one); None if one never did."""
        firsts: dict[int, float] = {}
        for a in self.acks:  # in ack order, so the first seen per partition is the earliest
            if a.time >= after and (partitions is None or a.partition in partitions):
                firsts.setdefault(a.partition, a.time)
        if partitions is None:
            return min(firsts.values()) - after if firsts else None
        if any(p not in firsts for p in partitions):
            return None
        return max((firsts[p] for p in partitions), default=after) - after

    # the thread

    def _run(self) -> None:
        try:
            producer = Producer(self._config)
            try:
                self._produce_all(producer)
                while not self._stop.is_set():
                    producer.poll(0.05)
            finally:
                self.unresolved = producer.flush(self._flush_timeout)
        except BaseException as exc:  # kept for stop(): an exception in a thread fails the test run
            self._error = exc
        finally:
            self._done.set()

    def _produce_all(self, producer: Producer) -> None:
        interval = 1.0 / self.rate
        for seq in range(self.count):
            due = self.started_at + seq * interval
            while (now := time.monotonic()) < due:
                producer.poll(min(due - now, 0.05))
                if self._stop.is_set():
                    return
            if self._stop.is_set():
                return
            partition = seq % self.partitions
            while True:
                try:
                    producer.produce(
                        self.queue, value=self.value(seq), partition=partition, on_delivery=self._on
                    )
                    break
                except BufferError:
                    producer.poll(0.1)
            self.sent += 1
            producer.poll(0)

    def _on(self, err: KafkaError | None, msg: Message) -> None:
        now = time.monotonic()
        value = msg.value() or b""
        reported = msg.partition()
        partition = -1 if reported is None else reported
        with self._lock:
            if err is None:
                offset = msg.offset()
                assert offset is not None
                self._acks.append(Ack(partition, offset, value, now))
            else:
                self._failures.append(Failure(partition, value, err.code(), err.name(), now))

    def _on_client_error(self, err: KafkaError) -> None:
        with self._lock:
            if err.fatal() and self.fatal_error is None:
                self.fatal_error = f"{err.name()}: {err.str()}"
            if len(self.client_errors) < 1000:
                self.client_errors.append(f"{time.monotonic():.3f} {err.name()}: {err.str()}")


# --- the ZooKeeper watcher --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StateSample:
    """A partition state znode as first seen with this content."""

    time: float
    leader: int
    leader_epoch: int
    isr: tuple[int, ...]
    version: int  # the znode's version

    @property
    def content(self) -> tuple[int, int, tuple[int, ...]]:
        return self.leader, self.leader_epoch, self.isr


class LeaderEpochWatcher:
    """Polls ``/brokers/topics/<queue>/partitions/<p>/state`` every ``interval`` seconds (the chroot is
    in ``zk_connect``) and records each distinct (leader, leader_epoch, isr) per partition.

    Polling can miss a state that lasted less than ``interval`` (``missed_states()`` counts them from the
    gaps in the znode versions); it never reorders them."""

    def __init__(self, zk_connect: str, queue: str, partitions: int, *, interval: float = 0.02) -> None:
        self.zk_connect = zk_connect
        self.queue = queue
        self.partitions = partitions
        self.interval = interval
        self._lock = threading.Lock()
        self._history: dict[int, list[StateSample]] = {p: [] for p in range(partitions)}
        self.read_errors = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client: KazooClient | None = None
        self._error: BaseException | None = None

    def __enter__(self) -> LeaderEpochWatcher:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self, timeout: float = 10) -> LeaderEpochWatcher:
        client = KazooClient(hosts=self.zk_connect, timeout=5.0, connection_retry={"max_tries": 3})
        client.start(timeout=timeout)
        self._client = client
        self._poll_once()
        self._thread = threading.Thread(target=self._run, name=f"epochs-{self.queue}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.stop()
                self._client.close()
            self._client = None
        error, self._error = self._error, None  # reported once
        if error is not None:
            raise AssertionError(f"epoch watcher failed: {error!r}") from error

    @property
    def history(self) -> dict[int, list[StateSample]]:
        with self._lock:
            return {p: list(h) for p, h in self._history.items()}

    def missed_states(self) -> int:
        """Writes of the state znodes that polling did not see (every write bumps the znode version)."""
        return sum(
            max(b.version - a.version - 1, 0)
            for samples in self.history.values()
            for a, b in itertools.pairwise(samples)
        )

    def state_at(self, partition: int, when: float) -> StateSample | None:
        """The state of ``partition`` as last seen at or before ``when`` (None if not seen yet)."""
        last = None
        for s in self.history[partition]:
            if s.time > when:
                break
            last = s
        return last

    def leader_at(self, partition: int, when: float) -> int:
        """The leader of ``partition`` as last seen at or before ``when`` (-1 if not seen yet)."""
        state = self.state_at(partition, when)
        return -1 if state is None else state.leader

    def next_leader_after(self, partition: int, when: float) -> StateSample | None:
        """The first state seen after ``when`` with a leader in a newer epoch than at ``when`` (None if
        the epoch never moved on)."""
        before = self.state_at(partition, when)
        epoch = -1 if before is None else before.leader_epoch
        return next(
            (
                s
                for s in self.history[partition]
                if s.time > when and s.leader != -1 and s.leader_epoch > epoch
            ),
            None,
        )

    def assert_epochs_only_grow(self) -> None:
        """I8 as seen from ZooKeeper (see ``epoch_problems``); every partition must have been seen."""
        history = self.history
        problems = epoch_problems(history)
        if problems:
            raise AssertionError("leader epochs: " + "; ".join(problems) + f"\nhistory: {history}")

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                self._poll_once()
        except BaseException as exc:
            self._error = exc

    def _poll_once(self) -> None:
        client = self._client
        assert client is not None
        for p in range(self.partitions):
            path = state_path(self.queue, p)
            try:
                data, stat = client.get(path)
            except NoNodeError:
                continue
            except KazooException:
                self.read_errors += 1
                continue
            record = decode_state(path, data, stat.version, stat.mzxid)
            s = record.leader_and_isr
            sample = StateSample(time.monotonic(), s.leader, s.leader_epoch, s.isr, stat.version)
            with self._lock:
                history = self._history[p]
                if not history or history[-1].content != sample.content:
                    history.append(sample)


def epoch_problems(history: Mapping[int, Sequence[StateSample]]) -> list[str]:
    """Per partition: the leader epoch never goes down, a new leader comes with a higher epoch, and one
    epoch never has two leaders (-1, no leader, counts as one); a partition never seen is a problem too."""
    problems: list[str] = []
    for p, samples in history.items():
        if not samples:
            problems.append(f"partition {p}: state znode never seen")
            continue
        leaders_of: dict[int, set[int]] = {}
        for s in samples:
            leaders_of.setdefault(s.leader_epoch, set()).add(s.leader)
        problems += [
            f"partition {p}: epoch went back {a} -> {b}"
            for a, b in itertools.pairwise(samples)
            if b.leader_epoch < a.leader_epoch
        ]
        problems += [
            f"partition {p}: epoch {epoch} had leaders {sorted(leaders)}"
            for epoch, leaders in leaders_of.items()
            if len(leaders) > 1
        ]
    return problems


# --- the verdict ------------------------------------------------------------------------------------


@dataclass
class Figures:
    """What a run showed. ``lost``, ``inconsistent``, ``duplicates`` and ``replica_mismatches`` must be 0."""

    acknowledged: int = 0
    failures: int = 0
    unresolved: int = 0  # still queued when the recorder stopped: indeterminate
    read: int = 0  # records drained below the high watermarks
    lost: int = 0  # acked, absent at its offset after the drain
    inconsistent: int = 0  # acked, but its offset holds another value
    duplicates: int = 0  # a value at more than one offset
    skipped_offsets: int = 0  # holes between the earliest offset and the high watermark
    failed_but_present: int = 0  # reported failed, yet read (fine for timeouts; bad for definite errors)
    longest_ack_gap: float = 0.0  # any partition: the queue's unavailability window
    longest_partition_gap: float = 0.0  # one partition's longest wait between two acks
    time_to_recover: float | None = None  # the slowest recovery over the faults (None: no fault)
    recoveries: list[tuple[FaultEvent, float | None]] = field(default_factory=list)
    producer_fatal: str | None = None  # the recorder's producer hit a fatal error (e.g. idempotence)
    states_missed: int = 0  # partition-state writes the watcher's polling did not see (I8 is weaker)
    replica_bytes: dict[int, int] = field(default_factory=dict)  # per partition: bytes compared
    replica_mismatches: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # other violations (order, exits, epochs)
    details: list[str] = field(default_factory=list)  # the first few lost/inconsistent/duplicate records

    def detail(self, text: str, limit: int = 30) -> None:
        if len(self.details) < limit:
            self.details.append(text)

    def violated(self, *, allow_duplicates: bool = False) -> bool:
        bad = self.lost or self.inconsistent or self.replica_mismatches or self.problems
        return bool(bad or (self.duplicates and not allow_duplicates))

    def line(self) -> str:
        recover = "n/a" if self.time_to_recover is None else f"{self.time_to_recover:.2f}s"
        return (
            f"acknowledged={self.acknowledged} lost={self.lost} failures={self.failures} "
            f"unresolved={self.unresolved} read={self.read} inconsistent={self.inconsistent} "
            f"duplicates={self.duplicates} skipped_offsets={self.skipped_offsets} "
            f"failed_but_present={self.failed_but_present} longest_ack_gap={self.longest_ack_gap:.2f}s "
            f"longest_partition_gap={self.longest_partition_gap:.2f}s "
            f"time_to_recover={recover} replicas_compared={sum(self.replica_bytes.values())}B "
            f"states_missed={self.states_missed}"
            + ("" if self.producer_fatal is None else f" producer_fatal={self.producer_fatal!r}")
        )


def verify(
    cluster: FaultCluster,
    queue: str,
    recorder: AckedRecorder,
    watcher: LeaderEpochWatcher | None = None,
    *,
    heal_timeout: float = 30,
    drain_timeout: float = 30,
    allow_duplicates: bool = False,
) -> Figures:
    """The end of a run: stop the recorder, heal the cluster, wait for leaders and full ISRs, read the
    high watermarks, drain every partition and check I1/I2/I4 (and I3 unless ``allow_duplicates``), stop
    every broker with SIGTERM (exit code 0 expected), compare the replicas on disk up to the high
    watermarks, check I8 with the watcher. Prints and returns the figures; raises AssertionError (with
    them) on any violation. Leaves every broker stopped: ``cluster.start()`` brings them back."""
    if recorder.running:
        recorder.stop()
    figures = Figures(
        acknowledged=len(recorder.acks),
        failures=len(recorder.failures),
        unresolved=recorder.unresolved,
        producer_fatal=recorder.fatal_error,
    )
    try:
        cluster.heal(heal_timeout)
        views = cluster.wait_for_full_isr(queue, heal_timeout)
        _ack_figures(figures, cluster, recorder, watcher)

        marks = watermarks(cluster.bootstrap, queue, len(views))
        drained = drain(cluster.bootstrap, queue, marks, drain_timeout)
        check_drain(figures, recorder.acks, recorder.failures, marks, drained)

        bad_exits = {i: code for i, code in stop_all(cluster).items() if code != 0}
        if bad_exits:
            figures.problems.append(f"brokers exited non-zero on SIGTERM: {bad_exits}")
        replicas = {v.partition: v.replicas for v in views}
        compare_replicas(figures, cluster, queue, replicas=replicas, marks=marks, drained=drained)
    finally:
        if watcher is not None:
            try:
                watcher.stop()
            except AssertionError as exc:
                figures.problems.append(str(exc))
    if watcher is not None:
        figures.problems += [f"leader epochs: {text}" for text in epoch_problems(watcher.history)]
        figures.states_missed = watcher.missed_states()

    FIGURE_LINES.append(f"{queue}: {figures.line()}")
    print(f"[fault figures] {queue}: {figures.line()}")
    if figures.violated(allow_duplicates=allow_duplicates):
        logs = [f"--- broker {i} ---\n{cluster.logs(i)}" for i in cluster.brokers]
        text = [
            f"{queue}: {figures.line()}",
            *figures.problems,
            *figures.replica_mismatches,
            *figures.details,
        ]
        raise AssertionError("\n".join(text + logs))
    return figures


def _ack_figures(
    figures: Figures, cluster: FaultCluster, recorder: AckedRecorder, watcher: LeaderEpochWatcher | None
) -> None:
    figures.longest_ack_gap = recorder.longest_ack_gap()
    figures.longest_partition_gap = max(
        (recorder.longest_ack_gap(p) for p in range(recorder.partitions)), default=0.0
    )
    for event in cluster.events:
        if event.is_fault and event.time >= recorder.started_at:
            figures.recoveries.append((event, recovery_time(event, recorder, watcher)))
    times = [t for _, t in figures.recoveries]
    if times:
        figures.time_to_recover = None if None in times else max(t for t in times if t is not None)


def recovery_time(
    event: FaultEvent, recorder: AckedRecorder, watcher: LeaderEpochWatcher | None
) -> float | None:
    """Seconds from a fault to the first ack, on every partition the faulted broker led then, written in a
    newer leader epoch (if the epoch moved on at all: a short pause may not change it). Without a watcher:
    to the next ack on any partition. None if a partition never had such an ack."""
    if watcher is None:
        return recorder.time_to_next_ack(event.time)
    slowest = 0.0
    for p in range(recorder.partitions):
        if watcher.leader_at(p, event.time) != event.broker_id:
            continue
        new_leader = watcher.next_leader_after(p, event.time)
        since = event.time if new_leader is None else new_leader.time
        wait = recorder.time_to_next_ack(since, [p])
        if wait is None:
            return None
        slowest = max(slowest, since - event.time + wait)
    return slowest


def watermarks(
    bootstrap: str, queue: str, partitions: int, timeout: float = 10
) -> dict[int, tuple[int, int]]:
    """(earliest offset, high watermark) of each partition, asked from its leader (retried until
    ``timeout``: a leader may just have moved)."""
    consumer = Consumer(_consumer_config(bootstrap))
    deadline = time.monotonic() + timeout
    marks: dict[int, tuple[int, int]] = {}
    error: KafkaException | None = None
    try:
        for p in range(partitions):
            while p not in marks:
                try:
                    got = consumer.get_watermark_offsets(TopicPartition(queue, p), timeout=2, cached=False)
                except KafkaException as exc:
                    got, error = None, exc
                if got is not None:
                    marks[p] = (got[0], got[1])
                elif time.monotonic() > deadline:
                    raise AssertionError(f"no watermarks for {queue}-{p} in {timeout} s ({error!r})")
                else:
                    time.sleep(0.1)
    finally:
        consumer.close()
    return marks


def drain(
    bootstrap: str, queue: str, marks: Mapping[int, tuple[int, int]], timeout: float = 30
) -> dict[int, list[tuple[int, bytes]]]:
    """Every record of every partition from its earliest offset up to its high watermark, as
    (offset, value) in the order the consumer returned them (no group, no commits)."""
    got: dict[int, list[tuple[int, bytes]]] = {p: [] for p in marks}
    pending = {p for p, (low, high) in marks.items() if high > low}
    if not pending:
        return got
    consumer = Consumer(_consumer_config(bootstrap))
    try:
        consumer.assign([TopicPartition(queue, p, OFFSET_BEGINNING) for p in sorted(pending)])
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            for msg in consumer.consume(500, 0.5):
                error = msg.error()
                p = msg.partition()
                offset = msg.offset()
                if error is not None or p is None or offset is None or p not in pending:
                    continue
                if offset < marks[p][1]:
                    got[p].append((offset, msg.value() or b""))
                if offset + 1 >= marks[p][1]:
                    pending.discard(p)
    finally:
        consumer.close()
    return got


def _consumer_config(bootstrap: str) -> dict[str, Any]:
    return {
        "bootstrap.servers": bootstrap,
        "group.id": f"fault-verify-{uuid.uuid4().hex[:8]}",  # never joined: assign() only, no commits
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "error",
        "socket.connection.setup.timeout.ms": 3000,
    }


def check_drain(
    figures: Figures,
    acks: Sequence[Ack],
    failures: Sequence[Failure],
    marks: Mapping[int, tuple[int, int]],
    drained: Mapping[int, list[tuple[int, bytes]]],
) -> None:
    """Add to ``figures`` what the drained records say about the acks: lost, inconsistent, duplicates,
    offsets out of order or read twice, holes, failed sends that were read anyway."""
    at: dict[tuple[int, int], bytes] = {}
    offsets_of: dict[bytes, list[tuple[int, int]]] = {}
    for p, records in drained.items():
        figures.read += len(records)
        previous = -1
        for offset, value in records:
            if offset <= previous:
                figures.problems.append(f"partition {p}: offset {offset} read after {previous}")
            if (p, offset) in at:
                figures.problems.append(f"partition {p}: offset {offset} read twice")
            previous = offset
            at[(p, offset)] = value
            offsets_of.setdefault(value, []).append((p, offset))
        low, high = marks[p]
        figures.skipped_offsets += len(set(range(low, high)) - {o for o, _ in records})
    for a in acks:
        stored = at.get((a.partition, a.offset))
        if stored is None:
            figures.lost += 1
            figures.detail(f"lost: {a} (high watermark {marks.get(a.partition)})")
        elif stored != a.value:
            figures.inconsistent += 1
            figures.detail(f"inconsistent: {a} but the offset holds {stored!r}")
    for value, places in offsets_of.items():
        if len(places) > 1:
            figures.duplicates += 1
            figures.detail(f"duplicate: {value!r} at {places}")
    failed = {f.value for f in failures}
    figures.failed_but_present = sum(1 for value in failed if value in offsets_of)


def stop_all(cluster: FaultCluster, timeout: float = 30) -> dict[int, int]:
    """SIGTERM every running broker, one after the other; returns their exit codes."""
    return {i: cluster.stop(i, timeout) for i in cluster.brokers if cluster.is_running(i)}


# --- replicas on disk -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReplicaCopy:
    """One replica of a partition on disk: its offsets, and its stored batches below the cut."""

    broker_id: int
    log_start: int
    log_end: int
    batches: bytes


def read_replica(
    data_dir: Path, queue: str, partition: int, *, upto: int, scratch: Path, broker_id: int = -1
) -> ReplicaCopy | None:
    """The stored batches of one replica below offset ``upto``, from its log start (None if the broker
    has no such partition). The broker must be stopped. Its data directory is copied to ``scratch``
    first, since opening one with a LogManager writes to it (shutdown marker, checkpoint)."""
    copy = scratch / f"{data_dir.name}-{queue}-{partition}"
    shutil.copytree(data_dir, copy)
    manager = LogManager(copy)
    try:
        log = manager.get(queue, partition)
        if log is None:
            return None
        out = bytearray()
        offset = log.log_start_offset
        while offset < min(upto, log.log_end_offset):
            chunk = bytes(log.read(offset, 1 << 20, upto=upto))
            if not chunk:
                break
            out += chunk
            offset = _next_offset(chunk)
        return ReplicaCopy(broker_id, log.log_start_offset, log.log_end_offset, bytes(out))
    finally:
        manager.close()
        shutil.rmtree(copy, ignore_errors=True)


def _next_offset(batches: bytes) -> int:
    """The offset after the last of ``batches`` (whole stored batches)."""
    pos, last = 0, -1
    for header in iter_batches(batches):
        last = header.last_offset
        pos += header.size
    if pos != len(batches):
        raise AssertionError(f"read {len(batches)} bytes that are not whole batches")
    return last + 1


def iter_batches(batches: bytes) -> Iterator[rb.BatchHeader]:
    """The headers of stored batches laid end to end (each one's CRC checked)."""
    pos = 0
    while pos < len(batches):
        _, size = rb.read_prefix(batches, pos)
        yield rb.validate(batches[pos : pos + size])
        pos += size


def decode_values(batches: bytes) -> dict[int, bytes]:
    """offset -> value of every record in stored batches."""
    out: dict[int, bytes] = {}
    pos = 0
    for header in iter_batches(batches):
        records = codec.decompress(header.codec, batches[pos + rb.HEADER_SIZE : pos + header.size])
        out.update((r.offset, r.value or b"") for r in rb.decode_records(records, header))
        pos += header.size
    return out


def compare_replicas(
    figures: Figures,
    cluster: FaultCluster,
    queue: str,
    *,
    replicas: Mapping[int, Sequence[int]],
    marks: Mapping[int, tuple[int, int]],
    drained: Mapping[int, list[tuple[int, bytes]]],
) -> None:
    """Every replica of each partition reaches the high watermark and holds the same bytes below it, and
    those decode to what the drain read."""
    with tempfile.TemporaryDirectory(dir=cluster.root, prefix="replicas-") as tmp:
        for p, brokers in sorted(replicas.items()):
            low, hw = marks[p]
            present: list[ReplicaCopy] = []
            problems: list[str] = []
            for b in brokers:
                data_dir = cluster.brokers[b].data_dir
                try:
                    copy = read_replica(data_dir, queue, p, upto=hw, scratch=Path(tmp), broker_id=b)
                except rb.BatchError as exc:  # a clean shutdown skips the load-time scan: reads may see it
                    problems.append(f"replica {b} holds a corrupt batch below {hw}: {exc}")
                    continue
                if copy is None:
                    problems.append(f"no log on replica {b}")
                else:
                    present.append(copy)
            problems += [
                f"replica {c.broker_id} ends at {c.log_end} < {hw}" for c in present if c.log_end < hw
            ]
            if present:
                first = present[0]
                figures.replica_bytes[p] = len(first.batches)
                problems += [
                    f"replica {c.broker_id} differs from replica {first.broker_id} below offset {hw} "
                    f"({_first_difference(first.batches, c.batches)})"
                    for c in present[1:]
                    if c.batches != first.batches
                ]
                on_disk = {o: v for o, v in decode_values(first.batches).items() if o >= low}
                if on_disk != dict(drained[p]):
                    problems.append(
                        f"the log of replica {first.broker_id} ({len(on_disk)} records) is not what was "
                        f"read ({len(drained[p])} records)"
                    )
            figures.replica_mismatches += [f"partition {p}: {text}" for text in problems]


def _first_difference(a: bytes, b: bytes) -> str:
    i = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    return f"{len(a)} vs {len(b)} bytes, first difference at byte {i}"
