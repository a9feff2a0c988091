"""Three real broker processes forming a cluster through a real ZooKeeper (one chroot per module)."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest
from prometheus_client.parser import text_string_to_metric_families

from logq.protocol import messages as m
from tests.broker_process import BrokerProcess, free_port
from tests.wire_client import WireClient

T = TypeVar("T")

SESSION_TIMEOUT_MS = 2000  # the test ZooKeeper's tickTime is 500 ms: sessions of 1-10 s
OFFSETS_PARTITIONS = 6


class Cluster:
    def __init__(
        self,
        root: Path,
        zk_connect: str,
        size: int = 3,
        settings: Mapping[str, Any] | None = None,
        log: Mapping[str, Any] | None = None,
        *,
        metrics: bool = False,  # each broker serves Prometheus metrics (metric())
    ) -> None:
        self.metrics_addresses = (
            {i: f"127.0.0.1:{free_port()}" for i in range(1, size + 1)} if metrics else {}
        )
        self.brokers = {
            i: BrokerProcess(
                root / f"broker-{i}",
                broker={
                    "broker.id": i,
                    "zookeeper.connect": zk_connect,
                    "zookeeper.session.timeout.ms": SESSION_TIMEOUT_MS,
                    "group.initial.rebalance.delay.ms": 100,
                    "offsets.topic.num.partitions": OFFSETS_PARTITIONS,
                    **({"metrics.listen": self.metrics_addresses[i]} if metrics else {}),
                    **(settings or {}),
                },
                log=log,
            )
            for i in range(1, size + 1)
        }

    def start(self) -> Cluster:
        with ThreadPoolExecutor(len(self.brokers)) as pool:
            for started in [pool.submit(b.start) for b in self.brokers.values()]:
                started.result()
        # Each broker registered before it listened, but on a loaded machine a session can expire while
        # the others start (2 s sessions here): wait until every broker sees every other one.
        wait_for(
            lambda: all(len(self.metadata(i).brokers) == len(self.brokers) for i in self.brokers),
            "every broker registered and seen by the others",
            timeout=30,
        )
        return self

    def stop(self) -> None:
        for b in self.brokers.values():
            b.kill()

    @property
    def bootstrap(self) -> str:
        return ",".join(b.bootstrap for b in self.brokers.values())

    def metadata(self, broker_id: int, queues: list[str] | None = None) -> Any:
        topics = None if queues is None else [m.MetadataRequestTopic(name=q) for q in queues]
        with WireClient(self.brokers[broker_id].bootstrap) as client:
            return client.call(m.MetadataRequest(topics=topics), 8)

    def leaders(self, broker_id: int, queue: str) -> list[int]:
        topic = self.metadata(broker_id, [queue]).topics[0]
        return [p.leader_id for p in sorted(topic.partitions, key=lambda p: p.partition_index)]

    def metric(self, broker_id: int, name: str) -> float:
        """The value of a broker's unlabelled metric ``name``, read from its /metrics endpoint."""
        url = f"http://{self.metrics_addresses[broker_id]}/metrics"
        with urllib.request.urlopen(url, timeout=5) as answer:
            text: str = answer.read().decode()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and not sample.labels:
                    return float(sample.value)
        raise AssertionError(f"broker {broker_id} does not export {name}")

    def live(self) -> list[int]:
        return [i for i, b in self.brokers.items() if b.proc is not None]


def wait_for(check: Callable[[], T | None], what: str, timeout: float = 20) -> T:
    """Poll ``check`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (OSError, ConnectionError) as exc:
            last = exc
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, zookeeper: str) -> Iterator[Cluster]:
    chroot = tmp_path_factory.mktemp("cluster").name
    c = Cluster(tmp_path_factory.mktemp("brokers"), f"{zookeeper}/logq-{chroot}")
    try:
        yield c.start()
    finally:
        c.stop()
