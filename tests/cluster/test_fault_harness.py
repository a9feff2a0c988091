"""Smoke test of the fault harness (tests/cluster/fault_harness.py).

The checkers alone (they must be able to fail), then three short runs on one 3-broker cluster with RF 1
queues: no fault; a SIGKILL and restart of a leader; a ZooKeeper session expiry (SIGUSR1) of a leader.
Each must verify: with RF 1 a killed broker's partitions are unavailable while it is down, but what it
acknowledged was in its page cache, which SIGKILL keeps."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.cluster.fault_harness import (
    Ack,
    AckedRecorder,
    FaultCluster,
    Figures,
    LeaderEpochWatcher,
    StateSample,
    check_drain,
    chroot_connect,
    epoch_problems,
    verify,
)

PARTITIONS = 3


# --- the checkers, without processes: they must be able to fail --------------------------------------


def test_check_drain_counts_lost_inconsistent_and_duplicated_records() -> None:
    acks = [Ack(0, 0, b"a", 1.0), Ack(0, 1, b"b", 1.1), Ack(0, 2, b"c", 1.2), Ack(1, 0, b"d", 1.3)]
    drained = {0: [(0, b"a"), (1, b"x"), (3, b"a")], 1: [(0, b"d")]}
    figures = Figures()
    check_drain(figures, acks, [], {0: (0, 4), 1: (0, 1)}, drained)
    assert (figures.lost, figures.inconsistent, figures.duplicates) == (1, 1, 1)  # c lost, b != x, a twice
    assert figures.skipped_offsets == 1  # offset 2 of partition 0
    assert figures.read == 4
    assert figures.violated()

    clean = Figures()
    check_drain(clean, acks[3:], [], {1: (0, 1)}, {1: [(0, b"d")]})
    assert not clean.violated()
    assert (clean.lost, clean.read) == (0, 1)


def test_check_drain_flags_offsets_that_go_back() -> None:
    figures = Figures()
    check_drain(figures, [], [], {0: (0, 2)}, {0: [(1, b"a"), (0, b"b")]})
    assert figures.problems
    assert figures.violated()


def test_epoch_problems() -> None:
    def s(leader: int, epoch: int) -> StateSample:
        return StateSample(0.0, leader, epoch, (leader,), 0)

    assert not epoch_problems({0: [s(1, 0), s(-1, 1), s(1, 2)], 1: [s(2, 0), s(2, 0)]})
    assert epoch_problems({0: [s(1, 3), s(1, 2)]})  # went back
    assert epoch_problems({0: [s(1, 3), s(2, 3)]})  # two leaders in one epoch
    assert epoch_problems({0: []})  # never seen


# --- against a real cluster ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fault_cluster(tmp_path_factory: pytest.TempPathFactory, zookeeper: str) -> Iterator[FaultCluster]:
    with FaultCluster(tmp_path_factory.mktemp("fault"), chroot_connect(zookeeper)) as cluster:
        yield cluster.start()


def traffic(cluster: FaultCluster, queue: str, count: int) -> tuple[LeaderEpochWatcher, AckedRecorder]:
    """A new RF 1 queue, a watcher on its state znodes and a recorder sending ``count`` values at 400/s."""
    cluster.start()  # verify() leaves every broker stopped
    cluster.create_queue(queue, PARTITIONS, rf=1, min_isr=1)
    watcher = LeaderEpochWatcher(cluster.zk_connect, queue, PARTITIONS)
    return watcher, AckedRecorder(cluster.bootstrap, queue, PARTITIONS, count=count, rate=400)


def test_a_quiet_run_verifies(fault_cluster: FaultCluster) -> None:
    watcher, recorder = traffic(fault_cluster, "quiet", 1000)
    with watcher, recorder:
        assert recorder.wait_done(timeout=20)
        figures = verify(fault_cluster, "quiet", recorder, watcher)
    assert (figures.acknowledged, figures.failures, figures.lost, figures.read) == (1000, 0, 0, 1000)
    assert figures.time_to_recover is None  # no fault
    assert len(figures.replica_bytes) == PARTITIONS
    assert all(figures.replica_bytes.values())
    assert not fault_cluster.running()  # verify stops every broker


def test_a_killed_and_restarted_rf1_broker_loses_nothing_acknowledged(fault_cluster: FaultCluster) -> None:
    watcher, recorder = traffic(fault_cluster, "crash", 1200)
    with watcher, recorder:
        recorder.wait_for_acks(200, timeout=10)
        victim = fault_cluster.leader_of("crash", 0)
        fault_cluster.kill(victim)
        time.sleep(1.0)
        fault_cluster.restart(victim)
        fault_cluster.wait_for_leaders("crash", timeout=20)
        assert recorder.wait_done(timeout=30)
        figures = verify(fault_cluster, "crash", recorder, watcher)
    assert figures.lost == 0
    assert figures.acknowledged + figures.failures == 1200
    assert figures.acknowledged > 200
    assert figures.time_to_recover is not None
    assert figures.time_to_recover >= 1.0  # partition 0 was down at least while the broker was
    assert figures.longest_partition_gap >= 1.0


def test_an_expired_session_ends_in_a_new_registration_and_loses_nothing(fault_cluster: FaultCluster) -> None:
    watcher, recorder = traffic(fault_cluster, "expiry", 1000)
    with watcher, recorder:
        recorder.wait_for_acks(200, timeout=10)
        victim = fault_cluster.leader_of("expiry", 0)
        before = fault_cluster.registration(victim)
        assert before is not None
        fault_cluster.expire_session(victim)
        after = fault_cluster.wait_reregistered(victim, before, timeout=20)
        assert after.epoch > before.epoch
        fault_cluster.wait_for_leaders("expiry", timeout=20)
        assert fault_cluster.is_running(victim)
        assert recorder.wait_done(timeout=30)
        epochs = [s.leader_epoch for s in watcher.history[0]]
        assert epochs[-1] > epochs[0]  # the broker leads partition 0 again, in a new leader epoch
        figures = verify(fault_cluster, "expiry", recorder, watcher)
    assert figures.lost == 0
    assert figures.acknowledged + figures.failures == 1000
    assert figures.time_to_recover is not None
