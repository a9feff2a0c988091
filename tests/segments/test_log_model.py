"""A hypothesis state machine: random appends, reads, rolls, truncations, reopens and retention runs on a
real PartitionLog, checked against a plain in-memory model."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from logq import batch as rb
from logq.config import LogConfig
from logq.errors import OffsetOutOfRangeError
from logq.retention import RetentionJob
from logq.segments import LogManager, PartitionLog
from logq.testing import FakeClock, make_batch

CONFIG = LogConfig(segment_bytes=1500, index_interval_bytes=300, segment_ms=50_000, file_delete_delay_ms=0)


@dataclass
class ModelBatch:
    base: int
    count: int
    timestamp: int
    body: bytes  # the stored bytes after the 16-byte prefix (which the log patches)
    appended_at: int

    @property
    def end(self) -> int:
        return self.base + self.count


class LogMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="logq-model-"))
        self.clock = FakeClock()
        self.manager = LogManager(self.tmp, CONFIG, self.clock)
        self.log: PartitionLog = self.manager.create("m", 0)
        self.batches: list[ModelBatch] = []
        self.start = 0
        self.end = 0
        self.tag = 0
        self.retention = RetentionJob(lambda: [self.log], self.clock, 1000)

    def teardown(self) -> None:
        self.manager.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _live(self) -> list[ModelBatch]:
        return [b for b in self.batches if b.base >= self.start]

    @rule(count=st.integers(1, 6), size=st.integers(1, 300), ts=st.integers(0, 10_000))
    def append(self, count: int, size: int, ts: int) -> None:
        data = make_batch(count, value_size=size, timestamp=ts, tag=self.tag)
        self.tag += 1
        info = self.log.append(data)
        assert (info.base_offset, info.last_offset) == (self.end, self.end + count - 1)
        self.batches.append(ModelBatch(self.end, count, ts, data[16:], self.clock.time_ms()))
        self.end += count
        self.log.high_watermark = self.end

    @rule(data=st.data(), max_bytes=st.integers(0, 3000))
    def read(self, data: st.DataObject, max_bytes: int) -> None:
        offset = data.draw(st.integers(self.start, self.end))
        got = self.log.read(offset, max_bytes)
        if offset == self.end:
            assert got == b""
            return
        expected = [b for b in self._live() if b.end > offset]
        pos = 0
        for i, batch in enumerate(expected):
            if pos >= len(got):
                assert i > 0
                break
            header = rb.validate(got[pos : pos + rb.read_prefix(got, pos)[1]])
            assert header.base_offset == batch.base
            assert got[pos + 16 : pos + header.size] == batch.body
            pos += header.size
            assert i == 0 or pos <= max_bytes
        assert pos == len(got)

    @rule(offset=st.integers(-5, 5))
    def read_out_of_range(self, offset: int) -> None:
        bad = self.start - 1 - abs(offset) if offset < 0 else self.end + 1 + offset
        if bad < 0 and self.start == 0:
            bad = -1 - abs(offset)
        try:
            self.log.read(bad, 100)
        except OffsetOutOfRangeError:
            return
        raise AssertionError(f"read at {bad} outside [{self.start}, {self.end}] did not raise")

    @rule()
    def roll(self) -> None:
        self.log.roll()

    @rule()
    def flush(self) -> None:
        assert self.log.flush() == self.end

    @precondition(lambda self: self.end > self.start)
    @rule(data=st.data())
    def truncate(self, data: st.DataObject) -> None:
        offset = data.draw(st.integers(self.start, self.end))
        containing = [b for b in self._live() if b.end > offset]
        new_end = containing[0].base if containing else self.end
        assert self.log.truncate_to(offset) == new_end
        self.batches = [b for b in self.batches if b.base < new_end]
        self.end = new_end
        self.log.high_watermark = self.end

    @rule(crash=st.booleans())
    def reopen(self, crash: bool) -> None:
        if crash:
            self.manager.abandon()
        else:
            self.manager.close()
        self.manager = LogManager(self.tmp, CONFIG, self.clock)
        reopened = self.manager.get("m", 0)
        assert reopened is not None
        self.log = reopened
        self.log.high_watermark = self.end

    @rule(ts=st.integers(0, 11_000))
    def offset_for_timestamp(self, ts: int) -> None:
        expected = None
        for batch in self._live():
            if batch.timestamp + batch.count - 1 >= ts:
                delta = max(0, ts - batch.timestamp)
                expected = (batch.base + delta, batch.timestamp + delta)
                break
        assert self.log.offset_for_timestamp(ts) == expected

    @rule(
        advance=st.integers(0, 40_000),
        retention_ms=st.sampled_from([-1, 10_000, 30_000]),
        retention_bytes=st.sampled_from([-1, 0, 2000, 5000]),
        hw_back=st.integers(0, 10),
    )
    def retention_run(self, advance: int, retention_ms: int, retention_bytes: int, hw_back: int) -> None:
        self.clock.advance(advance)
        self.log.config = LogConfig(
            segment_bytes=CONFIG.segment_bytes,
            index_interval_bytes=CONFIG.index_interval_bytes,
            segment_ms=CONFIG.segment_ms,
            file_delete_delay_ms=0,
            retention_ms=retention_ms,
            retention_bytes=retention_bytes,
        )
        hw = max(self.start, self.end - hw_back)
        self.log.high_watermark = hw
        self.retention.run_once()
        new_start = self.log.log_start_offset
        assert self.start <= new_start <= hw
        assert self.log.log_end_offset == self.end
        if new_start > self.start:
            assert any(b.base == new_start for b in self.batches) or new_start == self.end
            for gone in (b for b in self.batches if self.start <= b.base < new_start):
                deleted_for_age = retention_ms >= 0 and self.clock.time_ms() - gone.appended_at > retention_ms
                assert deleted_for_age or retention_bytes >= 0
        self.start = new_start
        self.log.high_watermark = self.end

    @invariant()
    def offsets_agree(self) -> None:
        assert self.log.log_start_offset == self.start
        assert self.log.log_end_offset == self.end
        infos = self.log.segment_infos()
        assert infos[-1].active
        assert [i.base_offset for i in infos] == sorted(i.base_offset for i in infos)


LogMachine.TestCase.settings = settings(
    max_examples=80,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestLogModel = LogMachine.TestCase
