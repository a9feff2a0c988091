"""A follower's side of the log: appending a leader's batches unchanged, taking the lead in an epoch, and
the truncation point computed from a leader's OffsetForLeaderEpoch answer (KIP-101/279)."""

from __future__ import annotations

from pathlib import Path

import pytest

from logq.errors import CorruptBatchError, FencedLeaderEpochError
from logq.segments import LogManager, PartitionLog, files
from logq.testing import FakeClock, make_batch
from tests.segments.test_leader_epochs import CONFIG, append_epochs
from tests.segments.test_log import read_all


def new_log(root: Path, name: str, clock: FakeClock) -> tuple[LogManager, PartitionLog]:
    manager = LogManager(root / name, CONFIG, clock)
    return manager, manager.create("q", 0)


@pytest.fixture
def pair(tmp_path: Path, clock: FakeClock) -> tuple[PartitionLog, PartitionLog]:
    _, leader = new_log(tmp_path, "leader", clock)
    _, follower = new_log(tmp_path, "follower", clock)
    return leader, follower


def copy(leader: PartitionLog, follower: PartitionLog) -> None:
    """What a replica fetcher does: read from the follower's log end on, append unchanged."""
    while follower.log_end_offset < leader.log_end_offset:
        follower.append_replicated(leader.read(follower.log_end_offset, 1 << 20))


def test_replicated_batches_are_stored_byte_for_byte(pair: tuple[PartitionLog, PartitionLog]) -> None:
    leader, follower = pair
    append_epochs(leader, [0, 0, 2, 2, 5])  # rolls segments (2 KiB each)
    copy(leader, follower)
    assert bytes(read_all(follower)) == bytes(read_all(leader))
    assert follower.epoch_history() == leader.epoch_history() == [(0, 0), (2, 6), (5, 12)]
    assert follower.end_offset_for_epoch(2) == (2, 12)


def test_a_batch_before_the_log_end_or_corrupt_is_refused(
    pair: tuple[PartitionLog, PartitionLog],
) -> None:
    leader, follower = pair
    append_epochs(leader, [0, 0])
    first_whole = bytes(leader.read(0, 1))
    assert follower.append_replicated(first_whole) == 3
    with pytest.raises(CorruptBatchError, match="starts at 0, the log ends at 3"):
        follower.append_replicated(first_whole)
    follower.truncate_to(0)
    first = bytearray(leader.read(0, 1))
    first[-1] ^= 0xFF
    with pytest.raises(CorruptBatchError, match="CRC"):
        follower.append_replicated(first)
    assert follower.log_end_offset == 0
    whole = bytes(leader.read(0, 1 << 20))
    assert follower.append_replicated(whole[:-10]) == 3  # the partial second batch is left for later


def test_a_gap_after_the_log_end_is_the_leaders_cleaner_and_survives_a_restart(
    tmp_path: Path, clock: FakeClock
) -> None:
    """A compacted leader's log has offset gaps: the follower stores the batch after the gap and marks
    its log, so that recovery accepts the gap instead of cutting the log there."""
    _, leader = new_log(tmp_path, "leader", clock)
    manager, follower = new_log(tmp_path, "follower", clock)
    append_epochs(leader, [0, 0])
    second = bytes(leader.read(3, 1 << 20))
    assert follower.append_replicated(second) == 6
    assert (follower.directory / files.CLEANER_CHECKPOINT).exists()
    assert follower.read(0, 1 << 20).tobytes() == second  # a read in the gap gets the next batch
    manager.abandon()  # a crash: the next start scans the segment
    manager = LogManager(tmp_path / "follower", CONFIG, clock)
    follower = manager.get("q", 0)
    assert follower is not None
    assert follower.log_end_offset == 6
    assert follower.read(0, 1 << 20).tobytes() == second
    manager.close()


def test_replicated_idempotent_batches_rebuild_the_producer_state(
    pair: tuple[PartitionLog, PartitionLog],
) -> None:
    leader, follower = pair
    leader.append(make_batch(2, producer_id=7, producer_epoch=0, sequence=0))
    copy(leader, follower)
    # After a failover the follower leads: a retry of the same batch is a duplicate, not a new write.
    follower.become_leader(1)
    again = follower.append(make_batch(2, producer_id=7, producer_epoch=0, sequence=0))
    assert again.duplicate
    assert follower.log_end_offset == 2


def test_become_leader_records_the_epoch_at_the_log_end_and_stamps_appends(
    tmp_path: Path, clock: FakeClock
) -> None:
    _, plog = new_log(tmp_path, "one", clock)
    append_epochs(plog, [3])
    plog.become_leader(4)
    assert plog.epoch_history() == [(3, 0), (4, 3)]
    plog.append(make_batch(1))
    assert plog.end_offset_for_epoch(3) == (3, 3)
    assert plog.end_offset_for_epoch(4) == (4, 4)
    with pytest.raises(FencedLeaderEpochError):
        plog.become_leader(2)


def test_an_epoch_that_wrote_nothing_is_replaced_by_the_next_one_at_the_same_offset(
    pair: tuple[PartitionLog, PartitionLog],
) -> None:
    leader, follower = pair
    append_epochs(leader, [3, 3])
    copy(leader, follower)
    follower.become_leader(5)  # led epoch 5 from offset 6 and lost the lead before writing anything
    assert follower.epoch_history() == [(3, 0), (5, 6)]
    leader.become_leader(6)
    append_epochs(leader, [6])
    copy(leader, follower)
    # Epoch 5 ended where it began: the history must say epoch 6 starts at 6, or a later question about
    # epoch 5 would be answered "ends at 6" while the log holds epoch 6's batch there.
    assert follower.epoch_history() == [(3, 0), (6, 6)]
    assert follower.end_offset_for_epoch(5) == (3, 6)


def test_a_follower_behind_the_leaders_log_start_restarts_there(tmp_path: Path, clock: FakeClock) -> None:
    _, leader = new_log(tmp_path, "leader", clock)
    follower_manager, follower = new_log(tmp_path, "follower", clock)
    append_epochs(leader, [0] * 12)  # 36 records over several 2 KiB segments
    copy(leader, follower)
    follower.truncate_to(3)  # this replica fell behind...
    leader.high_watermark = leader.log_end_offset
    leader.delete_oldest_segments(2, "retention")  # ...and the leader deleted what it lacks
    start = leader.log_start_offset
    assert follower.log_end_offset < start
    follower.restart_at(start)
    assert (follower.log_start_offset, follower.log_end_offset) == (start, start)
    copy(leader, follower)
    assert bytes(read_all(follower)) == bytes(read_all(leader))
    end = follower.log_end_offset
    follower.flush()
    follower_manager.close()
    reopened = LogManager(tmp_path / "follower", CONFIG, clock).get("q", 0)
    assert reopened is not None
    assert (reopened.log_start_offset, reopened.log_end_offset) == (start, end)
    assert bytes(read_all(reopened)) == bytes(read_all(leader))
