"""Replica placement and leader choice: pure functions, no I/O.

``assign_replicas`` is Kafka's rack-unaware placement (``AdminUtils.assignReplicasToBrokersRackUnaware``):
the first replica of partition p goes to broker ``(p + start) % n`` over the sorted broker list, so
leaders are spread evenly; each further replica is shifted from the first by an amount that grows every
``n`` partitions, so followers are spread evenly too and no broker pair takes all the copies of another.

``initial_state`` and ``next_state`` are the controller's rules for a partition's leader and ISR:

- the preferred leader is the first replica of the assignment;
- a new leader is the first replica, in assignment order, that is alive and in the ISR (clean election);
- with no live ISR member the partition has no leader (-1) and keeps its last ISR, so a broker of that
  ISR that comes back takes the lead again; a broker outside it never does, unless unclean election is on;
- the controller removes dead brokers from an ISR but never adds a broker back: a follower rejoins the
  ISR through its leader once it has caught up (replication);
- a broker in a controlled shutdown hands each leadership to the next live ISR member (new leader
  epoch) and leaves every ISR, unless it is the last member: then the partition stays as it is (the
  broker then stops, and the partition waits for it, as after a crash);
- preferred-leader election (``preferred_state``, run periodically): a partition led by another broker
  while its preferred leader is alive and in the ISR moves back to it (new leader epoch), so leadership
  spreads again after failovers and rolling restarts.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

NO_LEADER = -1


def assign_replicas(
    partitions: int,
    replication_factor: int,
    brokers: Sequence[int],
    *,
    start_index: int | None = None,
    replica_shift: int | None = None,
    rng: random.Random | None = None,
) -> list[tuple[int, ...]]:
    """The replicas of each partition, first replica = preferred leader.

    ``start_index`` and ``replica_shift`` are drawn at random (as Kafka does, so that many small queues
    do not all lead on the lowest broker id) unless given.
    """
    ids = sorted(set(brokers))
    n = len(ids)
    if replication_factor < 1:
        raise ValueError(f"replication factor must be at least 1, not {replication_factor}")
    if replication_factor > n:
        raise ValueError(f"replication factor {replication_factor} is larger than {n} brokers")
    if partitions < 0:
        raise ValueError(f"partitions must not be negative, not {partitions}")
    rng = rng or random.Random()
    start = rng.randrange(n) if start_index is None else start_index % n
    shift = rng.randrange(n) if replica_shift is None else replica_shift
    out: list[tuple[int, ...]] = []
    for p in range(partitions):
        if p > 0 and p % n == 0:
            shift += 1
        first = (p + start) % n
        replicas = [ids[first]]
        for j in range(replication_factor - 1):
            replicas.append(ids[(first + 1 + (shift + j) % (n - 1)) % n])
        out.append(tuple(replicas))
    return out


def preferred_leader(replicas: Sequence[int]) -> int:
    return replicas[0] if replicas else NO_LEADER


def choose_leader(replicas: Sequence[int], isr: Collection[int], live: Collection[int]) -> int:
    """The first replica, in assignment order, that is both in the ISR and alive; -1 if none."""
    return next((r for r in replicas if r in isr and r in live), NO_LEADER)


@dataclass(frozen=True, slots=True)
class LeaderAndIsr:
    leader: int
    leader_epoch: int
    isr: tuple[int, ...]


def initial_state(replicas: Sequence[int], live: Collection[int]) -> LeaderAndIsr:
    """A new partition: every live replica is in sync (all logs are empty); the first one leads.

    With no live replica the partition starts leaderless with the whole assignment as its ISR (every
    replica is equally empty), so whichever comes first takes the lead."""
    isr = tuple(r for r in replicas if r in live)
    if not isr:
        return LeaderAndIsr(NO_LEADER, 0, tuple(replicas))
    return LeaderAndIsr(isr[0], 0, isr)


def _step(
    current: LeaderAndIsr, replicas: Sequence[int], live: Collection[int], unclean: bool
) -> LeaderAndIsr:
    if current.leader != NO_LEADER and current.leader in live:
        # The leader stays (same epoch); dead followers leave the ISR.
        isr = tuple(r for r in current.isr if r in live)
        if current.leader not in isr:  # defensive: a leader is always in its ISR
            isr = (current.leader, *isr)
        return current if isr == current.isr else LeaderAndIsr(current.leader, current.leader_epoch, isr)
    live_isr = tuple(r for r in current.isr if r in live)
    leader = choose_leader(replicas, live_isr, live)
    if leader == NO_LEADER and live_isr:
        leader = live_isr[0]  # an ISR member outside the assignment (not written by logq): still clean
    if leader != NO_LEADER:
        return LeaderAndIsr(leader, current.leader_epoch + 1, live_isr)
    if unclean:
        leader = next((r for r in replicas if r in live), NO_LEADER)
        if leader != NO_LEADER:
            return LeaderAndIsr(leader, current.leader_epoch + 1, (leader,))
    if current.leader == NO_LEADER:
        return current  # still offline; keep the last ISR
    return LeaderAndIsr(NO_LEADER, current.leader_epoch + 1, current.isr)


def _shutdown_step(
    current: LeaderAndIsr, replicas: Sequence[int], live: Collection[int], shutting: Collection[int]
) -> LeaderAndIsr:
    staying = tuple(r for r in current.isr if r in live and r not in shutting)
    if not staying:
        return current  # the last in-sync copy: it cannot be handed over
    if current.leader in shutting:
        leader = choose_leader(replicas, staying, live)
        if leader == NO_LEADER:
            leader = staying[0]
        return LeaderAndIsr(leader, current.leader_epoch + 1, staying)
    if current.leader == NO_LEADER or len(staying) == len(current.isr):
        return current
    return LeaderAndIsr(current.leader, current.leader_epoch, staying)


def next_state(
    current: LeaderAndIsr,
    replicas: Sequence[int],
    live: Collection[int],
    *,
    bounced: Collection[int] = (),
    shutting: Collection[int] = (),
    unclean: bool = False,
) -> LeaderAndIsr | None:
    """The partition's new leader and ISR given the live brokers, or None when nothing changes.

    ``bounced`` are live brokers that restarted since the controller last looked (their registration is
    newer): they are treated as failed and then back, so a restarted leader gets a new leader epoch and a
    restarted follower leaves the ISR. ``shutting`` are live brokers in a controlled shutdown."""
    state = current
    if bounced:
        state = _step(state, replicas, [b for b in live if b not in bounced], unclean)
    state = _step(state, replicas, live, unclean)
    if shutting:
        state = _shutdown_step(state, replicas, live, shutting)
    return None if state == current else state


def preferred_state(
    current: LeaderAndIsr, replicas: Sequence[int], live: Collection[int], shutting: Collection[int] = ()
) -> LeaderAndIsr | None:
    """The partition led by its preferred leader again, or None when it is, or cannot be: the preferred
    leader must be alive, in the ISR and not shutting down, and the partition must have a leader now
    (a leaderless partition is the controller's ordinary election)."""
    preferred = preferred_leader(replicas)
    if (
        current.leader in (NO_LEADER, preferred)
        or preferred not in current.isr
        or preferred not in live
        or preferred in shutting
    ):
        return None
    return LeaderAndIsr(preferred, current.leader_epoch + 1, current.isr)


def leader_counts(assignment: Sequence[Sequence[int]]) -> Mapping[int, int]:
    """How many partitions each broker is the preferred leader of."""
    counts: dict[int, int] = {}
    for replicas in assignment:
        if replicas:
            counts[replicas[0]] = counts.get(replicas[0], 0) + 1
    return counts
