from __future__ import annotations


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, time_ms: int = 1_700_000_000_000) -> None:
        self._ms = time_ms
        self._mono = 0.0

    def time_ms(self) -> int:
        return self._ms

    def monotonic(self) -> float:
        return self._mono

    def advance(self, ms: int) -> None:
        self._ms += ms
        self._mono += ms / 1000.0
