"""Shared by the overload tests: a broker process with its metrics endpoint, its RSS, its metrics."""

from __future__ import annotations

import socket
import time
import urllib.request
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from logq.protocol import messages as m
from tests.broker_process import BrokerProcess, free_port
from tests.wire_client import WireClient

MiB = 1 << 20


class MeteredBroker(BrokerProcess):
    def __init__(self, data_dir: Path, broker: dict[str, Any], **kwargs: Any) -> None:
        self.metrics_port = free_port()
        super().__init__(
            data_dir, broker={**broker, "metrics.listen": f"127.0.0.1:{self.metrics_port}"}, **kwargs
        )

    def metric(self, name: str, **labels: str) -> float:
        """One sample's value (0 when the series does not exist yet)."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as reply:
            text = reply.read().decode()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and sample.labels == labels:
                    return float(sample.value)
        return 0.0

    def rss_bytes(self) -> int:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS line")


def create_queue(bootstrap: str, name: str) -> None:
    topic = m.CreatableTopic(name=name, num_partitions=1, replication_factor=1)
    with WireClient(bootstrap) as client:
        reply = client.call(m.CreateTopicsRequest(topics=[topic], timeout_ms=5000), 4)
    assert reply.topics[0].error_code == 0


def connect(bootstrap: str, source: str = "127.0.0.1", timeout: float = 5.0) -> socket.socket:
    host, port = bootstrap.rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=timeout, source_address=(source, 0))


def closed_by_peer(sock: socket.socket, within: float) -> bool:
    """Whether the broker closed (or reset) this connection within ``within`` seconds."""
    sock.settimeout(within)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def wait_for(condition: Any, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
