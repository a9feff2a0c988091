"""The background flush honours each queue's own period (``flush.ms``) and the broker's
(``log.flush.interval.ms``) for the rest."""

from __future__ import annotations

from pathlib import Path

from logq.config import LogConfig
from logq.queues import log_config_for, queue_setting_values, validate_queue_settings
from logq.segments import LogManager
from logq.testing import make_batch


def test_a_queue_with_a_longer_flush_ms_is_flushed_less_often(tmp_path: Path) -> None:
    defaults = LogConfig(flush_interval_ms=1000)
    manager = LogManager(tmp_path, defaults)
    try:
        often = manager.create("often", 0)
        rarely = manager.create(
            "rarely", 0, log_config_for(defaults, validate_queue_settings({"flush.ms": "60000"}))
        )
        assert rarely.config.flush_interval_ms == 60_000
        for log in (often, rarely):
            log.append(make_batch(3))
        manager.flush_all(now=100.0)  # the first round flushes both (neither was flushed yet)
        assert (often.durable_offset, rarely.durable_offset) == (3, 3)
        for log in (often, rarely):
            log.append(make_batch(2))
        manager.flush_all(now=101.5)  # 1.5 s later: only the queue with the broker's 1 s period is due
        assert (often.durable_offset, rarely.durable_offset) == (5, 3)
        manager.flush_all(now=160.0)  # 60 s after its last flush, the other one too
        assert rarely.durable_offset == 5
        manager.flush_all()  # without a clock (shutdown, tests): everything
    finally:
        manager.close()


def test_flush_ms_is_a_queue_setting_shown_with_the_broker_default() -> None:
    assert queue_setting_values(LogConfig(flush_interval_ms=2500))["flush.ms"] == "2500"
    assert validate_queue_settings({"flush.ms": "12345678"}) == {"flush.ms": "12345678"}
