"""The fault suite (docs/reliability.md, "Fault scenarios"): three broker processes, RF 3,
min.insync.replicas 2, acks=all.

Each scenario sends a bounded stream of unique values with an idempotent confluent-kafka producer,
records every acknowledgement, injects its fault, heals the cluster and then checks (``verify``): no
acknowledged message lost, no two values at one offset, offsets only grow, replicas byte-identical up
to the high watermark, each partition's leader epoch only grows. The figures line is printed (run
pytest with -s to see it): acknowledged, lost (0), failures, the unavailability window, recovery time.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer, TopicPartition

from logq import batch as rb
from logq.error_codes import ErrorCode
from logq.protocol import messages as m
from tests.broker.test_bad_input import produce_at
from tests.cluster.conftest import wait_for
from tests.cluster.fault_harness import (
    AckedRecorder,
    FaultCluster,
    Figures,
    LeaderEpochWatcher,
    chroot_connect,
    verify,
)
from tests.wire_client import WireClient

PARTITIONS = 3
RATE = 300  # values per second, spread over the partitions
LONG_RUN = 30_000  # a bound for scenarios that stop their recorder themselves (100 s at RATE)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, zookeeper: str) -> Iterator[FaultCluster]:
    with FaultCluster(tmp_path_factory.mktemp("faults"), chroot_connect(zookeeper, "logq-faults")) as c:
        yield c.start()


def run(cluster: FaultCluster, queue: str, count: int) -> tuple[LeaderEpochWatcher, AckedRecorder]:
    """A new RF 3 queue (min.insync.replicas 2), a watcher of its partition states, and a recorder that
    sends ``count`` values at RATE per second."""
    cluster.start()  # verify() leaves every broker stopped
    cluster.create_queue(queue, PARTITIONS, rf=3, min_isr=2)
    cluster.wait_for_full_isr(queue, timeout=30)
    watcher = LeaderEpochWatcher(cluster.zk_connect, queue, PARTITIONS)
    return watcher, AckedRecorder(cluster.bootstrap, queue, PARTITIONS, count=count, rate=RATE)


def check(figures: Figures, recorder: AckedRecorder) -> None:
    assert figures.lost == 0
    assert figures.acknowledged + figures.failures + figures.unresolved == recorder.sent
    assert figures.acknowledged > 0


def more_acks(recorder: AckedRecorder, more: int = 150) -> None:
    """Wait until the recorder has ``more`` acknowledgements than now (it must still be sending)."""
    recorder.wait_for_acks(len(recorder.acks) + more, timeout=30)


def group_coordinator(cluster: FaultCluster, group: str) -> int:
    def find() -> int | None:
        with WireClient(cluster.brokers[cluster.running()[0]].bootstrap) as client:
            answer = client.call(m.FindCoordinatorRequest(key=group, key_type=0), 2)
        return answer.node_id if answer.error_code == ErrorCode.NONE else None

    return wait_for(find, f"the coordinator of {group}", timeout=30)


def followers_of(cluster: FaultCluster, queue: str, partition: int) -> list[int]:
    view = cluster.partitions(queue)[partition]
    return [b for b in view.replicas if b != view.leader]


def test_kill_leader(cluster: FaultCluster) -> None:
    """SIGKILL the leader of partition 0 three times, each time after the cluster healed."""
    queue = "kill-leader"
    watcher, recorder = run(cluster, queue, LONG_RUN)  # stopped once the faults are over
    with watcher, recorder:
        for _ in range(3):
            more_acks(recorder)
            victim = cluster.leader_of(queue, 0)
            cluster.kill(victim)
            cluster.wait_for_leader_change(queue, 0, victim, timeout=20)
            cluster.restart(victim)
            cluster.wait_for_full_isr(queue, timeout=30)
        more_acks(recorder)  # every fault is followed by acknowledgements: recovery times exist
        figures = verify(cluster, queue, recorder, watcher)
    check(figures, recorder)
    assert figures.time_to_recover is not None
    assert figures.time_to_recover < cluster.session_timeout_ms / 1000 + 3


def test_pause_leader_zombie(cluster: FaultCluster) -> None:
    """SIGSTOP the leader past its session timeout; after SIGCONT it must not acknowledge anything in its
    old epoch (its followers have moved to the new leader)."""
    queue, count = "zombie", 1800
    watcher, recorder = run(cluster, queue, count)
    with watcher, recorder:
        recorder.wait_for_acks(200, timeout=20)
        zombie = cluster.leader_of(queue, 0)
        cluster.pause(zombie)
        cluster.wait_for_leader_change(queue, 0, zombie, timeout=20)
        time.sleep(0.5)
        cluster.resume(zombie)
        # At once after waking, before it has read its session's end: an acks=all write sent straight
        # to it is never acknowledged.
        with WireClient(cluster.brokers[zombie].bootstrap, timeout=15) as client:
            answer = produce_at(client, queue, rb.build_batch([rb.Record(b"zombie-write")]), acks=-1)
        assert answer.error_code != ErrorCode.NONE
        assert recorder.wait_done(timeout=60)
        figures = verify(cluster, queue, recorder, watcher)
    check(figures, recorder)


def test_zk_expire_broker(cluster: FaultCluster) -> None:
    """End the leader's ZooKeeper session while it runs (SIGUSR1): it stops leading, registers again and
    catches up as a follower or leads in a new epoch."""
    queue, count = "zk-expire", 1500
    watcher, recorder = run(cluster, queue, count)
    with watcher, recorder:
        recorder.wait_for_acks(200, timeout=20)
        victim = cluster.leader_of(queue, 0)
        before = cluster.registration(victim)
        assert before is not None
        cluster.expire_session(victim)
        after = cluster.wait_reregistered(victim, before, timeout=20)
        assert after.epoch > before.epoch
        assert recorder.wait_done(timeout=60)
        assert watcher.history[0][-1].leader_epoch > watcher.history[0][0].leader_epoch
        figures = verify(cluster, queue, recorder, watcher)
    check(figures, recorder)


def test_isr_to_leader_alone(cluster: FaultCluster) -> None:
    """aphyr 2013: the ISR shrinks to the leader alone, then the leader dies. acks=all is refused while
    the leader is alone (min.insync.replicas 2), and no out-of-sync follower takes over (no unclean
    election): the partition waits for its last in-sync replica and loses nothing."""
    queue, count = "leader-alone", 1500
    watcher, recorder = run(cluster, queue, count)
    with watcher, recorder:
        recorder.wait_for_acks(200, timeout=20)
        leader = cluster.leader_of(queue, 0)
        followers = followers_of(cluster, queue, 0)
        for follower in followers:
            cluster.pause(follower)

        def alone() -> bool:
            return cluster.partitions(queue, leader)[0].isr == (leader,)

        deadline = time.monotonic() + 20
        while not alone() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert alone()
        with WireClient(cluster.brokers[leader].bootstrap) as client:
            refused = produce_at(client, queue, rb.build_batch([rb.Record(b"alone")]), acks=-1)
        assert refused.error_code == ErrorCode.NOT_ENOUGH_REPLICAS
        cluster.kill(leader)
        for follower in followers:
            cluster.resume(follower)
        time.sleep(cluster.session_timeout_ms / 1000 + 2)
        assert cluster.partitions(queue, followers[0])[0].leader == -1  # nobody else may lead
        cluster.restart(leader)
        assert recorder.wait_done(timeout=60)
        figures = verify(cluster, queue, recorder, watcher)
    check(figures, recorder)


def test_kill_all(cluster: FaultCluster) -> None:
    """SIGKILL every broker, then start them again in random order."""
    queue, count = "kill-all", 1500
    watcher, recorder = run(cluster, queue, count)
    with watcher, recorder:
        recorder.wait_for_acks(300, timeout=20)
        order = list(cluster.brokers)
        for broker_id in order:
            cluster.kill(broker_id)
        random.shuffle(order)
        for broker_id in order:
            time.sleep(random.uniform(0.2, 1.5))
            cluster.restart(broker_id)
        assert recorder.wait_done(timeout=90)
        figures = verify(cluster, queue, recorder, watcher)
    check(figures, recorder)


def test_fast_double_failover(cluster: FaultCluster) -> None:
    """SIGKILL the leader, and the new leader as soon as it is elected: the last ISR member leads."""
    queue, count = "double-failover", 1500
    watcher, recorder = run(cluster, queue, count)
    with watcher, recorder:
        recorder.wait_for_acks(200, timeout=20)
        first = cluster.leader_of(queue, 0)
        cluster.kill(first)
        second = cluster.wait_for_leader_change(queue, 0, first, timeout=20)
        cluster.kill(second)
        cluster.wait_for_leader_change(queue, 0, second, timeout=20)
        cluster.restart(first)
        cluster.restart(second)
        assert recorder.wait_done(timeout=60)
        figures = verify(cluster, queue, recorder, watcher)
    check(figures, recorder)


def test_rolling_restart(cluster: FaultCluster) -> None:
    """SIGTERM (controlled shutdown) and restart each broker in turn: leaderships move before a broker
    stops, so the producer barely notices."""
    queue = "rolling"
    watcher, recorder = run(cluster, queue, LONG_RUN)  # stopped once the faults are over
    with watcher, recorder:
        for broker_id in list(cluster.brokers):
            more_acks(recorder)
            assert cluster.stop(broker_id) == 0
            cluster.restart(broker_id)
            cluster.wait_for_full_isr(queue, timeout=30)
        more_acks(recorder)
        figures = verify(cluster, queue, recorder, watcher)
    check(figures, recorder)
    assert figures.failures == 0
    assert figures.longest_ack_gap < 2.0  # no session timeout to wait for


def test_group_coordinator_killed(cluster: FaultCluster) -> None:
    """Offsets committed to a group survive a SIGKILL of its coordinator: another replica of the group's
    __consumer_offsets partition takes over with every committed offset."""
    queue, count = "group-coordinator", 300
    watcher, recorder = run(cluster, queue, count)
    with watcher, recorder:
        assert recorder.wait_done(timeout=30)
        consumer = Consumer(
            {
                "bootstrap.servers": cluster.bootstrap,
                "group.id": "survivors",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            }
        )
        consumer.subscribe([queue])
        seen = 0
        deadline = time.monotonic() + 40
        while seen < len(recorder.acks) and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                seen += 1
        assert seen == len(recorder.acks)
        committed = consumer.commit(asynchronous=False)
        assert committed is not None
        consumer.close()
        expected = {(tp.partition, tp.offset) for tp in committed}
        coordinator = group_coordinator(cluster, "survivors")
        cluster.kill(coordinator)
        fresh = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": "survivors"})
        try:
            deadline = time.monotonic() + 30
            got: set[tuple[int, int]] = set()
            while got != expected and time.monotonic() < deadline:
                try:
                    answer = fresh.committed([TopicPartition(queue, p) for p in range(PARTITIONS)], 5)
                    got = {(tp.partition, tp.offset) for tp in answer}
                except Exception:  # coordinator moving: try again
                    time.sleep(0.2)
        finally:
            fresh.close()
        assert got == expected
        assert group_coordinator(cluster, "survivors") != coordinator
        figures = verify(cluster, queue, recorder, watcher)
    check(figures, recorder)
