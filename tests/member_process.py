"""A consumer-group member running as a process of its own (``python -m MODULE ARGS``), for tests that
kill members: each line it prints is one JSON event ({"assigned": [...]}, {"p": P, "o": O, "v": V}...),
collected by a reader thread."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from typing import Any

from tests.broker_process import ROOT


class MemberProcess:
    def __init__(self, module: str, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, *args], cwd=ROOT, stdout=subprocess.PIPE, text=True
        )
        self.events: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.strip():
                self.events.append(json.loads(line))

    @property
    def assignment(self) -> list[int]:
        """The partitions of its latest assignment."""
        assigned = [e["assigned"] for e in self.events if "assigned" in e]
        return list(assigned[-1]) if assigned else []

    @property
    def consumed(self) -> set[tuple[int, int]]:
        """(partition, offset) of every record it reported."""
        return {(e["p"], e["o"]) for e in self.events if "p" in e}

    @property
    def values(self) -> set[str]:
        return {e["v"] for e in self.events if "v" in e}

    def kill(self) -> None:
        """SIGKILL (if still running), then reap it."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.finish(30)

    def finish(self, timeout: float = 60) -> None:
        """Wait for it to exit on its own."""
        self.proc.wait(timeout)
        self._reader.join(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
