from __future__ import annotations

from logq.retention import select_deletable
from logq.segments.log import SegmentInfo

NOW = 1_000_000


def seg(base: int, end: int, size: int, age_ms: int, active: bool = False) -> SegmentInfo:
    return SegmentInfo(base, end, size, NOW - age_ms, active)


def bases(*args: SegmentInfo, **kwargs: int | str) -> list[int]:
    params = {"now_ms": NOW, "retention_ms": -1, "retention_bytes": -1, "high_watermark": 10**9} | kwargs
    return [d.base_offset for d in select_deletable(list(args), **params)]


def test_time_retention_deletes_aged_prefix_only() -> None:
    segments = [seg(0, 10, 100, 5000), seg(10, 20, 100, 500), seg(20, 30, 100, 5000), seg(30, 30, 0, 0, True)]
    # the third segment is old too, but retention only ever deletes a prefix of the log
    assert bases(*segments, retention_ms=1000) == [0]


def test_the_active_segment_is_never_deleted() -> None:
    assert bases(seg(0, 10, 100, 10**6, active=True), retention_ms=0, retention_bytes=0) == []


def test_nothing_at_or_above_the_high_watermark_is_deleted() -> None:
    segments = [seg(0, 10, 100, 5000), seg(10, 20, 100, 5000), seg(20, 25, 50, 5000, True)]
    assert bases(*segments, retention_ms=1000, high_watermark=15) == [0]
    assert bases(*segments, retention_ms=1000, high_watermark=20) == [0, 10]


def test_size_retention_keeps_at_least_the_limit() -> None:
    segments = [seg(0, 10, 100, 0), seg(10, 20, 100, 0), seg(20, 30, 100, 0), seg(30, 35, 50, 0, True)]
    assert bases(*segments, retention_bytes=200) == [0]  # 350 -> 250; deleting another would leave 150
    assert bases(*segments, retention_bytes=0) == [0, 10, 20]


def test_minus_one_disables_both_limits() -> None:
    assert bases(seg(0, 10, 10**9, 10**12), seg(10, 10, 0, 0, True)) == []


def test_each_deletion_says_why() -> None:
    segments = [seg(0, 10, 100, 5000), seg(10, 20, 100, 0), seg(20, 20, 0, 0, True)]
    reasons = [
        d.reason
        for d in select_deletable(
            segments, now_ms=NOW, retention_ms=1000, retention_bytes=0, high_watermark=20
        )
    ]
    assert reasons[0].startswith("retention.ms")
    assert reasons[1].startswith("retention.bytes")


def test_a_compacted_queue_is_not_deleted_by_time_or_size_unless_its_policy_says_delete_too() -> None:
    segments = [seg(0, 10, 100, 5000), seg(10, 20, 100, 5000), seg(20, 25, 50, 0, True)]
    limits: dict[str, int | str] = {"retention_ms": 1000, "retention_bytes": 0}
    assert bases(*segments, **limits, cleanup_policy="compact") == []
    assert bases(*segments, **limits, cleanup_policy="compact,delete") == [0, 10]
    assert bases(*segments, **limits, cleanup_policy="delete") == [0, 10]
