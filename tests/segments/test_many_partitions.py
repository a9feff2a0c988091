"""A broker must open and serve 1,000 partitions from one shared index (timings are in the benchmark)."""

from __future__ import annotations

from pathlib import Path

from logq.segments import LogManager
from logq.testing import make_batch


def test_one_thousand_partitions_share_one_index(data_dir: Path) -> None:
    manager = LogManager(data_dir)
    for p in range(1000):
        manager.create("wide", p).append(make_batch(1, tag=p))
    manager.close()
    manager = LogManager(data_dir)
    assert len(manager.partitions()) == 1000
    assert [d.name for d in data_dir.iterdir() if d.name.endswith(".rocksdb")] == ["index.rocksdb"]
    for p in (0, 499, 999):
        plog = manager.get("wide", p)
        assert plog is not None
        assert plog.log_end_offset == 1
        assert plog.read(0, 1000)
    manager.close()
