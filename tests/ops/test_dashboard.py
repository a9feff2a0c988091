"""configs/grafana/logq.json and configs/prometheus/alerts.yml against a real Prometheus scraping a real
broker under a little load: every panel's query returns series (except the panels of metrics not exported
yet, listed), every metric the alert rules read is exported, and the rules evaluate without errors."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from logq import Consumer, Producer
from logq.protocol import messages as m
from logq.security.scram import ScramClient
from tests.broker_process import BrokerProcess, free_port
from tests.ops.prometheus_tools import ALERTS, DASHBOARD, alert_names, require_tool
from tests.wire_client import WireClient

SCRAPE_INTERVAL_S = 1
# What Grafana puts in place of the dashboard's variables: every broker, and a rate window that holds
# several scrapes.
VARIABLES = {"$__rate_interval": "10s", "$instance": ".+"}
# Panels on metrics that have no series until the event happens (title -> metric): checked to be still
# absent under this test's load, so that this list cannot go stale.
NOT_YET_EXPORTED = {
    "Throttle time": "logq_quota_throttle_seconds",  # a series per API once a client was throttled
}


def panels() -> list[dict[str, Any]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def queries(panel: dict[str, Any]) -> list[str]:
    found = []
    for target in panel["targets"]:
        expr: str = target["expr"]
        for name, value in VARIABLES.items():
            expr = expr.replace(name, value)
        found.append(expr)
    return found


class Prometheus:
    """A real Prometheus server on 127.0.0.1 with its own storage, scraping ``targets`` and evaluating
    configs/prometheus/alerts.yml every second."""

    def __init__(self, root: Path, targets: list[str]) -> None:
        self.port = free_port()
        config = root / "prometheus.yml"
        config.write_text(
            json.dumps(  # JSON is YAML
                {
                    "global": {
                        "scrape_interval": f"{SCRAPE_INTERVAL_S}s",
                        "evaluation_interval": f"{SCRAPE_INTERVAL_S}s",
                    },
                    "rule_files": [str(ALERTS)],
                    "scrape_configs": [{"job_name": "logq", "static_configs": [{"targets": targets}]}],
                }
            )
        )
        self.log = (root / "prometheus.log").open("w")
        self.proc = subprocess.Popen(
            [
                require_tool("prometheus"),
                f"--config.file={config}",
                f"--storage.tsdb.path={root / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def get(self, path: str, **params: str) -> Any:
        return json.loads(self._get(path, **params))

    def _get(self, path: str, **params: str) -> bytes:
        url = f"http://127.0.0.1:{self.port}{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=5) as answer:
            body: bytes = answer.read()
            return body

    def wait_ready(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"prometheus exited: see {self.log.name}"
            try:
                self._get("/-/ready")  # 503 (an OSError) until it is
                return
            except OSError:
                time.sleep(0.2)
        raise AssertionError("prometheus did not become ready")

    def query(self, expr: str) -> list[Any]:
        answer = self.get("/api/v1/query", query=expr)
        assert answer["status"] == "success", (expr, answer)
        result: list[Any] = answer["data"]["result"]
        return result

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.log.close()


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    """Prometheus scraping a broker that has had a little load, with the alert rules loaded."""
    root = tmp_path_factory.mktemp("scraped")
    metrics_port = free_port()
    broker = BrokerProcess(
        root / "data",
        listeners={"PLAINTEXT": "PLAINTEXT", "SASL": "SASL_PLAINTEXT"},
        broker={"metrics.listen": f"127.0.0.1:{metrics_port}", "group.initial.rebalance.delay.ms": 0},
    ).start()
    server = Prometheus(root, [f"127.0.0.1:{metrics_port}"])
    try:
        server.wait_ready()
        _load(broker)
        yield server
    finally:
        server.stop()
        broker.kill()


def _load(broker: BrokerProcess) -> None:
    """A little of everything the dashboard shows: produce, a group consuming and committing, a refused
    request (the queue exists already), and a failed login."""
    bootstrap = broker.address("PLAINTEXT")
    create = [sys.executable, "-m", "logq_cli.main", "-b", bootstrap, "queue", "create", "orders", "-p", "2"]
    subprocess.run(create, capture_output=True, timeout=60, check=True)
    # Refused (TOPIC_ALREADY_EXISTS): counts in logq_errors_total.
    assert subprocess.run(create, capture_output=True, timeout=60, check=False).returncode != 0
    with Producer(bootstrap=bootstrap, acks="all") as producer:
        for i in range(50):
            producer.send("orders", b"order %d" % i, key=b"k%d" % (i % 5))
    consumer = Consumer(
        bootstrap=bootstrap, group_id="billing", auto_offset_reset="earliest", enable_auto_commit=False
    )
    try:
        consumer.subscribe(["orders"])
        received = 0
        deadline = time.monotonic() + 20
        while received < 20 and time.monotonic() < deadline:
            received += len(consumer.poll(timeout=1.0))
        assert received >= 20
        consumer.commit()
    finally:
        consumer.close()
    with WireClient(broker.address("SASL")) as client:  # an unknown user: a failed login
        assert client.call(m.SaslHandshakeRequest(mechanism="SCRAM-SHA-256"), 1).error_code == 0
        scram = ScramClient("SCRAM-SHA-256", "nobody", "wrong")
        first = client.call(m.SaslAuthenticateRequest(auth_bytes=scram.first()), 1)
        assert first.error_code == 0  # unknown users get a made-up salt: the proof is refused
        final = client.call(m.SaslAuthenticateRequest(auth_bytes=scram.final(first.auth_bytes)), 1)
        assert final.error_code != 0


def test_every_panel_query_returns_series(prometheus: Prometheus) -> None:
    pending = {p["title"]: queries(p) for p in panels() if p["title"] not in NOT_YET_EXPORTED}
    assert len(pending) >= 20
    # Rates need two scrapes of a series inside their window: ask again until each query has answered.
    deadline = time.monotonic() + 20
    while pending and time.monotonic() < deadline:
        for title, exprs in list(pending.items()):
            if all(prometheus.query(expr) for expr in exprs):
                del pending[title]
        time.sleep(SCRAPE_INTERVAL_S)
    assert not pending, f"panels whose queries return no series: {pending}"


def test_the_panels_left_out_read_metrics_not_exported_yet(prometheus: Prometheus) -> None:
    """A metric of NOT_YET_EXPORTED that the broker exports now must come off the list (and be tested)."""
    exported = _exported(prometheus)
    titles = {p["title"]: json.dumps(p["targets"]) for p in panels()}
    for title, metric in NOT_YET_EXPORTED.items():
        assert metric in titles[title]
        assert not any(name.startswith(metric) for name in exported), f"{metric} is exported: test {title!r}"


def test_every_metric_the_alert_rules_read_is_exported(prometheus: Prometheus) -> None:
    """No alert waits on a misspelt metric (a rule on a missing series never fires)."""
    exprs = re.findall(r"expr: (.*?)\n\s+(?:for|labels):", ALERTS.read_text(), re.DOTALL)
    read = {name for expr in exprs for name in re.findall(r"\blogq_[a-z_]+", expr)}
    assert len(read) >= 10
    pending = set(NOT_YET_EXPORTED.values())
    exported = _exported(prometheus)
    missing = {name for name in read if name not in exported and not any(name.startswith(p) for p in pending)}
    assert not missing, f"the alert rules read metrics the broker does not export: {missing}"


def test_the_alert_rules_evaluate_without_errors(prometheus: Prometheus) -> None:
    deadline = time.monotonic() + 15
    while True:
        groups = prometheus.get("/api/v1/rules")["data"]["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        if all(rule["health"] != "unknown" for rule in rules) or time.monotonic() > deadline:
            break
        time.sleep(SCRAPE_INTERVAL_S)
    assert {rule["name"] for rule in rules} == set(alert_names())
    assert [(rule["name"], rule.get("lastError")) for rule in rules if rule["health"] != "ok"] == []
    # A quiet, healthy broker: nothing fires. (Pending may: LogqDiskNearlyFull's predict_linear on a few
    # seconds of samples of a shared disk can point down; its 10 minutes of "for" are there for that.)
    assert [rule["name"] for rule in rules if rule["state"] == "firing"] == []


def _exported(prometheus: Prometheus) -> set[str]:
    """The metric names Prometheus has scraped (waiting for the first scrape)."""
    deadline = time.monotonic() + 10
    while not prometheus.query('up{job="logq"} == 1') and time.monotonic() < deadline:
        time.sleep(SCRAPE_INTERVAL_S)
    return set(prometheus.get("/api/v1/label/__name__/values")["data"])


def test_the_dashboard_is_one_grafana_can_import() -> None:
    """What Grafana needs to import the file on any Prometheus: unique panel ids and refIds, the data
    source as a variable, and every panel inside the 24-column grid."""
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"]
    assert dashboard["schemaVersion"] >= 36
    assert {"datasource", "instance"} <= {v["name"] for v in dashboard["templating"]["list"]}
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in panels():
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["description"], panel["title"]
        refs = [target["refId"] for target in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        assert all('$instance"' in target["expr"] for target in panel["targets"]), panel["title"]
    titles = " ".join(p["title"] for p in dashboard["panels"] if p["type"] == "row").lower()
    for topic in ("cluster health", "throughput", "consumer groups", "latency", "event loop", "quotas"):
        assert topic in titles
