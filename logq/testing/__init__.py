"""Test helpers that ship with logq (like ``trio.testing``): a fake clock and batch factories."""

from logq.testing.batches import make_batch
from logq.testing.clock import FakeClock

__all__ = ["FakeClock", "make_batch"]
