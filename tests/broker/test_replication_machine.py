"""A hypothesis state machine over the replication core (logq.testing.cluster): three brokers, one
partition with three replicas and min.insync.replicas 2; random acks=all appends, follower fetches, ISR
shrinks, brokers cut off from the coordinator (fenced) and back, and clean leader elections (from the
ISR, as the controller makes them). The invariant: no acknowledged batch is ever lost or changed, on the
leader the controller names."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from logq import batch as rb
from logq.broker.partition import Origin
from logq.errors import LogqError
from logq.segments import AppendInfo
from logq.testing import FakeClock, make_batch
from logq.testing.cluster import FakeCoordinator, InProcessBroker

BROKERS = (1, 2, 3)
LAG_MS = 10_000


class ReplicationMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="replication-"))
        self.loop = asyncio.new_event_loop()
        self.clock = FakeClock()
        self.coordinator = FakeCoordinator(list(BROKERS), min_insync_replicas=2)
        self.coordinator.create_queue("q", 1)
        self.brokers = {
            i: InProcessBroker(
                self.tmp / f"b{i}", i, self.coordinator, clock=self.clock, replica_lag_time_max_ms=LAG_MS
            )
            for i in BROKERS
        }
        for broker in self.brokers.values():
            self.loop.run_until_complete(broker.start())
        self.tag = 0
        self.waiting: list[tuple[asyncio.Task[None], int, AppendInfo]] = []
        self.acked: dict[int, int] = {}  # tag -> offset, for every acknowledged append

    def teardown(self) -> None:
        for task, _, _ in self.waiting:
            task.cancel()
        self.loop.run_until_complete(asyncio.sleep(0))
        for broker in self.brokers.values():
            broker.close()
        self.loop.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _settle(self) -> None:
        for _ in range(5):
            self.loop.run_until_complete(asyncio.sleep(0))
        still = []
        for task, tag, info in self.waiting:
            if not task.done():
                still.append((task, tag, info))
            elif task.exception() is None:
                self.acked[tag] = info.base_offset
        self.waiting = still

    @rule(broker=st.sampled_from(BROKERS))
    def produce(self, broker: int) -> None:
        """A client writes to a broker that believes it leads (a fenced one refuses)."""
        partition = self.brokers[broker].partition("q", 0)
        if not partition.is_leader:
            return
        self.tag += 1
        try:
            info = partition.append_as_leader(make_batch(1, tag=self.tag), acks=-1, origin=Origin.CLIENT)
        except LogqError:
            return  # refused up front: never acknowledged
        task = self.loop.create_task(partition.wait_acknowledged(info, acks=-1, timeout_ms=3_600_000))
        self.waiting.append((task, self.tag, info))
        self._settle()

    @rule(follower=st.sampled_from(BROKERS))
    def fetch(self, follower: int) -> None:
        """A follower's fetcher runs one round against the leader it follows (if it can reach it)."""
        me = self.brokers[follower]
        state = me.partition("q", 0).followed_state()
        if state is None or me.cut_off:
            return
        self.loop.run_until_complete(me.replicate_from(self.brokers[state.leader], "q", 0))
        self._settle()

    @rule()
    def shrink_isr(self) -> None:
        """Time passes: the leader drops followers that did not keep up."""
        self.clock.advance(LAG_MS + 1)
        for broker in self.brokers.values():
            assert broker.replicas is not None
            self.loop.run_until_complete(broker.replicas.shrink_lagging_isrs())
        self._settle()

    @precondition(lambda self: sum(b.cut_off for b in self.brokers.values()) < 1)
    @rule(broker=st.sampled_from(BROKERS))
    def cut_off(self, broker: int) -> None:
        """A broker loses its coordinator session (and its followers stop reaching it): it is fenced, and
        the controller elects another leader from the ISR if it led, dropping it from the ISR."""
        self.brokers[broker].cut_off_from_coordinator()
        state = self.coordinator.state("q", 0)
        rest = [r for r in state.isr if r != broker]
        if state.leader == broker:
            self.coordinator.elect("q", 0, leader=rest[0] if rest else -1, isr=rest or state.isr)
        elif broker in state.isr and rest:
            self.coordinator.set_isr("q", 0, rest)
        self._settle()

    @rule(broker=st.sampled_from(BROKERS))
    def reconnect(self, broker: int) -> None:
        if self.brokers[broker].cut_off:
            self.brokers[broker].reconnect()
            state = self.coordinator.state("q", 0)
            if state.leader == -1 and broker in state.isr:
                self.coordinator.elect("q", 0, leader=broker)  # the last ISR member comes back
            self._settle()

    @rule(data=st.data())
    def elect(self, data: st.DataObject) -> None:
        """A clean leader election (a preferred leader, a controlled shutdown): from the ISR only."""
        state = self.coordinator.state("q", 0)
        live = [r for r in state.isr if not self.brokers[r].cut_off]
        if not live:
            return
        self.coordinator.elect("q", 0, leader=data.draw(st.sampled_from(live)))
        self._settle()

    @invariant()
    def no_acknowledged_batch_is_lost_or_changed(self) -> None:
        leader = self.coordinator.state("q", 0).leader
        if leader < 0 or self.brokers[leader].cut_off:
            return
        plog = self.brokers[leader].partition("q", 0).log
        assert plog is not None
        for tag, offset in self.acked.items():
            view = plog.read(offset, 1)
            assert len(view) > 0, f"acknowledged batch {tag} at offset {offset} is gone"
            header = rb.parse_header(view)
            record = rb.decode_records(view[rb.HEADER_SIZE : header.size], header)[0]
            assert (header.base_offset, (record.value or b"")[:6]) == (offset, f"{tag:06d}".encode())


ReplicationMachine.TestCase.settings = settings(
    max_examples=40, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestReplicationMachine = ReplicationMachine.TestCase
