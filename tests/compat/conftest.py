from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.broker_process import BrokerProcess
from tests.compat.helpers import PARTITIONS


@pytest.fixture
def auto_create_broker(tmp_path: Path) -> Iterator[BrokerProcess]:
    """A broker that creates unknown queues with PARTITIONS partitions on first use (kcat has no admin
    API)."""
    proc = BrokerProcess(
        tmp_path / "broker-data", broker={"auto.create.queues": True, "num.partitions": PARTITIONS}
    ).start()
    yield proc
    proc.kill()


@pytest.fixture
def kcat() -> str:
    path = shutil.which("kcat")
    if path is None:
        if os.environ.get("CI"):  # make test installs it: a skip there would hide a broken step
            pytest.fail("kcat is not installed")
        pytest.skip("kcat is not installed (Debian: apt-get install kcat)")
    return path
