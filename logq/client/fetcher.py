"""The consumer's fetch pipeline: per-partition positions, one Fetch in flight per leader, decoded records
buffered until ``poll`` hands them out, and ListOffsets for resets and offset look-ups.

A partition is fetched again as soon as its buffered records have all been handed out (Kafka's rule:
at most one completed fetch buffered per partition), so the next Fetch is in flight while the application
works on the records ``poll`` just returned. Positions advance as records are handed out, never when
they are fetched. A response is decoded on arrival (``decode_fetched``: one pass, no other per-record
work) because the next fetch offset comes out of that pass.

Errors per partition, as Kafka's fetcher: OFFSET_OUT_OF_RANGE resets the position as
``auto_offset_reset`` says (with a warning), or with ``"error"`` keeps an ``OffsetOutOfRangeError`` that
``poll`` raises until the application seeks; NOT_LEADER_OR_FOLLOWER, UNKNOWN_TOPIC_OR_PARTITION and the
other leadership errors refresh the metadata and go on; anything else is raised once by ``poll``.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from logq.client.cluster import Cluster, QueuePartition
from logq.client.connection import BrokerConnection
from logq.client.records import ConsumerRecord, decode_fetched
from logq.error_codes import ErrorCode
from logq.errors import (
    BrokerUnavailableError,
    ClientError,
    ClientTimeoutError,
    CorruptBatchError,
    LogqError,
    OffsetOutOfRangeError,
    UnknownQueueError,
    error_for_code,
)
from logq.protocol import messages as m

log = logging.getLogger(__name__)

E = ErrorCode
EARLIEST = -2  # ListOffsets' special timestamps
LATEST = -1
RESET_STRATEGIES = ("earliest", "latest", "error")
# Refresh the metadata and try again (docs/protocol.md, "Error codes and how clients react").
LEADERSHIP_ERRORS = frozenset(
    {
        E.NOT_LEADER_OR_FOLLOWER,
        E.UNKNOWN_TOPIC_OR_PARTITION,
        E.LEADER_NOT_AVAILABLE,
        E.REPLICA_NOT_AVAILABLE,
        E.KAFKA_STORAGE_ERROR,
        E.FENCED_LEADER_EPOCH,
        E.UNKNOWN_LEADER_EPOCH,
        E.OFFSET_NOT_AVAILABLE,
    }
)
RETRY_BACKOFF_S = 0.1


async def send_detached(
    cluster: Cluster, conn: BrokerConnection, body: Any, *, timeout_s: float | None = None
) -> Any:
    """``cluster.send`` in a task of its own that outlives the caller's cancellation: the answer (or the
    connection's failure) is still taken off the connection and retrieved, so cancelling a long poll or a
    parked JoinGroup never leaves a future whose exception nobody reads."""
    task = asyncio.ensure_future(cluster.send(conn, body, timeout_s=timeout_s))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        task.add_done_callback(_retrieve)
        raise


def _retrieve(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


class _Chunk:
    """The decoded records of one partition from one Fetch; ``index`` is the next one to hand out."""

    __slots__ = ("index", "next_offset", "records")

    def __init__(self, records: list[ConsumerRecord], next_offset: int) -> None:
        self.records = records
        self.index = 0
        self.next_offset = next_offset


class PartitionState:
    __slots__ = (
        "chunks", "epoch", "error", "fetch_offset", "high_watermark", "in_flight", "paused", "position",
        "reset", "tp",
    )  # fmt: skip

    def __init__(self, tp: QueuePartition) -> None:
        self.tp = tp
        self.position: int | None = None  # the next offset to hand out; None until known
        self.fetch_offset = -1  # the next offset to fetch (past what is buffered)
        self.chunks: collections.deque[_Chunk] = collections.deque()
        self.paused = False
        self.in_flight = False
        self.reset: str | None = None  # a reset strategy to apply (OFFSET_OUT_OF_RANGE), else None
        self.error: LogqError | None = None  # raised by poll
        self.epoch = 0  # bumped by every seek: an answer to an older fetch is dropped
        self.high_watermark = -1

    def set_position(self, offset: int) -> None:
        self.position = self.fetch_offset = offset
        self.chunks.clear()
        self.reset = None
        self.error = None
        self.epoch += 1

    @property
    def fetchable(self) -> bool:
        return (
            self.position is not None
            and not self.paused
            and not self.in_flight
            and not self.chunks
            and self.error is None
            and self.reset is None
        )


class Fetcher:
    def __init__(
        self,
        cluster: Cluster,
        *,
        fetch_min_bytes: int,
        fetch_max_wait_ms: int,
        fetch_max_bytes: int,
        max_partition_fetch_bytes: int,
        auto_offset_reset: str,
        on_data: Callable[[], None],
    ) -> None:
        self._cluster = cluster
        self.fetch_min_bytes = fetch_min_bytes
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self.fetch_max_bytes = fetch_max_bytes
        self.max_partition_fetch_bytes = max_partition_fetch_bytes
        self.auto_offset_reset = auto_offset_reset
        self._on_data = on_data
        self.states: dict[QueuePartition, PartitionState] = {}
        self._in_flight: dict[int, asyncio.Task[None]] = {}
        self._stale: set[str] = set()  # queues whose leaders must be looked up again
        self._metadata_task: asyncio.Task[None] | None = None
        self._turn = 0  # rotates which partition is served (and fetched) first
        self._closed = False

    # --- assignment and positions ------------------------------------------------------------------

    def assign(self, partitions: Iterable[QueuePartition]) -> None:
        """The partitions to fetch from now on; kept ones keep their position, buffer and pause."""
        self.states = {tp: self.states.get(tp) or PartitionState(tp) for tp in partitions}

    def assigned(self) -> list[QueuePartition]:
        return list(self.states)

    def state(self, tp: QueuePartition) -> PartitionState:
        state = self.states.get(tp)
        if state is None:
            raise ClientError(f"{tp.queue}/{tp.partition} is not assigned to this consumer")
        return state

    def seek(self, tp: QueuePartition, offset: int) -> None:
        if offset < 0:
            raise ValueError(f"offset must be >= 0, not {offset}")
        self.state(tp).set_position(offset)

    def positions(self) -> dict[QueuePartition, int]:
        """The known positions: the offset of the next record each partition will hand out."""
        return {tp: s.position for tp, s in self.states.items() if s.position is not None}

    def unpositioned(self) -> list[QueuePartition]:
        return [tp for tp, s in self.states.items() if s.position is None and s.error is None]

    # --- handing records out -----------------------------------------------------------------------

    def raise_error(self) -> None:
        """Raise a partition's pending error. OffsetOutOfRangeError stays until a seek; others are raised
        once."""
        for state in self.states.values():
            error = state.error
            if error is not None:
                if not isinstance(error, OffsetOutOfRangeError):
                    state.error = None
                raise error

    def drain(self, max_records: int) -> list[ConsumerRecord]:
        """Up to ``max_records`` buffered records, partition by partition, advancing the positions."""
        states = [s for s in self.states.values() if s.chunks and not s.paused]
        if not states:
            return []
        start = self._turn % len(states)
        self._turn += 1
        out: list[ConsumerRecord] = []
        need = max_records
        for state in states[start:] + states[:start]:
            chunks = state.chunks
            while chunks and need > 0:
                chunk = chunks[0]
                records = chunk.records
                index = chunk.index
                left = len(records) - index
                if left <= need:
                    if index == 0 and not out:
                        out = records  # the whole chunk: hand the decoded list itself out
                    else:
                        out += records[index:] if index else records
                    need -= left
                    chunks.popleft()
                    state.position = chunk.next_offset
                else:
                    end = index + need
                    out += records[index:end]
                    chunk.index = end
                    state.position = records[end - 1][2] + 1
                    need = 0
            if need <= 0:
                break
        return out

    # --- fetching ----------------------------------------------------------------------------------

    def kick(self) -> None:
        """Send a Fetch to every leader that has fetchable partitions and no Fetch in flight.

        A leader whose fetchable partitions are all caught up (at the high watermark) while others of
        its partitions still have records buffered is left alone until those drain: a Fetch of only
        caught-up partitions long-polls for fetch_max_wait_ms, and would hold back the next Fetch of the
        busy ones that long."""
        if self._closed:
            return
        by_node: dict[int, list[PartitionState]] = {}
        busy: set[int] = set()
        unknown: set[str] = set()
        queues = self._cluster.queues
        for tp, state in self.states.items():
            fetchable = state.fetchable
            if not fetchable and (state.paused or not state.chunks):
                continue
            info = queues.get(tp.queue)
            if tp.queue in self._stale or info is None or tp.partition >= info.partition_count:
                unknown.add(tp.queue)
                continue
            leader = info.partitions[tp.partition].leader
            if leader < 0:
                unknown.add(tp.queue)
            elif not fetchable:
                busy.add(leader)
            elif leader not in self._in_flight:
                by_node.setdefault(leader, []).append(state)
        if unknown:
            self._refresh_metadata(unknown)
        for node, found in by_node.items():
            if node in busy and all(0 <= s.high_watermark <= s.fetch_offset for s in found):
                continue
            shift = self._turn % len(found)  # rotate, so no partition is always last under the byte limits
            states = found[shift:] + found[:shift]
            for state in states:
                state.in_flight = True
            self._in_flight[node] = asyncio.create_task(self._fetch(node, states), name=f"logq-fetch-{node}")

    async def _fetch(self, node: int, states: list[PartitionState]) -> None:
        sent = [(s, s.epoch, s.fetch_offset) for s in states]
        try:
            by_queue: dict[str, list[m.FetchPartition]] = {}
            for state, _, offset in sent:
                by_queue.setdefault(state.tp.queue, []).append(
                    m.FetchPartition(
                        partition=state.tp.partition,
                        fetch_offset=offset,
                        partition_max_bytes=self.max_partition_fetch_bytes,
                    )
                )
            request = m.FetchRequest(
                max_wait_ms=self.fetch_max_wait_ms,
                min_bytes=self.fetch_min_bytes,
                max_bytes=self.fetch_max_bytes,
                topics=[m.FetchTopic(topic=q, partitions=ps) for q, ps in by_queue.items()],
            )
            conn = await self._cluster.connection(node)
            timeout = self._cluster.request_timeout_s + self.fetch_max_wait_ms / 1000
            answer: m.FetchResponse = await send_detached(self._cluster, conn, request, timeout_s=timeout)
            self._handle(answer, sent)
        except (BrokerUnavailableError, ClientTimeoutError) as exc:
            if self._closed:
                return
            log.info("fetch from broker %d failed (%s): refreshing metadata", node, exc)
            self._stale.update(s.tp.queue for s in states)
            await asyncio.sleep(RETRY_BACKOFF_S)
        except LogqError as exc:
            log.warning("fetch from broker %d failed: %s", node, exc)
            for state in states:
                state.error = exc
        finally:
            for state in states:
                state.in_flight = False
            if self._in_flight.get(node) is asyncio.current_task():
                del self._in_flight[node]
            if not self._closed:
                self._on_data()
                self.kick()

    def _handle(self, answer: m.FetchResponse, sent: list[tuple[PartitionState, int, int]]) -> None:
        found = {(t.topic, p.partition_index): p for t in answer.responses for p in t.partitions}
        for state, epoch, offset in sent:
            tp = state.tp
            data = found.get(tp)
            if data is None or self.states.get(tp) is not state or state.epoch != epoch:
                continue  # not answered, no longer assigned, or sought elsewhere meanwhile
            code = answer.error_code or data.error_code
            if code == E.NONE:
                state.high_watermark = data.high_watermark
                records = data.records
                if records:
                    records = memoryview(records)
                    try:
                        fetched = decode_fetched(records, tp.queue, tp.partition, offset)
                    except Exception as exc:  # a corrupt batch or compressed block
                        state.error = CorruptBatchError(
                            f"{tp.queue}/{tp.partition} at offset {offset}: {exc}"
                        )
                        continue
                    if fetched.next_offset > offset:
                        state.chunks.append(_Chunk(fetched.records, fetched.next_offset))
                        state.fetch_offset = fetched.next_offset
            elif code == E.OFFSET_OUT_OF_RANGE:
                self._out_of_range(state, offset)
            elif code in LEADERSHIP_ERRORS:
                log.info("fetch %s/%d: %s: refreshing metadata", tp.queue, tp.partition, E(code).name)
                self._stale.add(tp.queue)
            else:
                state.error = error_for_code(code, f"fetch {tp.queue}/{tp.partition}: {_name(code)}")

    def _out_of_range(self, state: PartitionState, offset: int) -> None:
        tp = state.tp
        state.chunks.clear()
        if self.auto_offset_reset == "error":
            state.position = state.fetch_offset = offset
            state.error = OffsetOutOfRangeError(
                f"{tp.queue}/{tp.partition}: offset {offset} is out of range and auto_offset_reset is "
                "'error': seek() to a valid offset"
            )
        else:  # a warning: the records between the old position and the new one are skipped or repeated
            log.warning(
                "%s/%d: offset %d is out of range: reading from the %s offset instead (auto_offset_reset)",
                tp.queue, tp.partition, offset, self.auto_offset_reset,
            )  # fmt: skip
            state.position = None
            state.reset = self.auto_offset_reset

    def _refresh_metadata(self, queues: set[str]) -> None:
        self._stale.update(queues)
        if self._metadata_task is None or self._metadata_task.done():
            self._metadata_task = asyncio.create_task(self._refresh_loop(), name="logq-consumer-metadata")

    async def _refresh_loop(self) -> None:
        while self._stale and not self._closed:
            names = set(self._stale)
            try:
                await self._cluster.refresh(names)
            except LogqError as exc:
                log.info("metadata refresh failed (%s)", exc)
                await asyncio.sleep(RETRY_BACKOFF_S * 5)
                continue
            self._stale -= names
            missing = {q for q in names if q not in self._cluster.queues}
            if missing:
                log.info("queue(s) %s not found: retrying", ", ".join(sorted(missing)))
                await asyncio.sleep(1.0)  # a queue being created, or a typo: keep looking, slowly
            self.kick()

    # --- positions from the log ------------------------------------------------------------------

    async def list_offsets(
        self, timestamps: Mapping[QueuePartition, int], *, timeout_s: float
    ) -> dict[QueuePartition, tuple[int, int]]:
        """ListOffsets: per partition, (offset, timestamp) for a timestamp (ms), EARLIEST or LATEST;
        (-1, -1) when no record is that recent."""
        pending = dict(timestamps)
        result: dict[QueuePartition, tuple[int, int]] = {}
        deadline = time.monotonic() + timeout_s
        while pending:
            by_node: dict[int, list[QueuePartition]] = {}
            for tp in sorted(pending):
                info = await self._cluster.queue(tp.queue)
                if not 0 <= tp.partition < info.partition_count:
                    raise UnknownQueueError(f"queue {tp.queue!r} has no partition {tp.partition}")
                by_node.setdefault(info.partitions[tp.partition].leader, []).append(tp)
            retry: list[LogqError] = []
            answers = await asyncio.gather(
                *(self._list_offsets_at(node, tps, pending) for node, tps in by_node.items()),
                return_exceptions=True,
            )
            for answer in answers:
                if isinstance(answer, BrokerUnavailableError | ClientTimeoutError):
                    retry.append(answer)
                    continue
                if isinstance(answer, BaseException):
                    raise answer
                for tp, (code, offset, timestamp) in answer.items():
                    if code == E.NONE:
                        result[tp] = (offset, timestamp)
                        del pending[tp]
                    elif code in LEADERSHIP_ERRORS:
                        retry.append(error_for_code(code))
                    else:
                        raise error_for_code(code, f"ListOffsets {tp.queue}/{tp.partition}: {_name(code)}")
            if pending:
                if time.monotonic() + RETRY_BACKOFF_S > deadline:
                    raise ClientTimeoutError(f"ListOffsets did not succeed in time: {retry[:1]}")
                await asyncio.sleep(RETRY_BACKOFF_S)
                await self._cluster.refresh({tp.queue for tp in pending})
        return result

    async def _list_offsets_at(
        self, node: int, tps: list[QueuePartition], timestamps: Mapping[QueuePartition, int]
    ) -> dict[QueuePartition, tuple[int, int, int]]:
        if node < 0:
            return dict.fromkeys(tps, (E.LEADER_NOT_AVAILABLE, -1, -1))
        by_queue: dict[str, list[m.ListOffsetsPartition]] = {}
        for tp in tps:
            by_queue.setdefault(tp.queue, []).append(
                m.ListOffsetsPartition(partition_index=tp.partition, timestamp=timestamps[tp])
            )
        request = m.ListOffsetsRequest(
            topics=[m.ListOffsetsTopic(name=q, partitions=ps) for q, ps in by_queue.items()]
        )
        conn = await self._cluster.connection(node)
        answer: m.ListOffsetsResponse = await self._cluster.send(conn, request)
        out = {
            QueuePartition(t.name, p.partition_index): (p.error_code, p.offset, p.timestamp)
            for t in answer.topics
            for p in t.partitions
        }
        return {tp: out.get(tp, (E.UNKNOWN_TOPIC_OR_PARTITION, -1, -1)) for tp in tps}

    def stop(self) -> None:
        """No new fetches from now on (the in-flight ones end when the connections close)."""
        self._closed = True

    async def close(self) -> None:
        self.stop()
        tasks: list[asyncio.Task[Any]] = list(self._in_flight.values())
        if self._metadata_task is not None:
            tasks.append(self._metadata_task)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._in_flight.clear()


def _name(code: int) -> str:
    try:
        return ErrorCode(code).name
    except ValueError:
        return f"error {code}"
