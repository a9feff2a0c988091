"""LoopHealth on a real event loop: stalls of the loop and the garbage collector's pauses are measured."""

from __future__ import annotations

import asyncio
import gc
import time

from logq.broker.loop_health import NOTABLE_S, LoopHealth, WindowMax


def test_a_blocked_loop_and_a_collection_are_both_seen() -> None:
    stalls: list[float] = []
    collections: list[tuple[int, float]] = []
    health = LoopHealth(stalls.append, lambda generation, seconds: collections.append((generation, seconds)))

    async def scenario() -> None:
        watch = asyncio.create_task(health.watch_loop())
        await asyncio.sleep(0.05)
        time.sleep(0.1)  # noqa: ASYNC251 - the loop is held, as by a long handler
        junk = [[i] for i in range(200_000)]  # something for a full collection to walk
        gc.collect()
        del junk
        await asyncio.sleep(0.05)  # the late tick runs, and drains the collection's figures
        watch.cancel()

    health.watch_gc()
    try:
        asyncio.run(scenario())
    finally:
        health.unwatch_gc()
    assert max(stalls) >= 0.09
    assert health.stalls.longest() >= 0.09
    assert any(generation == 2 for generation, _ in collections)
    assert health.gc_pauses.longest() == max((s for _, s in collections if s >= NOTABLE_S), default=0.0)


def test_the_window_keeps_the_longest_of_the_last_minute_only() -> None:
    window = WindowMax(window_s=60)
    window.note(0.5, now=100.0)
    window.note(0.0001, now=101.0)  # too short to keep
    window.note(0.2, now=130.0)
    assert window.longest(now=150.0) == 0.5
    assert window.longest(now=161.0) == 0.2
    assert window.longest(now=191.0) == 0.0
