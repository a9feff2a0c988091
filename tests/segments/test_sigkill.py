"""A real process appends and flushes in a loop and is killed with SIGKILL; every flushed batch survives."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from logq import batch as rb
from logq.segments import LogManager

ROOT = Path(__file__).resolve().parents[2]


def test_every_flushed_batch_survives_sigkill(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    rng = random.Random(7)
    next_tag = 0
    for _round in range(4):
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.segments.crash_writer", str(data_dir), str(next_tag)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.2, 0.6))
        os.kill(child.pid, signal.SIGKILL)
        rest, _ = child.communicate(timeout=10)
        # the kill may tear the last line: only complete lines were acknowledged
        complete = rest[: rest.rfind("\n") + 1]
        acknowledged = [tuple(map(int, line.split())) for line in complete.splitlines()]
        assert acknowledged, "the writer flushed nothing before it was killed"
        durable_end, last_tag = acknowledged[-1]

        manager = LogManager(data_dir)
        plog = manager.get("crash", 0)
        assert plog is not None
        assert plog.log_end_offset >= durable_end
        # every batch is intact, offsets are contiguous, and tags are contiguous from 0
        offset, tag = 0, 0
        while offset < plog.log_end_offset:
            data = plog.read(offset, 1 << 20)
            pos = 0
            while pos < len(data):
                header = rb.validate(data[pos : pos + rb.read_prefix(data, pos)[1]])
                assert header.base_offset == offset
                records = rb.decode_records(data[pos + rb.HEADER_SIZE : pos + header.size], header)
                assert records[0].value is not None
                assert int(records[0].value[:6]) == tag
                tag += 1
                offset = header.last_offset + 1
                pos += header.size
        assert tag - 1 >= last_tag
        next_tag = tag
        manager.close()
