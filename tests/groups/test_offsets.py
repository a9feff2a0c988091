"""The committed-offset store over real partition logs: commits, durability, compaction, expiry."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import struct
import tempfile
import threading
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from logq.broker.replica_manager import CoordinatorWrites
from logq.config import LogConfig
from logq.error_codes import ErrorCode
from logq.errors import BatchTooLargeError
from logq.groups.offset_records import (
    OffsetRecordError,
    decode_change,
    encode_change,
)
from logq.groups.offsets import (
    MAX_METADATA_BYTES,
    OFFSETS_QUEUE,
    GroupInfo,
    NotCoordinatorError,
    OffsetAndMetadata,
    OffsetMetadataTooLargeError,
    OffsetStore,
    java_string_hashcode,
    partition_for,
)
from logq.segments.log import AppendInfo, PartitionLog
from logq.testing import FakeClock
from logq.testing.cluster import FakeCoordinator, InProcessBroker

CONFIG = LogConfig(segment_bytes=4096, index_interval_bytes=512)
DAY = 24 * 3600 * 1000


T = TypeVar("T")


def run(coro: Coroutine[object, object, T]) -> T:
    return asyncio.run(coro)


class Node:
    """A broker of a cluster of one (its data directory, its partitions of ``__consumer_offsets``), with an
    OffsetStore writing through them as the broker's group coordinator does."""

    def __init__(self, data_dir: Path, clock: FakeClock, partitions: int = 3, config: LogConfig = CONFIG):
        self.config = config
        coordinator = FakeCoordinator([1])
        coordinator.create_queue(OFFSETS_QUEUE, partitions, queue_id="offsets")  # the same across restarts
        self.broker = InProcessBroker(data_dir, 1, coordinator, clock=clock, config=config)
        run(self.broker.start())
        assert self.broker.logs is not None
        assert self.broker.replicas is not None
        self.manager = self.broker.logs
        self.store = OffsetStore(CoordinatorWrites(self.broker.replicas), partitions, clock)
        for p in range(partitions):
            run(self.store.load(p))

    def log(self, partition: int) -> PartitionLog:
        plog = self.broker.partition(OFFSETS_QUEUE, partition).log
        assert plog is not None
        return plog

    def flush(self) -> None:
        for p in range(self.store.partitions):
            self.log(p).flush()


@pytest.fixture
def node(data_dir: Path, clock: FakeClock) -> Iterator[Node]:
    n = Node(data_dir, clock)
    yield n
    n.manager.close()


def om(offset: int, metadata: str = "", epoch: int = -1, ts: int = 1) -> OffsetAndMetadata:
    return OffsetAndMetadata(offset, epoch, metadata, ts)


def commit_acked(
    store: OffsetStore, group: str, offsets: dict[tuple[str, int], OffsetAndMetadata]
) -> AppendInfo | None:
    """A commit as the broker makes it when the flush (and the ISR) succeed."""
    info = store.commit(group, offsets)
    if info is not None:
        store.settle(group, offsets, info, acknowledged=True)
    return info


# --- placement -------------------------------------------------------------------------------------


def java_hash_by_definition(text: str) -> int:
    """s[0]*31^(n-1) + ... + s[n-1] over UTF-16 code units, reduced to a signed int32."""
    raw = text.encode("utf-16-be")
    units = [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]
    total: int = sum(u * 31 ** (len(units) - 1 - i) for i, u in enumerate(units)) % 2**32
    return total - 2**32 if total >= 2**31 else total


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", 0),
        ("a", 97),
        ("Aa", 2112),
        ("BB", 2112),  # the classic collision
        ("hello", 99162322),
        ("polygenelubricants", -(2**31)),  # hashes to Integer.MIN_VALUE
        ("group-1", java_hash_by_definition("group-1")),
        ("\U0001f600", 0xD83D * 31 + 0xDE00),  # a surrogate pair: two code units
    ],
)
def test_java_string_hashcode(text: str, expected: int) -> None:
    assert java_string_hashcode(text) == expected


def test_partition_for_follows_kafka_utils_abs() -> None:
    assert java_hash_by_definition("group-1") == 293427299
    assert partition_for("group-1", 50) == 293427299 % 50
    assert partition_for("hello", 50) == 99162322 % 50
    assert partition_for("polygenelubricants", 50) == 0  # Utils.abs(INT_MIN) is 0
    negative = "my-group"
    assert java_hash_by_definition(negative) < 0
    assert partition_for(negative, 50) == abs(java_hash_by_definition(negative)) % 50


@pytest.mark.parametrize("text", ["consumers", "größe", "x" * 40, "\U0001f600-group"])
def test_hashcode_matches_the_definition(text: str) -> None:
    assert java_string_hashcode(text) == java_hash_by_definition(text)


# --- records ---------------------------------------------------------------------------------------


def test_records_round_trip_and_bad_keys_are_refused() -> None:
    from logq.groups.offset_records import Change, GroupKey, OffsetKey

    for change in [
        Change(OffsetKey("g", "q", 7), om(42, "meta", 3, 123)),
        Change(OffsetKey("g", "q", 7), None),
        Change(GroupKey("g"), GroupInfo(None, 5)),
        Change(GroupKey("g"), GroupInfo(1000, 0)),
        Change(GroupKey("g"), GroupInfo(1000, 2, "consumer")),
        Change(GroupKey("g"), None),
    ]:
        assert decode_change(*encode_change(change)) == change
    # a group record written before the protocol type was kept (value version 0) still reads
    v0 = struct.pack(">hqi", 0, 1000, 4)
    assert decode_change(b"\x00\x02\x00\x01g", v0) == Change(GroupKey("g"), GroupInfo(1000, 4, ""))
    with pytest.raises(OffsetRecordError):
        decode_change(b"\x00\x02\x00\x01g", v0 + b"\x00")  # trailing bytes
    with pytest.raises(OffsetRecordError):
        decode_change(b"\x00\x02\x00\x01g", struct.pack(">hqi", 7, 1000, 4))  # unknown version
    with pytest.raises(OffsetRecordError):
        decode_change(b"\x00\x09\x00\x01g", None)
    with pytest.raises(OffsetRecordError):
        decode_change(None, b"")


# --- commit and fetch ------------------------------------------------------------------------------


def test_commit_then_fetch_latest_wins(node: Node) -> None:
    store = node.store
    commit_acked(store, "g", {("q", 0): om(10, "a"), ("q", 1): om(20)})
    commit_acked(store, "g", {("q", 0): om(11, "b", epoch=4)})
    assert store.fetch("g") == {("q", 0): om(11, "b", epoch=4), ("q", 1): om(20)}
    assert store.fetch("g", [("q", 1), ("q", 9), ("other", 0)]) == {("q", 1): om(20)}
    assert store.fetch("never") == {}
    assert store.groups(partition_for("g", 3)) == ["g"]


def test_a_commit_is_fetched_only_once_acknowledged(node: Node) -> None:
    store = node.store
    commit_acked(store, "g", {("q", 0): om(1), ("q", 1): om(1)})
    first = store.commit("g", {("q", 0): om(2)})
    second = store.commit("g", {("q", 0): om(3), ("q", 2): om(3)})
    assert first is not None
    assert second is not None
    assert store.fetch("g") == {("q", 0): om(1), ("q", 1): om(1)}  # neither is acknowledged yet
    store.settle("g", [("q", 0)], first, acknowledged=True)
    assert store.fetch("g") == {("q", 0): om(2), ("q", 1): om(1)}
    store.settle("g", [("q", 0), ("q", 2)], second, acknowledged=False)  # e.g. the ISR never got it
    assert store.fetch("g") == {("q", 0): om(2), ("q", 1): om(1)}
    third = commit_acked(store, "g", {("q", 0): om(4)})
    assert third is not None
    assert store.fetch("g") == {("q", 0): om(4), ("q", 1): om(1)}
    # the failed commit is in the log all the same: a reload (another coordinator) replays it
    run(store.load(partition_for("g", 3)))
    assert store.fetch("g") == {("q", 0): om(4), ("q", 1): om(1), ("q", 2): om(3)}


def test_an_acknowledged_commit_overtakes_older_ones_in_flight(node: Node) -> None:
    store = node.store
    older = store.commit("g", {("q", 0): om(5)})
    newer = store.commit("g", {("q", 0): om(6)})
    assert older is not None
    assert newer is not None
    store.settle("g", [("q", 0)], newer, acknowledged=True)
    assert store.fetch("g") == {("q", 0): om(6)}
    store.settle("g", [("q", 0)], older, acknowledged=True)  # late: changes nothing
    assert store.fetch("g") == {("q", 0): om(6)}


def test_deleting_offsets_forgets_commits_in_flight(node: Node) -> None:
    store = node.store
    info = store.commit("g", {("q", 0): om(5), ("q", 1): om(5)})
    assert info is not None
    store.delete_offsets("g", [("q", 0)])
    store.settle("g", [("q", 0), ("q", 1)], info, acknowledged=True)
    assert store.fetch("g") == {("q", 1): om(5)}


def test_commit_is_one_batch_and_stamps_the_time(node: Node, clock: FakeClock) -> None:
    info = commit_acked(node.store, "g", {("q", p): OffsetAndMetadata(p) for p in range(5)})
    assert info is not None
    assert (info.base_offset, info.last_offset) == (0, 4)
    assert node.store.fetch("g", [("q", 3)])[("q", 3)].commit_timestamp_ms == clock.time_ms()
    assert commit_acked(node.store, "g", {}) is None


def test_metadata_too_large_is_refused_and_stores_nothing(node: Node) -> None:
    store = node.store
    commit_acked(store, "g", {("q", 0): om(1, "x" * MAX_METADATA_BYTES)})  # exactly the limit is fine
    end = node.log(partition_for("g", 3)).log_end_offset
    for metadata in ["x" * (MAX_METADATA_BYTES + 1), "é" * (MAX_METADATA_BYTES // 2 + 1)]:
        with pytest.raises(OffsetMetadataTooLargeError) as caught:
            commit_acked(store, "g", {("q", 1): om(5), ("q", 2): om(6, metadata)})
        assert caught.value.code == ErrorCode.OFFSET_METADATA_TOO_LARGE
        assert caught.value.partition == ("q", 2)
    assert set(store.fetch("g")) == {("q", 0)}
    assert node.log(partition_for("g", 3)).log_end_offset == end


def test_not_coordinator_when_the_partition_is_not_loaded(node: Node) -> None:
    p = partition_for("g", 3)
    node.store.unload(p)
    assert not node.store.loaded(p)
    calls: list[Callable[[], object]] = [
        lambda: commit_acked(node.store, "g", {("q", 0): om(1)}),
        lambda: node.store.fetch("g"),
        lambda: node.store.set_group_empty_since("g", None),
        lambda: node.store.groups(p),
        lambda: run(node.store.compact(p)),
    ]
    for call in calls:
        with pytest.raises(NotCoordinatorError) as caught:
            call()
        assert caught.value.code == ErrorCode.NOT_COORDINATOR
    assert node.log(p).log_end_offset == 0


def test_a_failed_append_changes_nothing(data_dir: Path, clock: FakeClock) -> None:
    node = Node(data_dir, clock, config=dataclasses.replace(CONFIG, max_message_bytes=2000))
    with pytest.raises(BatchTooLargeError):
        commit_acked(node.store, "g", {("q", p): om(p, "m" * 1000) for p in range(3)})
    assert node.store.fetch("g") == {}
    node.manager.close()


def test_group_record_and_deletes(node: Node) -> None:
    store = node.store
    commit_acked(store, "g", {("q", 0): om(1), ("q", 1): om(2)})
    store.set_group_empty_since("g", None, generation=3)
    store.set_group_empty_since("g", 500)
    assert store.group_info("g") == GroupInfo(500, 3)  # the generation is kept
    assert store.delete_offsets("g", [("q", 0), ("q", 5)]) is not None
    assert store.fetch("g") == {("q", 1): om(2)}
    assert store.delete_offsets("g", [("q", 5)]) is None
    store.delete_group("g")
    assert store.fetch("g") == {}
    assert store.group_info("g") is None
    assert store.groups(partition_for("g", 3)) == []
    assert store.delete_group("g") is None


# --- durability ------------------------------------------------------------------------------------


def _fill(store: OffsetStore) -> dict[str, dict[tuple[str, int], OffsetAndMetadata]]:
    expected = {}
    for g in ["g1", "g2", "consumers", "analytics"]:
        offsets = {(f"q-{g}", p): om(100 + p, f"m{p}", epoch=p) for p in range(4)}
        commit_acked(store, g, offsets)
        commit_acked(store, g, {(f"q-{g}", 0): om(7)})
        offsets[(f"q-{g}", 0)] = om(7)
        expected[g] = offsets
    store.set_group_empty_since("g1", 1234, generation=9)
    return expected


@pytest.mark.parametrize("crash", [True, False])
def test_flushed_commits_survive_a_restart(data_dir: Path, clock: FakeClock, crash: bool) -> None:
    node = Node(data_dir, clock)
    expected = _fill(node.store)
    node.flush()
    if crash:
        node.manager.abandon()
    else:
        node.manager.close()
    again = Node(data_dir, clock)
    for g, offsets in expected.items():
        assert again.store.fetch(g) == offsets
    assert again.store.group_info("g1") == GroupInfo(1234, 9)
    assert sum(len(again.store.groups(p)) for p in range(3)) == 4
    again.manager.close()


def test_load_counts_records_and_replaces_memory(node: Node) -> None:
    p = partition_for("g", 3)
    commit_acked(node.store, "g", {("q", 0): om(1), ("q", 1): om(2)})
    commit_acked(node.store, "g", {("q", 0): om(3)})
    assert run(node.store.load(p)) == 3
    assert node.store.fetch("g") == {("q", 0): om(3), ("q", 1): om(2)}


# --- compaction ------------------------------------------------------------------------------------


def test_compaction_bounds_the_log(data_dir: Path, clock: FakeClock) -> None:
    config = LogConfig(segment_bytes=64 * 1024, index_interval_bytes=4096)
    node = Node(data_dir, clock, partitions=1, config=config)
    keys = [("q", p) for p in range(4)]
    for i in range(10_000):
        commit_acked(node.store, "g", {keys[i % 4]: om(i, "meta")})
    partition_log = node.log(0)
    before = partition_log.size_bytes
    assert before > 500_000
    assert not run(node.store.maybe_compact(0, max_bytes=2 * before))
    assert run(node.store.maybe_compact(0, max_bytes=64 * 1024))
    assert partition_log.size_bytes < 1024  # one batch of four records
    assert partition_log.log_start_offset == 10_000
    assert not run(node.store.maybe_compact(0, max_bytes=64 * 1024))
    node.manager.close()
    again = Node(data_dir, clock, partitions=1, config=config)
    assert again.store.fetch("g") == {keys[j]: om(9996 + j, "meta") for j in range(4)}
    assert again.log(0).log_start_offset == 10_000
    again.manager.close()


def test_replicated_compaction_deletes_the_old_segments_once_the_isr_has_the_snapshot(tmp_path: Path) -> None:
    """Followers copy the snapshot like any write; the leader deletes what it replaced only once the
    high watermark has passed it (the ISR has it)."""
    config = LogConfig(segment_bytes=64 * 1024, index_interval_bytes=4096)

    async def scenario() -> None:
        coordinator = FakeCoordinator([1, 2])
        coordinator.create_queue(OFFSETS_QUEUE, 1)
        leader, follower = (
            InProcessBroker(tmp_path / f"b{i}", i, coordinator, config=config) for i in (1, 2)
        )
        await leader.start()
        await follower.start()
        assert leader.replicas is not None
        store = OffsetStore(CoordinatorWrites(leader.replicas), 1, leader.clock)
        await store.load(0)
        partition_log = leader.partition(OFFSETS_QUEUE, 0).log
        assert partition_log is not None
        for i in range(5_000):
            commit_acked(store, "g", {("q", i % 4): om(i)})
        assert partition_log.high_watermark == 0  # the follower has fetched nothing yet
        assert await store.maybe_compact(0, max_bytes=64 * 1024)
        end = partition_log.log_end_offset
        assert end == 5_004  # the snapshot (one batch of four records) was appended...
        assert partition_log.log_start_offset == 0  # ...but nothing is deleted yet
        assert await store.maybe_compact(0, max_bytes=64 * 1024)  # still waiting for the ISR
        assert partition_log.log_start_offset == 0
        while follower.partition(OFFSETS_QUEUE, 0).high_watermark < end:
            assert await follower.replicate_from(leader, OFFSETS_QUEUE, 0) == 0
        await follower.replicate_from(leader, OFFSETS_QUEUE, 0)  # its log end reaches the leader
        assert partition_log.high_watermark == end
        assert await store.maybe_compact(0, max_bytes=64 * 1024)
        assert partition_log.log_start_offset == 5_000
        assert not await store.maybe_compact(0, max_bytes=64 * 1024)
        assert store.fetch("g") == {("q", j): om(4996 + j) for j in range(4)}
        leader.close()
        follower.close()

    run(scenario())


def test_a_snapshot_larger_than_one_batch(data_dir: Path, clock: FakeClock) -> None:
    config = dataclasses.replace(CONFIG, max_message_bytes=4000)
    node = Node(data_dir, clock, partitions=1, config=config)
    for g in range(30):
        commit_acked(node.store, f"g{g}", {("q", p): om(p, "m" * 40) for p in range(10)})
    node.store.set_group_empty_since("g3", 77)
    expected = {f"g{g}": node.store.fetch(f"g{g}") for g in range(30)}
    run(node.store.compact(0))
    assert len(node.log(0).segment_infos()) > 1  # the snapshot itself spans segments
    node.manager.abandon()
    again = Node(data_dir, clock, partitions=1, config=config)
    assert {f"g{g}": again.store.fetch(f"g{g}") for g in range(30)} == expected
    assert again.store.group_info("g3") == GroupInfo(77, 0)
    again.manager.close()


def test_compacting_an_empty_state_empties_the_log(node: Node) -> None:
    p = partition_for("g", 3)
    for i in range(100):
        commit_acked(node.store, "g", {("q", 0): om(i, "z" * 100)})
    node.store.delete_group("g")
    run(node.store.compact(p))
    partition_log = node.log(p)
    assert partition_log.size_bytes == 0
    assert partition_log.log_start_offset == partition_log.log_end_offset
    assert run(node.store.load(p)) == 0


# --- expiry ----------------------------------------------------------------------------------------


def test_expire_drops_the_offsets_of_long_empty_groups(node: Node, clock: FakeClock) -> None:
    store = node.store
    for g in ["old", "recent", "active", "simple-old", "simple-new"]:
        commit_acked(store, g, {("q", 0): OffsetAndMetadata(1), ("q", 1): OffsetAndMetadata(2)})
    clock.advance(8 * DAY)  # every commit is now 8 days old
    now = clock.time_ms()
    store.set_group_empty_since("old", now - 8 * DAY)
    store.set_group_empty_since("recent", now - 1 * DAY)
    store.set_group_empty_since("active", None)
    commit_acked(store, "simple-new", {("q", 0): OffsetAndMetadata(3)})  # a fresh commit keeps ("q", 0)
    expired = store.expire(clock.time_ms(), 7 * DAY)
    assert sorted(expired) == [
        ("old", "q", 0),
        ("old", "q", 1),
        ("simple-new", "q", 1),
        ("simple-old", "q", 0),
        ("simple-old", "q", 1),
    ]
    assert store.fetch("old") == {}
    assert store.group_info("old") is None
    assert set(store.fetch("recent")) == {("q", 0), ("q", 1)}
    assert set(store.fetch("active")) == {("q", 0), ("q", 1)}
    assert set(store.fetch("simple-new")) == {("q", 0)}
    assert store.expire(clock.time_ms(), 7 * DAY) == []
    for p in range(3):  # the tombstones are in the log
        run(store.load(p))
    assert store.fetch("old") == {}
    assert store.fetch("simple-old") == {}
    assert store.expire(clock.time_ms(), -1) == []


def test_expiry_boundary_is_longer_than_retention(node: Node, clock: FakeClock) -> None:
    commit_acked(node.store, "g", {("q", 0): OffsetAndMetadata(1)})
    node.store.set_group_empty_since("g", clock.time_ms())
    clock.advance(7 * DAY)
    assert node.store.expire(clock.time_ms(), 7 * DAY) == []  # empty for exactly the retention
    clock.advance(1)
    assert node.store.expire(clock.time_ms(), 7 * DAY) == [("g", "q", 0)]


# --- a state machine against a dict model ----------------------------------------------------------

GROUPS = ["g0", "g1", "g2", "group-a", "group-b"]
TPS = [("q", 0), ("q", 1), ("r", 0)]
PARTITIONS = 3


class OffsetStoreMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="offsets-"))
        self.clock = FakeClock()
        self.node = Node(self.tmp / "data", self.clock, PARTITIONS)
        self.offsets: dict[tuple[str, str, int], OffsetAndMetadata] = {}
        self.infos: dict[str, GroupInfo] = {}

    def teardown(self) -> None:
        self.node.manager.abandon()
        shutil.rmtree(self.tmp, ignore_errors=True)

    @rule(
        group=st.sampled_from(GROUPS),
        tps=st.sets(st.sampled_from(TPS), min_size=1),
        offset=st.integers(0, 10**12),
        metadata=st.sampled_from(["", "m", "é" * 30]),
    )
    def commit(self, group: str, tps: set[tuple[str, int]], offset: int, metadata: str) -> None:
        commit_acked(self.node.store, group, {tp: OffsetAndMetadata(offset, 1, metadata) for tp in tps})
        for q, p in tps:
            self.offsets[(group, q, p)] = OffsetAndMetadata(offset, 1, metadata, self.clock.time_ms())

    @rule(group=st.sampled_from(GROUPS), tps=st.sets(st.sampled_from(TPS)))
    def delete_offsets(self, group: str, tps: set[tuple[str, int]]) -> None:
        self.node.store.delete_offsets(group, tps)
        for q, p in tps:
            self.offsets.pop((group, q, p), None)

    @rule(group=st.sampled_from(GROUPS), empty=st.booleans(), generation=st.integers(0, 5))
    def set_empty(self, group: str, empty: bool, generation: int) -> None:
        since = self.clock.time_ms() if empty else None
        self.node.store.set_group_empty_since(group, since, generation=generation)
        self.infos[group] = GroupInfo(since, generation)

    @rule(group=st.sampled_from(GROUPS))
    def delete_group(self, group: str) -> None:
        self.node.store.delete_group(group)
        self.infos.pop(group, None)
        self.offsets = {k: v for k, v in self.offsets.items() if k[0] != group}

    @rule(advance=st.sampled_from([1000, DAY, 3 * DAY]))
    def expire(self, advance: int) -> None:
        self.clock.advance(advance)
        now, retention = self.clock.time_ms(), 2 * DAY
        self.node.store.expire(now, retention)
        for group in GROUPS:
            info = self.infos.get(group)
            if info is None:
                self.offsets = {
                    k: v
                    for k, v in self.offsets.items()
                    if k[0] != group or now - v.commit_timestamp_ms <= retention
                }
            elif info.empty_since_ms is not None and now - info.empty_since_ms > retention:
                del self.infos[group]
                self.offsets = {k: v for k, v in self.offsets.items() if k[0] != group}

    @rule(partition=st.integers(0, PARTITIONS - 1))
    def compact(self, partition: int) -> None:
        run(self.node.store.compact(partition))

    @rule(crash=st.booleans())
    def restart(self, crash: bool) -> None:
        self.node.flush()
        if crash:
            self.node.manager.abandon()
        else:
            self.node.manager.close()
        self.node = Node(self.tmp / "data", self.clock, PARTITIONS)
        # members live in memory only: after a load, a group recorded with members is empty since then
        now = self.clock.time_ms()
        self.infos = {
            g: GroupInfo(now, i.generation) if i.empty_since_ms is None else i for g, i in self.infos.items()
        }

    @invariant()
    def state_matches_the_model(self) -> None:
        store = self.node.store
        for group in GROUPS:
            expected = {(q, p): v for (g, q, p), v in self.offsets.items() if g == group}
            assert store.fetch(group) == expected
            assert store.group_info(group) == self.infos.get(group)
        live = {g for g, _, _ in self.offsets} | set(self.infos)
        assert sorted(g for p in range(PARTITIONS) for g in store.groups(p)) == sorted(live)


OffsetStoreMachine.TestCase.settings = settings(
    max_examples=25,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestOffsetStoreMachine = OffsetStoreMachine.TestCase


# --- the event loop stays free ---------------------------------------------------------------------


class Hold:
    """Stops the first call of a log method (run in a worker thread by the store) until released; later
    calls pass straight through. ``entered`` is set once the held call has started."""

    def __init__(self, method: Callable[..., object]) -> None:
        self._method = method
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, *args: object, **kwargs: object) -> object:
        if not self.entered.is_set():
            self.entered.set()
            assert self.release.wait(30), "never released"
        return self._method(*args, **kwargs)


def test_commits_are_answered_while_an_offsets_partition_loads_or_compacts(tmp_path: Path) -> None:
    # The store's thread work (a load's replay, a compaction's fsync) is held in its thread here, so
    # "meanwhile" is exact: every commit below is answered while that work has not finished.
    async def scenario() -> None:
        clock = FakeClock()
        coordinator = FakeCoordinator([1])
        coordinator.create_queue(OFFSETS_QUEUE, 2)
        broker = InProcessBroker(tmp_path, 1, coordinator, clock=clock, config=CONFIG, fsync_before_ack=True)
        await broker.start()
        assert broker.replicas is not None
        store = OffsetStore(CoordinatorWrites(broker.replicas), 2, clock)
        groups = {p: next(f"g{i}" for i in range(100) if partition_for(f"g{i}", 2) == p) for p in (0, 1)}

        async def commit(group: str, offset: int) -> None:
            """As group_handlers does: append, wait for acks=all, then show it to OffsetFetch."""
            info = store.commit(group, {("q", 0): om(offset)})
            assert info is not None
            partition = broker.partition(OFFSETS_QUEUE, store.partition_of(group))
            await partition.wait_acknowledged(info, acks=-1, timeout_ms=5_000)
            store.settle(group, [("q", 0)], info, acknowledged=True)

        await store.load(0)
        await store.load(1)
        for i in range(300):  # something to replay and to compact
            await commit(groups[1], i)
            await commit(groups[0], i)
        store.unload(1)

        loaded_log = broker.partition(OFFSETS_QUEUE, 1).log
        assert loaded_log is not None
        replay = Hold(loaded_log.read)
        loaded_log.read = replay  # type: ignore[method-assign]
        loading = asyncio.create_task(store.load(1))
        assert await asyncio.to_thread(replay.entered.wait, 10)
        for i in range(300, 320):
            await commit(groups[0], i)
        assert not loading.done()
        assert store.fetch(groups[0])[("q", 0)].offset == 319
        replay.release.set()
        assert await loading == 300
        assert store.fetch(groups[1])[("q", 0)].offset == 299

        plog = broker.partition(OFFSETS_QUEUE, 0).log
        assert plog is not None
        size = plog.size_bytes
        fsync = Hold(plog.flush)
        plog.flush = fsync  # type: ignore[method-assign]
        compacting = asyncio.create_task(store.compact(0))
        assert await asyncio.to_thread(fsync.entered.wait, 10)
        for i in range(320, 340):  # to the partition being compacted
            await commit(groups[0], i)
        assert not compacting.done()
        fsync.release.set()
        await compacting
        assert plog.size_bytes < size / 10
        assert store.fetch(groups[0])[("q", 0)].offset == 339
        await store.load(0)  # the compacted log holds the commits made during the compaction
        assert store.fetch(groups[0])[("q", 0)].offset == 339
        broker.close()

    run(scenario())
