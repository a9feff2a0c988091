"""Followers: copy the partitions this broker follows from their leaders.

One task per leader broker fetches all the partitions this broker follows from it, with Fetch v11 and
``replica_id`` = this broker (the leader then reads up to its log end and counts the fetch offset as this
replica's log end). Each partition starts, and starts again after every leader change, by truncating
its log by leader epoch (KIP-101, with KIP-279's loop): it asks the leader, with OffsetForLeaderEpoch,
where the latest epoch of its own log ended in the leader's log, and cuts its log there. A follower
therefore never keeps a tail the new leader does not have (the old leader's unacknowledged writes),
and never cuts data the leader has (truncating to the high watermark, Kafka's first design, loses
acknowledged messages when leaders change twice in a row).

Fetched batches are appended unchanged (``Partition.append_as_follower``). With
``log.fsync.before.ack`` they are fsynced before the next fetch, whose offset tells the leader that
this replica holds them: so acks=all means "fsynced on every ISR member".

Each leader is reached at its address on the inter-broker listener (``listener``: its registration in
ZooKeeper lists every endpoint) with ``security``, this broker's credentials there
(``inter_broker.py``), so the leader sees the broker principal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from logq.broker.partition import Partition, QueuePartition
from logq.broker.replica_manager import ReplicaManager
from logq.client.connection import BrokerConnection
from logq.client.security import SecuritySettings
from logq.coordinator import BrokerInfo, PartitionState
from logq.error_codes import ErrorCode
from logq.errors import AuthenticationError, LogqError
from logq.protocol import messages as m
from logq.segments import PartitionLog

log = logging.getLogger(__name__)

RETRY_S = 0.2
IDLE_S = 0.05
FETCH_VERSION = 11
EPOCH_VERSION = 3


@dataclass(slots=True)
class _Follow:
    leader_epoch: int
    truncate: bool = True  # truncate by leader epoch before the next fetch
    retry_at: float = 0.0


class ReplicaFetchers:
    def __init__(
        self,
        broker_id: int,
        replicas: ReplicaManager,
        brokers: Callable[[], list[BrokerInfo]],
        *,
        fsync: bool,
        wait_max_ms: int,
        max_bytes: int,
        listener: str = "",
        security: SecuritySettings | None = None,
    ) -> None:
        self._broker_id = broker_id
        self._listener = listener  # "" : each broker's registered inter-broker address
        self._security = security
        self._replicas = replicas
        self._brokers = brokers
        self._fsync = fsync
        self._wait_max_ms = wait_max_ms
        self._max_bytes = max_bytes
        self._by_leader: dict[int, dict[QueuePartition, _Follow]] = {}
        self._tasks: dict[int, asyncio.Task[None]] = {}

    def update(self, following: Mapping[QueuePartition, PartitionState]) -> None:
        """Follow exactly ``following``: a partition whose leader or leader epoch changed truncates again."""
        wanted: dict[int, dict[QueuePartition, int]] = {}
        for key, state in following.items():
            wanted.setdefault(state.leader, {})[key] = state.leader_epoch
        for leader in list(self._by_leader):
            if leader not in wanted:
                del self._by_leader[leader]
                task = self._tasks.pop(leader, None)
                if task is not None:
                    task.cancel()
        for leader, partitions in wanted.items():
            current = self._by_leader.setdefault(leader, {})
            for key in [k for k in current if k not in partitions]:
                del current[key]
            for key, epoch in partitions.items():
                if key not in current or current[key].leader_epoch != epoch:
                    current[key] = _Follow(epoch)
            task = self._tasks.get(leader)
            if task is None or task.done():
                self._tasks[leader] = asyncio.get_running_loop().create_task(
                    self._run(leader), name=f"replica-fetcher-{leader}"
                )

    async def stop(self) -> None:
        self._by_leader.clear()
        tasks, self._tasks = list(self._tasks.values()), {}
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # --- one leader --------------------------------------------------------------------------------

    async def _run(self, leader: int) -> None:
        connection: BrokerConnection | None = None
        failing = False  # log the first failure of a streak only: a dead leader fails every round
        try:
            while self._by_leader.get(leader):
                try:
                    if connection is None:
                        connection = await self._connect(leader)
                        if connection is None:
                            await asyncio.sleep(RETRY_S)
                            continue
                    await self._round(connection, leader)
                    failing = False
                except (LogqError, OSError, TimeoutError) as exc:
                    # Refused credentials are a configuration error: say so louder than a dead leader.
                    first = logging.WARNING if isinstance(exc, AuthenticationError) else logging.INFO
                    log.log(
                        logging.DEBUG if failing else first,
                        "replica fetcher for broker %d: %s; retrying every %g s",
                        leader, exc, RETRY_S,
                    )  # fmt: skip
                    failing = True
                    await _close(connection)
                    connection = None
                    await asyncio.sleep(RETRY_S)
                except Exception:  # a bug must not stop replication for good: log it, start over
                    log.exception("replica fetcher for broker %d failed; retrying", leader)
                    await _close(connection)
                    connection = None
                    await asyncio.sleep(RETRY_S)
        finally:
            if connection is not None:
                await connection.close()

    async def _connect(self, leader: int) -> BrokerConnection | None:
        info = next((b for b in self._brokers() if b.broker_id == leader), None)
        if info is None:
            return None  # not registered (yet, or any more): the metadata will move the partitions
        address = info.address_for(self._listener)
        if address is None:
            raise LogqError(f"broker {leader} has no listener {self._listener} (inter.broker.listener.name)")
        return await BrokerConnection.open(
            *address, client_id=f"logq-replica-{self._broker_id}", security=self._security
        )

    async def _round(self, connection: BrokerConnection, leader: int) -> None:
        follows = self._by_leader.get(leader, {})
        now = asyncio.get_running_loop().time()
        ready = {
            key: f for key, f in follows.items() if f.retry_at <= now and self._follower(key) is not None
        }
        truncating = {key: f for key, f in ready.items() if f.truncate}
        if truncating:
            await self._truncate(connection, truncating)
        fetching = {key: f for key, f in ready.items() if not f.truncate}
        if not fetching:
            await asyncio.sleep(IDLE_S)
            return
        await self._fetch(connection, fetching)

    # --- truncation by leader epoch ----------------------------------------------------------------

    async def _truncate(self, connection: BrokerConnection, follows: dict[QueuePartition, _Follow]) -> None:
        asked: dict[QueuePartition, int] = {}
        topics: dict[str, list[m.OffsetForLeaderPartition]] = {}
        for key, follow in follows.items():
            partition = self._follower(key)
            if partition is None or partition.log is None:
                continue
            asked[key] = partition.log.latest_leader_epoch
            if asked[key] < 0:
                follow.truncate = False  # no epoch in this log (empty, or written without epochs): fetch
                continue
            topics.setdefault(key[0], []).append(
                m.OffsetForLeaderPartition(
                    partition=key[1], current_leader_epoch=follow.leader_epoch, leader_epoch=asked[key]
                )
            )
        if not topics:
            return
        request = m.OffsetForLeaderEpochRequest(
            replica_id=self._broker_id,
            topics=[m.OffsetForLeaderTopic(topic=t, partitions=ps) for t, ps in topics.items()],
        )
        response = await connection.request(request, EPOCH_VERSION)
        now = asyncio.get_running_loop().time()
        for topic in response.topics:
            for answer in topic.partitions:
                key = (topic.topic, answer.partition)
                f = follows.get(key)
                partition = self._follower(key)
                if f is None or partition is None or partition.log is None or key not in asked:
                    continue  # not following it any more: the answer is void
                if self._stale(key, f):
                    continue  # the partition moved while the question was out: the answer is void
                plog = partition.log
                if answer.error_code != ErrorCode.NONE:
                    f.retry_at = now + RETRY_S  # not (yet) the leader in our epoch: metadata will say
                    continue
                offset, done = truncation_point(plog, asked[key], answer.leader_epoch, answer.end_offset)
                if offset <= plog.log_end_offset:
                    if offset < plog.log_end_offset:
                        log.info(
                            "%s-%d: truncating to %d by leader epoch (asked epoch %d; leader answered "
                            "epoch %d ending at %d)",
                            key[0], key[1], offset, asked[key], answer.leader_epoch, answer.end_offset,
                        )  # fmt: skip
                    # On the loop, with no await since the checks above: leadership cannot arrive in
                    # between (rare, and a few milliseconds of fsync).
                    partition.truncate_as_follower(offset)
                f.truncate = not done

    # --- fetch ---------------------------------------------------------------------------------------

    async def _fetch(self, connection: BrokerConnection, follows: dict[QueuePartition, _Follow]) -> None:
        if self._fsync:
            # A fetch offset tells the leader this replica holds everything below it, fsynced: flush
            # whatever an interrupted round left unflushed before saying so.
            unflushed = [
                plog
                for key in follows
                if (partition := self._follower(key)) is not None
                and (plog := partition.log) is not None
                and plog.durable_offset < plog.log_end_offset
            ]
            if unflushed:
                await asyncio.to_thread(_flush_all, unflushed)
        topics: dict[str, list[m.FetchPartition]] = {}
        for key, follow in follows.items():
            partition = self._follower(key)
            if partition is None or partition.log is None:
                continue  # the queue was deleted meanwhile, or the partition is led here now
            plog = partition.log
            topics.setdefault(key[0], []).append(
                m.FetchPartition(
                    partition=key[1],
                    current_leader_epoch=follow.leader_epoch,
                    fetch_offset=plog.log_end_offset,
                    log_start_offset=plog.durable_log_start,  # the leader's DeleteRecords counts on it
                    partition_max_bytes=self._max_bytes,
                )
            )
        request = m.FetchRequest(
            replica_id=self._broker_id,
            max_wait_ms=self._wait_max_ms,
            min_bytes=1,
            max_bytes=self._max_bytes * max(len(follows), 1),
            isolation_level=0,
            session_id=0,
            session_epoch=-1,
            topics=[m.FetchTopic(topic=t, partitions=ps) for t, ps in topics.items()],
            forgotten_topics_data=[],
            rack_id="",
        )
        response = await connection.request(request, FETCH_VERSION, timeout_s=self._wait_max_ms / 1000 + 30)
        now = asyncio.get_running_loop().time()
        written: list[PartitionLog] = []
        for topic in response.responses:
            for data in topic.partitions:
                key = (topic.topic, data.partition_index)
                f = follows.get(key)
                partition = self._follower(key)
                if f is None or partition is None or partition.log is None or self._stale(key, f):
                    continue  # the partition moved while the fetch was out
                if data.error_code == ErrorCode.NONE:
                    try:
                        partition.append_as_follower(data.records, data.high_watermark, data.log_start_offset)
                    except LogqError as exc:
                        log.error("%s: cannot append replicated data: %s", partition.name, exc)
                        f.truncate, f.retry_at = True, now + RETRY_S
                        continue
                    if data.records:
                        written.append(partition.log)
                elif data.error_code == ErrorCode.OFFSET_OUT_OF_RANGE:
                    self._out_of_range(partition, f, data)
                    f.retry_at = now + RETRY_S
                else:  # not the leader, fenced or unknown epoch: wait for the metadata to catch up
                    f.retry_at = now + RETRY_S
        if written and self._fsync:
            await asyncio.to_thread(_flush_all, written)

    def _stale(self, key: QueuePartition, f: _Follow) -> bool:
        return all(follows.get(key) is not f for follows in self._by_leader.values())

    def _follower(self, key: QueuePartition) -> Partition | None:
        """The partition, if this broker follows it now (hosted, with its log open)."""
        partition = self._replicas.partition(*key)
        return partition if partition is not None and partition.followed_state() is not None else None

    @staticmethod
    def _out_of_range(partition: Partition, f: _Follow, data: m.FetchPartitionData) -> None:
        plog = partition.log
        assert plog is not None
        if 0 <= plog.log_end_offset < data.log_start_offset:
            # The leader's retention (or compaction) deleted everything this replica lacks: start again
            # at the leader's log start (on the loop: rare, and a few milliseconds of fsync).
            partition.restart_as_follower(data.log_start_offset)
        else:
            f.truncate = True  # the log ends past the leader's: truncate by epoch again


def _flush_all(logs: list[PartitionLog]) -> None:
    """fsync the logs a round wrote, in one worker-thread hop (the hop costs more than the loop)."""
    for plog in logs:
        plog.flush()


async def _close(connection: BrokerConnection | None) -> None:
    if connection is not None:
        await connection.close()


def truncation_point(plog: PartitionLog, asked: int, leader_epoch: int, leader_end: int) -> tuple[int, bool]:
    """Where to cut the follower's log given the leader's answer (Kafka's getOffsetTruncationState):
    (offset, whether truncation is complete). When the leader answers an older epoch than the one asked
    (it never had ours), cut at the end of our own copy of that epoch and ask again (KIP-279)."""
    end = plog.log_end_offset
    if leader_end < 0 or leader_epoch < 0:
        return end, True  # the leader knows no epoch: nothing to compare
    if leader_epoch == asked:
        return min(leader_end, end), True
    follower_epoch, follower_end = plog.end_offset_for_epoch(leader_epoch)
    if follower_epoch < 0:
        return min(leader_end, end), True
    if follower_epoch != leader_epoch:
        return follower_end, False
    return min(leader_end, follower_end), True
