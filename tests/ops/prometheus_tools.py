"""Debian's ``prometheus`` package for the ops tests: ``promtool`` (checks and unit tests of the rules)
and the ``prometheus`` server (the dashboard's queries against a real scrape). Missing locally, the tests
skip with the reason; under CI, where ``make test`` installs the package, they fail instead."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_CONFIGS = ROOT / "configs" / "prometheus"
ALERTS = PROMETHEUS_CONFIGS / "alerts.yml"
ALERTS_TEST = PROMETHEUS_CONFIGS / "alerts_test.yml"
DASHBOARD = ROOT / "configs" / "grafana" / "logq.json"


def require_tool(name: str) -> str:
    """The path of ``name`` (promtool, prometheus); skips (fails under CI) when it is not installed."""
    path = shutil.which(name)
    if path is None:
        reason = f"{name} not found: apt-get install prometheus"
        if os.environ.get("CI"):  # a skip there would hide that these tests never run
            pytest.fail(reason)
        pytest.skip(reason)
    return path


def alert_names(rules: Path = ALERTS) -> list[str]:
    """The alerts a rules file defines (``- alert: Name`` lines: the file is ours, one rule a line)."""
    return re.findall(r"^\s*- alert: (\w+)\s*$", rules.read_text(), re.MULTILINE)
