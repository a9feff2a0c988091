"""The leader's bookkeeping of its followers (``LeaderState``) and the follower's truncation point: pure
rules, checked without processes."""

from __future__ import annotations

from pathlib import Path

from logq.broker.replica_fetcher import truncation_point
from logq.broker.replication import LeaderState
from logq.segments import LogManager
from logq.testing import FakeClock
from tests.segments.test_leader_epochs import CONFIG, append_epochs


def state(isr: tuple[int, ...] = (1, 2, 3), min_isr: int = 2) -> LeaderState:
    return LeaderState(1, 7, replicas=(1, 2, 3), isr=isr, min_isr=min_isr, epoch_start=10, now_ms=0)


def test_the_high_watermark_is_the_smallest_log_end_over_the_isr() -> None:
    led = state()
    assert led.high_watermark(20) == -1  # followers' positions unknown: nothing is committed yet
    led.on_fetch(2, 20, 20, now_ms=5)
    led.on_fetch(3, 15, 20, now_ms=5)
    assert led.high_watermark(20) == 15
    led.isr = (1, 2)  # 3 left the ISR: it no longer holds the high watermark back
    assert led.high_watermark(20) == 20


def test_a_follower_that_stops_catching_up_is_lagging_after_the_limit() -> None:
    led = state()
    led.on_fetch(2, 20, 20, now_ms=1000)  # caught up at 1000
    led.on_fetch(3, 10, 20, now_ms=1000)  # behind
    led.on_fetch(
        3, 20, 30, now_ms=1400
    )  # reached the end the leader had at its previous fetch: caught up at 1000
    assert led.lagging(now_ms=1500, max_lag_ms=1000) == ()
    assert led.lagging(now_ms=2100, max_lag_ms=1000) == (2, 3)
    led.on_fetch(2, 30, 30, now_ms=2100)
    assert led.lagging(now_ms=2100, max_lag_ms=1000) == (3,)


def test_a_follower_joins_the_isr_once_it_reaches_the_high_watermark_and_the_epoch_start() -> None:
    led = state(isr=(1, 2))
    led.on_fetch(2, 12, 12, now_ms=0)
    led.on_fetch(3, 9, 12, now_ms=0)
    assert not led.may_join(3, led.high_watermark(12))  # below the start of this leader's epoch (10)
    led.on_fetch(3, 12, 12, now_ms=0)
    assert led.may_join(3, led.high_watermark(12))
    assert not led.may_join(2, led.high_watermark(12))  # already in
    assert led.enough_in_sync()
    assert not state(isr=(1,)).enough_in_sync()


def test_a_follower_that_leaves_the_isr_forgets_its_position() -> None:
    led = state()
    led.on_fetch(2, 20, 20, now_ms=0)
    led.on_fetch(3, 20, 20, now_ms=0)
    led.isr = (1, 2)
    assert led.followers[3].log_end == -1  # only a new fetch of its own may bring it back
    assert not led.may_join(3, led.high_watermark(20))


def test_a_member_being_added_counts_for_the_high_watermark_already() -> None:
    led = state(isr=(1, 2))
    led.on_fetch(2, 20, 20, now_ms=0)
    led.on_fetch(3, 15, 20, now_ms=0)
    assert led.high_watermark(20) == 20
    led.pending_isr = (1, 2, 3)  # ZooKeeper may list 3 before the leader hears back (the maximal ISR)
    assert led.high_watermark(20) == 15


def test_truncation_point_follows_kafka(tmp_path: Path, clock: FakeClock) -> None:
    manager = LogManager(tmp_path, CONFIG, clock)
    plog = manager.create("q", 0)
    append_epochs(plog, [1, 1, 3, 3])  # epoch 1: 0-5, epoch 3: 6-11; log end 12
    # The leader has our latest epoch and it ended at 9 there: cut at 9.
    assert truncation_point(plog, asked=3, leader_epoch=3, leader_end=9) == (9, True)
    # The leader has more of it than we do: keep everything.
    assert truncation_point(plog, asked=3, leader_epoch=3, leader_end=20) == (12, True)
    # The leader never had epoch 3 (KIP-279): its latest older epoch is 2, which we never had either;
    # cut where our epoch 1 ended and ask again.
    assert truncation_point(plog, asked=3, leader_epoch=2, leader_end=7) == (6, False)
    # The leader answers epoch 1 ending at 4: we had it up to 6, so cut at 4.
    assert truncation_point(plog, asked=3, leader_epoch=1, leader_end=4) == (4, True)
    # No epoch known on the leader: nothing to compare, nothing cut.
    assert truncation_point(plog, asked=3, leader_epoch=-1, leader_end=-1) == (12, True)
    manager.close()
