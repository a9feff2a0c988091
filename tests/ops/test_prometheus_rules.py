"""configs/prometheus/: the scrape configs and alert rules pass promtool's checks, and the rules' unit
tests (configs/prometheus/alerts_test.yml: series that fire each alert and series that must not) pass."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

import pytest

from tests.ops.prometheus_tools import (
    ALERTS,
    ALERTS_TEST,
    PROMETHEUS_CONFIGS,
    ROOT,
    alert_names,
    require_tool,
)

# Alerts on metrics the broker does not export yet: their rules are checked, but not unit-tested.
NOT_YET_EXPORTED: dict[str, str] = {}


def _promtool(*args: str) -> str:
    result = subprocess.run(
        [require_tool("promtool"), *args], capture_output=True, text=True, timeout=60, cwd=ROOT, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


@pytest.mark.parametrize("config", ["prometheus-standalone.yml", "prometheus-cluster.yml"])
def test_scrape_configs_are_valid(config: str) -> None:
    out = _promtool("check", "config", str(PROMETHEUS_CONFIGS / config))
    assert "alerts.yml" in out  # the rule file is found and checked with the config


def test_rules_are_valid() -> None:
    out = _promtool("check", "rules", str(ALERTS))
    assert f"SUCCESS: {len(alert_names())} rules found" in out


def test_rules_unit_tests_pass() -> None:
    assert "SUCCESS" in _promtool("test", "rules", str(ALERTS_TEST))


def test_every_alert_is_unit_tested_and_explained() -> None:
    """Each alert has a firing case in alerts_test.yml and says what to do, in its annotations and in
    docs/operations.md."""
    tested = set(re.findall(r"alertname: (\w+)", ALERTS_TEST.read_text()))
    fired = set(re.findall(r"alertname: (\w+)\n\s*exp_alerts:\n\s*- exp_labels", ALERTS_TEST.read_text()))
    operations = (ROOT / "docs" / "operations.md").read_text()
    rules = ALERTS.read_text()
    for name in alert_names():
        assert name in operations, f"docs/operations.md does not explain {name}"
        block = rules.split(f"- alert: {name}\n", 1)[1].split("- alert:", 1)[0]
        assert "summary:" in block, name
        assert "description:" in block, name
        if name in NOT_YET_EXPORTED:
            assert name not in tested, f"{name} is tested: take it out of NOT_YET_EXPORTED"
            continue
        assert name in fired, f"alerts_test.yml has no case where {name} fires"
    assert tested <= set(alert_names())


def test_the_scrape_configs_name_the_shipped_brokers_metrics_addresses() -> None:
    """prometheus-cluster.yml scrapes the metrics.listen of configs/cluster/broker-{1,2,3}.toml, and
    prometheus-standalone.yml the address configs/standalone.toml and the README suggest."""
    cluster_targets = _targets(PROMETHEUS_CONFIGS / "prometheus-cluster.yml")
    brokers = sorted((ROOT / "configs" / "cluster").glob("broker-*.toml"))
    assert len(brokers) == 3
    listens = [tomllib.loads(path.read_text())["broker"]["metrics.listen"] for path in brokers]
    assert cluster_targets == listens
    standalone_targets = _targets(PROMETHEUS_CONFIGS / "prometheus-standalone.yml")
    assert standalone_targets == ["127.0.0.1:9100"]
    assert '# "metrics.listen" = "127.0.0.1:9100"' in (ROOT / "configs" / "standalone.toml").read_text()


def _targets(config: Path) -> list[str]:
    return re.findall(r'targets: \["([^"]+)"\]', config.read_text())
