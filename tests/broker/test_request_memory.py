"""RequestMemory's rules on their own (the pure bookkeeping behind queued.max.request.bytes; the broker
tests in test_request_backpressure.py drive it through real connections)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from logq.broker.request_memory import RequestMemory


@dataclass(eq=False)
class Reader:
    """A connection as RequestMemory sees it: what it is receiving, and when it was resumed."""

    name: str
    receiving_bytes: int = 0
    resumed: list[tuple[str, bool]] = field(default_factory=list)

    def memory_available(self, *, alone: bool) -> None:
        self.resumed.append((self.name, alone))


def test_waiters_are_resumed_in_order_as_answers_give_bytes_back() -> None:
    memory = RequestMemory(100)
    memory.update(complete=100, receiving=0)
    first, second = Reader("first"), Reader("second")
    memory.wait(first)
    memory.wait(second)
    assert memory.exhausted
    assert memory.waiting == 2
    assert (first.resumed, second.resumed) == ([], [])  # complete requests will free room
    memory.update(complete=-10, receiving=0)
    assert first.resumed == [("first", False)]
    # Resumed while there is room: both, since nothing took the room back meanwhile.
    assert second.resumed == [("second", False)]


def test_when_all_is_half_received_the_first_waiter_in_a_request_finishes_it_alone() -> None:
    memory = RequestMemory(100)
    idle, half = Reader("idle"), Reader("half", receiving_bytes=60)
    memory.update(complete=0, receiving=100)
    memory.wait(idle)  # between requests: letting it through would free nothing
    assert idle.resumed == []
    memory.wait(half)
    assert half.resumed == [("half", True)]
    other = Reader("other", receiving_bytes=40)
    memory.wait(other)
    assert other.resumed == []  # one at a time
    # Its request is complete: counted as such first, then it says so (as a connection does).
    memory.update(complete=60, receiving=-60)
    memory.completed(half)
    assert other.resumed == []  # the complete request will free room once answered
    memory.update(complete=-60, receiving=0)
    assert idle.resumed == [("idle", False)]
    assert other.resumed == [("other", False)]


def test_a_closed_waiter_is_forgotten() -> None:
    memory = RequestMemory(10)
    memory.update(complete=10, receiving=0)
    gone = Reader("gone")
    memory.wait(gone)
    memory.forget(gone)
    memory.update(complete=-10, receiving=0)
    assert gone.resumed == []
    assert memory.waiting == 0


def test_the_bound_must_be_positive() -> None:
    with pytest.raises(ValueError, match=r"queued\.max\.request\.bytes must be at least 1, not 0"):
        RequestMemory(0)
