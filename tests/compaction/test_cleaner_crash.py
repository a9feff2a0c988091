"""SIGKILL at each step of the cleaner's copy-then-swap, on a real broker process: after a restart the
log loads, reading from offset 0 gives every key's latest value with no offset twice, and the cleaner
then finishes the job. ``LOGQ_CLEANER_CRASH_AT`` (logq/compaction/manager.py) makes the broker kill
itself at the step."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from logq.compaction.manager import CRASH_AT_ENV
from tests.broker_process import BrokerProcess
from tests.compaction.helpers import DEADLINE_S, expected_view, read_with_logq, wait_until_read_is
from tests.compaction.test_compacted_queue import BROKER_LOG, Writer, create_compacted

# (step, whether the restart finds a swap file to finish)
STEPS = [("cleaned", False), ("swap", True), ("old-deleted", True), ("renamed", False), ("done", False)]


@pytest.mark.parametrize(("step", "finishes_a_swap"), STEPS)
def test_a_kill_at_each_step_of_a_swap_leaves_the_old_or_the_new_segments(
    tmp_path: Path, step: str, finishes_a_swap: bool
) -> None:
    data = tmp_path / "broker-data"
    doomed = BrokerProcess(data, log=BROKER_LOG, env={CRASH_AT_ENV: step}).start()
    try:
        queue = "compacted.crash"
        create_compacted(doomed.bootstrap, queue)
        writer = Writer(doomed.bootstrap, queue)
        writer.updates(20, "v")
        time.sleep(0.6)  # segment.ms: the active segment rolls and the cleaner starts
        proc = doomed.proc
        assert proc is not None
        proc.wait(DEADLINE_S)  # killed by itself at the step
        assert f"{CRASH_AT_ENV}={step}" in doomed.log_text
    finally:
        doomed.kill()
    latest = writer.latest
    broker = BrokerProcess(data, log=BROKER_LOG).start()
    try:
        assert ("finished the swap of a cleaned segment" in broker.log_text) == finishes_a_swap
        records = read_with_logq(broker.bootstrap, queue)
        offsets = [offset for offset, _, _ in records]
        assert offsets == sorted(set(offsets))  # no offset twice: never old and new segments both
        last_seen = {key: (offset, value) for offset, key, value in records}
        assert last_seen == latest  # and never neither: every key's latest value is there
        wanted = expected_view(latest)
        assert wait_until_read_is(broker.bootstrap, queue, wanted) == wanted
    finally:
        broker.kill()
