"""A broker as a member of its cluster: follows the coordinator's metadata snapshots. The same code serves
both modes: standalone, the embedded coordinator's snapshots name this broker leader of everything (a
cluster of one), there is nothing to follow and nothing to hand over at shutdown.

On every snapshot (the coordinator's listener, called on the event loop):

- roles are updated at once (``ReplicaManager.update_leadership``): a partition whose leader is now
  another broker (or -1) stops being served before anything else runs, so produce, consumer fetches and
  ListOffsets for it answer NOT_LEADER_OR_FOLLOWER; offsets partitions no longer led are unloaded (their
  groups then get NOT_COORDINATOR); the replica fetchers follow the new leaders (``replica_fetcher``);
- then, in this member's task: the logs of new partitions assigned here are opened (created), the data of
  queues deleted from the metadata is removed, and each ``__consumer_offsets`` partition this broker
  has just come to lead is loaded (the existing load path); meanwhile its groups get
  COORDINATOR_LOAD_IN_PROGRESS.

A queue deleted and created again between two snapshots (its queue id changed) is kept out of the roles
until its old partitions are dropped and the new ones hosted, then its roles are taken.

A lost coordinator session (ZooKeeper's; the session listener's "lost") fences the broker: every
leadership ends at once and is taken back only from a snapshot that names this broker leader in a newer
leader epoch (see ``ReplicaManager.fence``). ``check_isrs`` drops lagging followers from the ISRs this
broker leads; ``controlled_shutdown`` (SIGTERM) moves its leaderships away before it stops. The logs of
queues deleted while this broker was down are deleted at startup (``ReplicaManager.remove_strays``); a
queue created again meanwhile has a new queue id, so hosting replaces its old log (``LogManager.create``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping

from logq.broker.partition import QueuePartition
from logq.broker.replica_fetcher import ReplicaFetchers
from logq.broker.replica_manager import ReplicaManager
from logq.coordinator import Coordinator, QueueMetadata
from logq.errors import CoordinationError
from logq.groups.offsets import OFFSETS_QUEUE, OffsetStore

log = logging.getLogger(__name__)

RETRY_S = 0.5


class ClusterMember:
    def __init__(
        self,
        coordinator: Coordinator,
        replicas: ReplicaManager,
        offsets: OffsetStore,
        fetchers: ReplicaFetchers,
        *,
        isr_check_interval_ms: int,
    ) -> None:
        self._coordinator = coordinator
        self._replicas = replicas
        self._offsets = offsets
        self._fetchers = fetchers
        self._isr_check_s = isr_check_interval_ms / 1000
        self._latest: Mapping[str, QueueMetadata] = coordinator.queues()
        # queues of the last applied snapshot -> (partition count, queue id)
        self._known: dict[str, tuple[int, str]] = {}
        self._to_load: set[int] = set()
        self._wake = asyncio.Event()
        self._shutting_down = False
        self._changed = asyncio.Event()  # set on every snapshot

    async def start(self) -> None:
        """Take the current snapshot: host its partitions, take leadership, load led offsets partitions."""
        self._coordinator.add_listener(self._on_metadata)
        self._coordinator.add_session_listener(self._on_session)
        self._on_metadata(self._coordinator.queues())
        self._wake.clear()
        await self._apply()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._apply()
            except Exception:
                log.exception("applying the cluster metadata failed; retrying")
                await asyncio.sleep(RETRY_S)
                self._wake.set()

    # --- from the coordinator (on the event loop) ---------------------------------------------------

    async def check_isrs(self) -> None:
        """The leader side of ISR shrinking: drop followers that stopped keeping up."""
        while True:
            await asyncio.sleep(self._isr_check_s)
            try:
                await self._replicas.shrink_lagging_isrs()
            except Exception:
                log.exception("checking the ISRs failed")

    async def stop(self) -> None:
        await self._fetchers.stop()

    async def controlled_shutdown(self, timeout_ms: int) -> None:
        """Move this broker's leaderships away before it stops (SIGTERM). The replica fetchers stop
        first, so no leader takes this broker back into an ISR; the controller then hands each
        partition it leads to another ISR member (new leader epoch) and drops it from every ISR.
        Returns once it leads only partitions that have no other in-sync copy, or after ``timeout_ms``."""
        self._shutting_down = True
        await self._fetchers.stop()
        try:
            await self._coordinator.announce_shutdown()
        except CoordinationError as exc:
            log.warning("controlled shutdown: cannot reach the controller (%s); stopping anyway", exc)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_ms / 1000
        movable = self._movable()
        if not movable:
            return  # nothing another replica could take over (a cluster of one, or no other in sync)
        while movable and loop.time() < deadline:
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), max(deadline - loop.time(), 0))
            movable = self._movable()
        if movable:
            log.warning(
                "controlled shutdown: still leading %d partitions after %d ms", len(movable), timeout_ms
            )
        else:
            log.info("controlled shutdown: leaderships moved away")

    def _movable(self) -> set[QueuePartition]:
        """Led partitions with another live in-sync replica, not shutting down itself, to take over."""
        live = {b.broker_id for b in self._coordinator.brokers()} - self._coordinator.shutting_down()
        me = self._coordinator.broker_id
        out = set()
        for queue, partition in self._replicas.leading():
            meta = self._latest.get(queue)
            if meta is None or partition >= len(meta.partitions):
                continue
            if any(r != me and r in live for r in meta.partitions[partition].isr):
                out.add((queue, partition))
        return out

    def _replaced(self, name: str, meta: QueueMetadata) -> bool:
        """Deleted and created again since the last applied snapshot: the old log is still here."""
        known = self._known.get(name)
        return known is not None and known[1] != meta.queue_id

    def _on_metadata(self, queues: Mapping[str, QueueMetadata]) -> None:
        self._latest = queues
        self._changed.set()
        settled = {name: meta for name, meta in queues.items() if not self._replaced(name, meta)}
        gained, lost = self._replicas.update_leadership(settled, self._coordinator.state_is_current)
        if not self._shutting_down:
            self._fetchers.update(self._replicas.following())
        self._unload(lost)
        self._to_load |= {p for q, p in gained if q == OFFSETS_QUEUE}
        _log_leadership(gained, lost)
        self._check_offsets_partitions(queues)
        self._wake.set()

    def _on_session(self, state: str) -> None:
        if state != "lost":
            return
        lost = self._replicas.fence()
        self._unload(lost)
        log.warning(
            "coordinator session lost: no longer leading %d partitions until the controller gives them a "
            "new leader epoch",
            len(lost),
        )

    def _unload(self, lost: set[QueuePartition]) -> None:
        for queue, partition in lost:
            if queue == OFFSETS_QUEUE:
                self._to_load.discard(partition)
                if partition < self._offsets.partitions:
                    self._offsets.unload(partition)

    def _check_offsets_partitions(self, queues: Mapping[str, QueueMetadata]) -> None:
        meta = queues.get(OFFSETS_QUEUE)
        if meta is not None and len(meta.partitions) != self._offsets.partitions:
            log.error(
                "%s has %d partitions but this broker's offsets.topic.num.partitions is %d: groups may be "
                "coordinated by the wrong broker",
                OFFSETS_QUEUE,
                len(meta.partitions),
                self._offsets.partitions,
            )

    # --- the member's task ------------------------------------------------------------------------

    async def _apply(self) -> None:
        queues = self._latest
        replaced = False
        for name, (partitions, _) in sorted(self._known.items()):
            meta = queues.get(name)
            if meta is None:
                await self._replicas.drop(name, partitions)
                log.info("queue %s was deleted: removed its partitions hosted here", name)
            elif self._replaced(name, meta):
                await self._replicas.drop(name, partitions)
                log.info("queue %s was deleted and created again: removed its old partitions", name)
                replaced = True
        self._known = {name: (len(meta.partitions), meta.queue_id) for name, meta in queues.items()}
        await self._replicas.host(queues)
        if replaced:
            self._on_metadata(self._latest)  # now the new queue's roles (from the newest snapshot)
        if not self._shutting_down:
            self._fetchers.update(self._replicas.following())
        loaded = records = 0
        for partition in sorted(self._to_load):
            if partition >= self._offsets.partitions:
                self._to_load.discard(partition)
                continue
            if not self._replicas.is_leader(OFFSETS_QUEUE, partition):
                self._to_load.discard(partition)
                continue
            led = self._replicas.partition(OFFSETS_QUEUE, partition)
            if led is None or led.log is None:
                continue  # hosted by the next round
            replayed = await self._offsets.load(partition)
            if self._replicas.is_leader(OFFSETS_QUEUE, partition):
                self._to_load.discard(partition)
                loaded, records = loaded + 1, records + replayed
                log.debug("loaded %s partition %d: %d records", OFFSETS_QUEUE, partition, replayed)
            else:  # lost it while loading
                self._offsets.unload(partition)
        if loaded:
            log.info("loaded %d partition(s) of %s: %d records", loaded, OFFSETS_QUEUE, records)
        if self._to_load:
            await asyncio.sleep(RETRY_S)
            self._wake.set()


def _log_leadership(gained: set[QueuePartition], lost: set[QueuePartition], *, each_up_to: int = 20) -> None:
    """A line per change, or a summary when many partitions change at once (a start)."""
    if len(gained) + len(lost) > each_up_to:
        log.info("leading %d more partitions, %d fewer", len(gained), len(lost))
        return
    for queue, partition in sorted(gained | lost):
        log.info(
            "partition %s-%d: %s",
            queue,
            partition,
            "leading" if (queue, partition) in gained else "no longer leading",
        )
