"""logq's asyncio Consumer: read records from queues, either as a member of a consumer group
(``subscribe``: Kafka's classic group protocol with the "consumer" protocol type, so logq, confluent-kafka,
kafka-python and aiokafka members can share a group) or from partitions chosen by hand (``assign``).

    async with Consumer("127.0.0.1:9092", group_id="billing", auto_offset_reset="earliest") as consumer:
        consumer.subscribe(["orders"])
        async for record in consumer:
            print(record.partition, record.offset, record.value)

Offsets follow Kafka's rule: the committed offset of a partition is the offset of the *next* record to
read. ``commit()`` with no argument commits the position of every assigned partition: past the records
``poll`` has already returned, or, where nothing was read yet, where reading would start.

**At least once** (nothing lost; a crash replays the records processed since the last commit): commit
*after* processing. With ``enable_auto_commit=True`` (the default) each ``poll`` commits, every
``auto_commit_interval_ms``, what the previous polls returned, which the loop has processed by then; for
tighter control turn it off and commit yourself:

    consumer = Consumer(bootstrap, group_id="billing", enable_auto_commit=False)
    consumer.subscribe(["orders"])
    while True:
        records = await consumer.poll(1.0)
        for record in records:
            process(record)
        await consumer.commit()          # the positions after these records

**At most once** (nothing processed twice; a crash skips the records fetched but not processed): commit
*before* processing:

    consumer = Consumer(bootstrap, group_id="billing", enable_auto_commit=False)
    consumer.subscribe(["orders"])
    while True:
        records = await consumer.poll(1.0)
        await consumer.commit()          # first record the progress...
        for record in records:
            process(record)              # ...then do the work

Group behaviour, as Kafka's consumer: the group's leader (a logq or a librdkafka member) computes the
assignment with the assignor the coordinator elected among those every member offers (``range``,
``roundrobin``, ``cooperative-sticky``). Rebalances happen inside ``poll``, so the assignment never
changes while the application works on what poll returned. With the eager protocol (range, roundrobin)
the consumer commits (when auto-commit is on), calls ``on_revoke`` with everything it owns and rejoins;
with ``cooperative-sticky`` alone it keeps consuming while it rejoins, then revokes only the partitions
that move (committing them first) and rejoins once more so their new owner gets them. ``on_revoke`` runs
while the partitions are still assigned, so it may commit them. ``on_assign`` gets the whole assignment
(eager) or the partitions added (cooperative). A consumer dropped from the group (session timeout, or no
``poll`` for ``max_poll_interval_ms``, after which it leaves the group itself) calls ``on_lost``
(``on_revoke`` if there is none) without committing. Callbacks are ``fn(consumer, partitions)`` and may
be coroutine functions. Records buffered for a partition that is revoked are dropped.

A ``commit`` made while a cooperative member rejoins waits for the new generation (its partitions stay
its own until it revokes them); an eager member's raises ``RebalanceInProgressError`` (poll, then commit
again), and a member dropped from the group gets ``CommitFailedError``: an at-least-once loop may ignore
both, since the records come again to whoever owns the partitions next.

Fetching is pipelined: one Fetch per leader stays in flight while the application handles the records
``poll`` returned (see ``logq.client.fetcher``). The group protocol is in ``logq.client.group_member``,
the assignors in ``logq.client.assignors``, and ``logq.client.sync_consumer`` wraps this class for
synchronous code.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any

from logq.client.cluster import DEFAULT_BOOTSTRAP, Cluster, QueuePartition
from logq.client.consumer_protocol import queue_partitions
from logq.client.consumer_settings import ConsumerSettings
from logq.client.fetcher import EARLIEST, LATEST, Fetcher
from logq.client.group_member import GroupMember, JoinResult
from logq.client.records import ConsumerRecord
from logq.client.security import security_of
from logq.client.settings import build_settings, takes_settings
from logq.error_codes import ErrorCode
from logq.errors import (
    AuthorizationError,
    ClientError,
    CommitFailedError,
    LogqError,
    OffsetOutOfRangeError,
    RebalanceInProgressError,
)
from logq.queues import validate_queue_name

__all__ = [
    "CommitFailedError",
    "Consumer",
    "ConsumerRecord",
    "ConsumerSettings",
    "QueuePartition",
    "RebalanceCallback",
    "RebalanceInProgressError",
]

log = logging.getLogger(__name__)

RebalanceCallback = Callable[[Any, list[QueuePartition]], object]
# How the consumer runs a rebalance callback; the synchronous wrapper passes one that runs it in the
# thread that called poll().
CallbackRunner = Callable[[RebalanceCallback, list[QueuePartition]], Awaitable[None]]
MISSING_QUEUE_RECHECK_S = 10.0  # how often a missing subscribed queue is looked for (and warned about)
CommitCallback = Callable[[LogqError | None, dict[QueuePartition, int]], object]
PartitionsArg = Iterable[QueuePartition | tuple[str, int]]


@takes_settings(ConsumerSettings, "Settings (keyword arguments; Kafka's consumer configs of the same names):")
class Consumer:
    """Reads records from logq queues, in a group (``subscribe``) or from partitions chosen by hand
    (``assign``). ``await start()`` (or ``async with``) first; see the module's documentation.

    ValueError for a bad setting value, TypeError for an unknown setting. ``callback_runner`` is how
    rebalance callbacks are run (the synchronous Consumer runs them in the thread that called poll)."""

    def __init__(
        self,
        bootstrap: str | Sequence[str] = DEFAULT_BOOTSTRAP,
        *,
        callback_runner: CallbackRunner | None = None,
        **settings: Any,
    ) -> None:
        config = build_settings(ConsumerSettings, "Consumer", settings)
        self.settings = config
        self.group_id = config.group_id
        self.enable_auto_commit = config.enable_auto_commit
        self.auto_commit_interval_s = config.auto_commit_interval_ms / 1000
        self.max_poll_records = config.max_poll_records
        self.request_timeout_s = config.request_timeout_ms / 1000
        self.metadata_max_age_s = (
            config.metadata_max_age_ms / 1000
        )  # how often a pattern looks for new queues
        self._cluster = Cluster(
            bootstrap,
            client_id=config.client_id,
            request_timeout_s=self.request_timeout_s,
            security=security_of(config),
        )
        self._wakeup = asyncio.Event()
        self._fetcher = Fetcher(
            self._cluster,
            fetch_min_bytes=config.fetch_min_bytes,
            fetch_max_wait_ms=config.fetch_max_wait_ms,
            fetch_max_bytes=config.fetch_max_bytes,
            max_partition_fetch_bytes=config.max_partition_fetch_bytes,
            auto_offset_reset=config.auto_offset_reset,
            on_data=self._wakeup.set,
        )
        self._member: GroupMember | None = None
        if config.group_id is not None:
            self._member = GroupMember(
                self._cluster,
                config.group_id,
                session_timeout_ms=config.session_timeout_ms,
                heartbeat_interval_ms=config.heartbeat_interval_ms,
                rebalance_timeout_ms=config.rebalance_timeout_ms or config.max_poll_interval_ms,
                max_poll_interval_ms=config.max_poll_interval_ms,
                assignors=config.assignors,
                group_instance_id=config.group_instance_id,
                on_event=self._wakeup.set,
                metadata_max_age_s=self.metadata_max_age_s,
            )
        self._subscription: tuple[str, ...] | None = None
        self._pattern: re.Pattern[str] | None = None  # subscribe(pattern=...): the queues it matched
        self._pattern_check_at = 0.0
        self._missing: set[str] = set()  # subscribed queues that did not exist at the last look
        self._missing_check_at = 0.0
        self._manual = False
        self._on_assign: RebalanceCallback | None = None
        self._on_revoke: RebalanceCallback | None = None
        self._on_lost: RebalanceCallback | None = None
        self._callback_runner = callback_runner
        self._join_task: asyncio.Task[JoinResult] | None = None
        self._pending: set[asyncio.Task[Any]] = set()  # async commits and a deferred leave
        self._leaving: asyncio.Future[Any] | None = None  # unsubscribe()'s group work, in the background
        self._next_auto_commit = 0.0
        self._started = False
        self._closing = False
        self._closed = False

    # --- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect to the cluster (raises BrokerUnavailableError when no bootstrap broker answers)."""
        self._check_open()
        if not self._started:
            await self._cluster.refresh([])
            self._started = True
            self._next_auto_commit = time.monotonic() + self.auto_commit_interval_s

    async def __aenter__(self) -> Consumer:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def __aiter__(self) -> AsyncIterator[ConsumerRecord]:
        return self._records()

    async def _records(self) -> AsyncIterator[ConsumerRecord]:
        while not self._closed:
            for record in await self.poll(1.0):
                yield record

    def _check_open(self) -> None:
        if self._closed:
            raise ClientError("the consumer is closed")

    def _need_group(self, what: str) -> GroupMember:
        if self._member is None:
            raise ClientError(
                f"{what} needs a consumer group: create the Consumer with group_id=...",
                code=ErrorCode.INVALID_GROUP_ID,
            )
        return self._member

    # --- subscription and assignment ---------------------------------------------------------------

    def subscribe(
        self,
        queues: Sequence[str] = (),
        *,
        pattern: str | re.Pattern[str] | None = None,
        on_assign: RebalanceCallback | None = None,
        on_revoke: RebalanceCallback | None = None,
        on_lost: RebalanceCallback | None = None,
    ) -> None:
        """Join the group (at the next poll) to consume ``queues``, or every queue whose whole name
        matches ``pattern`` (a regular expression; internal queues excluded), looked for again every
        ``metadata_max_age_ms`` so that new queues join and deleted ones leave. Replaces an earlier
        subscription."""
        self._check_open()
        member = self._need_group("subscribe()")
        if isinstance(queues, str):
            raise TypeError("subscribe() takes a list of queue names")
        if self._manual:
            raise ClientError("subscribe() and assign() cannot be mixed: unsubscribe() first")
        names = tuple(sorted(set(queues)))
        if pattern is not None:
            if names:
                raise ValueError("subscribe() takes queue names or a pattern, not both")
            self._pattern = re.compile(pattern) if isinstance(pattern, str) else pattern
            self._pattern_check_at = 0.0  # match at the next poll, before joining
        elif not names or not all(names):
            raise ValueError("subscribe() needs at least one queue name")
        else:
            for name in names:
                validate_queue_name(name)  # InvalidQueueNameError: no queue could ever have it
            self._pattern = None
        self._missing, self._missing_check_at = set(), 0.0  # look at the next poll
        self._subscribe_to(member, names)
        self._on_assign, self._on_revoke, self._on_lost = on_assign, on_revoke, on_lost
        self._wakeup.set()

    def _subscribe_to(self, member: GroupMember, names: tuple[str, ...]) -> None:
        if names != self._subscription and self._subscription is not None:
            member.rejoin_needed = True
        self._subscription = names

    async def _match_pattern(self, member: GroupMember) -> None:
        """Every metadata_max_age_ms: the queues the pattern matches now (a change means a rejoin)."""
        now = time.monotonic()
        if self._pattern is None or now < self._pattern_check_at:
            return
        self._pattern_check_at = now + self.metadata_max_age_s
        try:
            answer = await self._cluster.refresh(None)
        except LogqError as exc:
            if not exc.retriable:
                raise
            log.info("cannot list queues for the pattern subscription yet: %s", exc)
            self._pattern_check_at = now + 1.0
            return
        pattern = self._pattern
        matched = tuple(
            sorted(
                t.name
                for t in answer.topics
                if t.error_code == ErrorCode.NONE and not t.is_internal and pattern.fullmatch(t.name)
            )
        )
        if not matched:
            log.warning(
                "group %s: pattern %s matches no queue: nothing to consume (looking again in %g s)",
                self.group_id, pattern.pattern, self.metadata_max_age_s,
            )  # fmt: skip
        elif matched != self._subscription:
            log.info("pattern %s now matches %s", pattern.pattern, ", ".join(matched))
        self._subscribe_to(member, matched)

    async def _watch_subscribed_queues(self, member: GroupMember) -> None:
        """A subscribed queue that does not exist is consumed from by nobody: say so (a warning, repeated
        every 10 s, or metadata_max_age_ms if sooner, while it is missing) and rejoin once it appears, so
        that the group's assignment includes it. Looked at once per metadata_max_age_ms otherwise.

        A subscribed queue the ACLs refuse raises AuthorizationError from poll (as Kafka's consumer
        does): the group would otherwise assign it to nobody and the consumer wait in silence."""
        now = time.monotonic()
        if self._pattern is not None or not self._subscription or now < self._missing_check_at:
            return
        try:
            answer = await self._cluster.refresh(self._subscription)
        except LogqError as exc:
            if not exc.retriable:
                raise
            self._missing_check_at = now + 1.0
            return
        refused = sorted(
            t.name for t in answer.topics if t.error_code == ErrorCode.TOPIC_AUTHORIZATION_FAILED
        )
        if refused:
            self._missing_check_at = now + 1.0  # asked again at a later poll: an ACL may be added
            raise AuthorizationError(
                f"queue(s) {', '.join(map(repr, refused))}: the broker's ACLs do not let this client "
                "read them (TOPIC_AUTHORIZATION_FAILED)"
            )
        missing = {t.name for t in answer.topics if t.error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION}
        appeared = sorted(self._missing - missing)
        if appeared:
            log.info("group %s: queue(s) %s now exist: rejoining", self.group_id, ", ".join(appeared))
            member.rejoin_needed = True
        self._missing = missing
        if missing:
            again = min(MISSING_QUEUE_RECHECK_S, self.metadata_max_age_s)
            log.warning(
                "group %s: subscribed queue(s) %s do not exist: nothing is consumed from them (looking "
                "again in %g s)", self.group_id, ", ".join(sorted(missing)), again,
            )  # fmt: skip
            self._missing_check_at = now + again
        else:
            self._missing_check_at = now + self.metadata_max_age_s

    def unsubscribe(self) -> None:
        """Stop consuming: drop the assignment, commit it (auto-commit), and leave the group or stop
        using the hand-assigned partitions. The group work runs in the background (awaited by the next
        call that talks to the group, and by close)."""
        self._check_open()
        if self._subscription is None and not self._manual:
            return
        was_member = self._in_generation()
        owned, positions, callback = self._fetcher.assigned(), self._fetcher.positions(), self._on_revoke
        self._detach()
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # not started, so never joined: only the local state goes
            return
        self._leaving = self._spawn(self._leave_after_unsubscribe(was_member, owned, positions, callback))

    async def unsubscribe_now(self) -> None:
        """unsubscribe(), done before returning; on_revoke is called while the partitions are still
        assigned (so it may commit them)."""
        if self._subscription is None and not self._manual:
            return
        was_member = self._in_generation()
        owned, positions = self._fetcher.assigned(), self._fetcher.positions()
        if was_member:
            await self._auto_commit_now(positions, "unsubscribe", simple=False)
            await self._invoke(self._on_revoke, owned)
        self._detach()
        await self._leave_after_unsubscribe(False, [], {}, None)

    async def _leave_after_unsubscribe(
        self,
        was_member: bool,
        owned: list[QueuePartition],
        positions: dict[QueuePartition, int],
        callback: RebalanceCallback | None,
    ) -> None:
        await self._cancel_join()
        if self._member is None or not self._started:
            return
        if was_member:
            await self._auto_commit_now(positions, "unsubscribe", simple=False)
            await self._invoke(callback, owned)
        await self._member.leave()

    def _in_generation(self) -> bool:
        return self._subscription is not None and self._member is not None and self._member.active

    def _detach(self) -> None:
        self._subscription = None
        self._pattern = None
        self._manual = False
        self._fetcher.assign([])

    def assign(self, partitions: PartitionsArg) -> None:
        """Consume these partitions, outside any group rebalancing (positions come from the group's
        committed offsets when there is a group_id, else from auto_offset_reset)."""
        self._check_open()
        if self._subscription is not None:
            raise ClientError("assign() and subscribe() cannot be mixed: unsubscribe() first")
        parts = queue_partitions(list(partitions))
        self._manual = bool(parts)
        self._fetcher.assign(parts)
        self._wakeup.set()

    def assignment(self) -> list[QueuePartition]:
        return self._fetcher.assigned()

    # --- polling -----------------------------------------------------------------------------------

    async def poll(self, timeout: float = 1.0) -> list[ConsumerRecord]:  # noqa: ASYNC109 - Kafka's API
        """Records fetched since the last poll (at most max_poll_records), waiting up to ``timeout``
        seconds for some; an empty list when none came. Group work (joins, rebalance callbacks,
        auto-commits) happens here."""
        self._check_open()
        if not self._started:
            await self.start()
        deadline = time.monotonic() + max(timeout, 0.0)
        member = self._member
        if self._leaving is not None:  # leave the old generation before joining a new one
            leaving, self._leaving = self._leaving, None
            with contextlib.suppress(LogqError):
                await leaving
        while True:
            self._wakeup.clear()
            if member is not None:
                member.note_poll()  # waiting inside poll counts as polling (max_poll_interval_ms)
                await self._match_pattern(member)
                await self._watch_subscribed_queues(member)
                if self._subscription is not None:
                    await self._group_step(member)
                self._maybe_auto_commit()
            if self._fetcher.unpositioned():
                try:
                    await self._update_positions()
                except LogqError as exc:  # e.g. a queue being created: try again at the next wake-up
                    if not exc.retriable:
                        raise
                    log.info("positions not known yet: %s", exc)
            self._fetcher.raise_error()
            records = self._fetcher.drain(self.max_poll_records)
            self._fetcher.kick()
            if records:
                return records
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), remaining)

    async def _group_step(self, member: GroupMember) -> None:
        """Rejoin when needed and apply a finished join: the only place the assignment changes."""
        assert self._subscription is not None
        if member.lost and self._join_task is None:
            member.lost = False
            lost = self._fetcher.assigned()
            if lost:
                log.warning("group %s: partitions lost: %s", member.group_id, _names(lost))
                try:
                    await self._invoke(self._on_lost or self._on_revoke, lost)
                finally:
                    self._fetcher.assign([])
        if self._join_task is None and (member.rejoin_needed or member.generation < 0):
            owned = self._fetcher.assigned()
            if member.active and owned:
                await self._auto_commit_now(self._fetcher.positions(), "before rejoining")
            if not member.cooperative and owned:
                try:  # eager: give everything up; the callback still sees it assigned (it may commit)
                    await self._invoke(self._on_revoke, owned)
                finally:
                    self._fetcher.assign([])
                owned = []
            await member.stop_heartbeats()  # they would queue behind the JoinGroup anyway
            self._join_task = asyncio.create_task(member.join(self._subscription, owned))
            self._join_task.add_done_callback(lambda _: self._wakeup.set())
        task = self._join_task
        if task is None or not task.done():
            return  # poll goes on (a cooperative member keeps consuming); the join's end wakes it
        self._join_task = None
        result = task.result()  # a configuration error (e.g. INCONSISTENT_GROUP_PROTOCOL) raises here
        await self._apply_assignment(member, result)

    async def _apply_assignment(self, member: GroupMember, result: JoinResult) -> None:
        assert self._subscription is not None
        subscribed = set(self._subscription)
        assigned = [tp for tp in result.partitions if tp.queue in subscribed]
        kept = set(assigned)
        owned = self._fetcher.assigned()
        revoked = [tp for tp in owned if tp not in kept]
        added = [tp for tp in assigned if tp not in set(owned)]
        member.start_heartbeats()
        errors: list[Exception] = []
        if revoked:  # cooperative: give up what moves, then rejoin so its new owner gets it
            positions = self._fetcher.positions()
            await self._auto_commit_now({tp: positions[tp] for tp in revoked if tp in positions}, "revoke")
            await self._invoke(self._on_revoke, revoked, errors)  # still assigned: it may commit
            member.rejoin_needed = True
        self._fetcher.assign(assigned)  # drops the revoked partitions and their buffered records
        await self._invoke(self._on_assign, added if member.cooperative else assigned, errors)
        if errors:
            raise errors[0]

    async def _cancel_join(self) -> None:
        task, self._join_task = self._join_task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, LogqError):
                await task
            if self._member is not None:
                self._member.abandon_connection()  # the broker still holds the JoinGroup sent on it

    async def _update_positions(self) -> None:
        """Positions of newly assigned partitions: the group's committed offsets, else a reset."""
        missing = self._fetcher.unpositioned()
        states = self._fetcher.states
        needs_committed = [tp for tp in missing if states[tp].reset is None]
        if self._member is not None and needs_committed:
            committed = await self._member.fetch_committed(needs_committed, timeout_s=self.request_timeout_s)
            for tp, offset in committed.items():
                state = states.get(tp)
                if offset is not None and state is not None and state.position is None:
                    state.set_position(offset)
        to_reset = {}
        for tp in missing:
            state = states.get(tp)
            if state is None or state.position is not None:
                continue
            strategy = state.reset or self._fetcher.auto_offset_reset
            if strategy == "error":
                state.error = OffsetOutOfRangeError(
                    f"{tp.queue}/{tp.partition} has no committed offset and auto_offset_reset is 'error'"
                )
            else:
                to_reset[tp] = EARLIEST if strategy == "earliest" else LATEST
        if to_reset:
            found = await self._fetcher.list_offsets(to_reset, timeout_s=self.request_timeout_s)
            for tp, (offset, _) in found.items():
                state = states.get(tp)
                if state is not None and state.position is None:
                    state.set_position(offset)

    # --- commits -----------------------------------------------------------------------------------

    def _maybe_auto_commit(self) -> None:
        if not self.enable_auto_commit or time.monotonic() < self._next_auto_commit:
            return
        member = self._member
        if member is None or (self._subscription is not None and not member.active):
            return
        self._next_auto_commit = time.monotonic() + self.auto_commit_interval_s
        positions = self._fetcher.positions()
        if positions:
            self.commit_async(positions, _log_auto_commit)

    async def _auto_commit_now(
        self, offsets: Mapping[QueuePartition, int], why: str, *, simple: bool | None = None
    ) -> None:
        if not self.enable_auto_commit or not offsets or self._member is None:
            return
        try:
            await self._commit(offsets, simple=simple)
        except LogqError as exc:
            log.warning("group %s: auto-commit (%s) failed: %s", self.group_id, why, exc)

    async def _commit(self, offsets: Mapping[QueuePartition, int], *, simple: bool | None = None) -> None:
        """OffsetCommit; ``simple`` (outside any generation) defaults to "not subscribed"."""
        member = self._need_group("commit()")
        if simple is None:
            simple = self._subscription is None
        await member.commit(offsets, simple=simple, timeout_s=self.request_timeout_s)

    async def commit(self, offsets: Mapping[QueuePartition, int] | None = None) -> None:
        """Commit ``offsets`` (each the offset of the next record to read), or, with None, the position of
        every assigned partition, as Kafka's Java consumer does: just past the records poll returned, and
        for a partition nothing was read from yet, where reading would start (its committed offset, or
        where auto_offset_reset puts it, looked up now if need be), so that its lag is tracked too.
        Raises a LogqError when the consumer has no group, CommitFailedError when it is no longer in the
        group's generation, and RebalanceInProgressError while the group rebalances."""
        self._check_open()
        self._need_group("commit()")
        if not self._started:
            await self.start()
        if offsets is None and self._fetcher.unpositioned():
            try:
                await self._update_positions()
            except LogqError as exc:  # e.g. a leader moving: commit the positions known
                if not exc.retriable:
                    raise
                log.info("committing without the positions not known yet: %s", exc)
        await self._commit(self._offsets_arg(offsets))

    def commit_async(
        self,
        offsets: Mapping[QueuePartition, int] | None = None,
        callback: CommitCallback | None = None,
    ) -> None:
        """Commit in the background (ordered after earlier commits); ``callback(error, offsets)`` is
        called when it is done, error None on success. Needs a running event loop."""
        self._check_open()
        self._need_group("commit_async()")
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            raise ClientError("commit_async() needs a running event loop") from None
        chosen = self._offsets_arg(offsets)

        async def run() -> None:
            error: LogqError | None = None
            try:
                await self._commit(chosen)
            except LogqError as exc:
                error = exc
            if callback is not None:
                try:
                    callback(error, chosen)
                except Exception:
                    log.exception("commit callback failed")
            elif error is not None:
                log.warning("asynchronous commit failed: %s", error)

        self._spawn(run())

    def _offsets_arg(self, offsets: Mapping[QueuePartition, int] | None) -> dict[QueuePartition, int]:
        if offsets is None:
            return self._fetcher.positions()
        out = {}
        for tp, offset in offsets.items():
            if offset < 0:
                raise ValueError(f"cannot commit offset {offset} for {tp}")
            out[QueuePartition(tp[0], int(tp[1]))] = int(offset)
        return out

    async def committed(self, partitions: PartitionsArg) -> dict[QueuePartition, int | None]:
        """The group's committed offsets (None where nothing is committed)."""
        self._check_open()
        member = self._need_group("committed()")
        if not self._started:
            await self.start()
        return await member.fetch_committed(
            queue_partitions(list(partitions)), timeout_s=self.request_timeout_s
        )

    # --- positions ---------------------------------------------------------------------------------

    def seek(self, partition: QueuePartition | tuple[str, int], offset: int) -> None:
        """The next poll returns ``partition``'s records from ``offset`` on (buffered ones are dropped)."""
        self._check_open()
        self._fetcher.seek(QueuePartition(partition[0], int(partition[1])), offset)
        self._wakeup.set()

    async def seek_to_beginning(self, partitions: PartitionsArg | None = None) -> None:
        await self._seek_to(partitions, EARLIEST)

    async def seek_to_end(self, partitions: PartitionsArg | None = None) -> None:
        await self._seek_to(partitions, LATEST)

    async def _seek_to(self, partitions: PartitionsArg | None, which: int) -> None:
        self._check_open()
        if not self._started:
            await self.start()
        parts = self._fetcher.assigned() if partitions is None else queue_partitions(list(partitions))
        for tp in parts:
            self._fetcher.state(tp)  # raises when not assigned
        found = await self._fetcher.list_offsets(
            dict.fromkeys(parts, which), timeout_s=self.request_timeout_s
        )
        for tp, (offset, _) in found.items():
            if tp in self._fetcher.states:
                self._fetcher.seek(tp, offset)
        self._wakeup.set()

    async def position(self, partition: QueuePartition | tuple[str, int]) -> int:
        """The offset of the next record poll will return for ``partition``."""
        self._check_open()
        tp = QueuePartition(partition[0], int(partition[1]))
        state = self._fetcher.state(tp)
        if state.position is None:
            if not self._started:
                await self.start()
            await self._update_positions()
            if state.error is not None:
                raise state.error
        if state.position is None:
            raise ClientError(f"{tp.queue}/{tp.partition} has no position yet")
        return state.position

    def pause(self, partitions: PartitionsArg) -> None:
        """Stop returning records of these partitions (and fetching them) until resume()."""
        for tp in queue_partitions(list(partitions)):
            self._fetcher.state(tp).paused = True

    def resume(self, partitions: PartitionsArg) -> None:
        for tp in queue_partitions(list(partitions)):
            self._fetcher.state(tp).paused = False
        self._wakeup.set()

    def paused(self) -> list[QueuePartition]:
        return [tp for tp, s in self._fetcher.states.items() if s.paused]

    async def beginning_offsets(self, partitions: PartitionsArg) -> dict[QueuePartition, int]:
        """The first offset still in each partition's log."""
        return await self._list(partitions, EARLIEST)

    async def end_offsets(self, partitions: PartitionsArg) -> dict[QueuePartition, int]:
        """The high watermark of each partition: the offset the next record will get."""
        return await self._list(partitions, LATEST)

    async def _list(self, partitions: PartitionsArg, which: int) -> dict[QueuePartition, int]:
        self._check_open()
        if not self._started:
            await self.start()
        parts = queue_partitions(list(partitions))
        found = await self._fetcher.list_offsets(
            dict.fromkeys(parts, which), timeout_s=self.request_timeout_s
        )
        return {tp: found[tp][0] for tp in parts}

    async def offsets_for_times(
        self, timestamps: Mapping[QueuePartition, int]
    ) -> dict[QueuePartition, int | None]:
        """For each partition, the first offset whose record timestamp (ms) is at or after the one
        given; None when every record is older."""
        self._check_open()
        if not self._started:
            await self.start()
        wanted = {QueuePartition(tp[0], int(tp[1])): int(ts) for tp, ts in timestamps.items()}
        if any(ts < 0 for ts in wanted.values()):
            raise ValueError("timestamps must be >= 0 (milliseconds since the epoch)")
        found = await self._fetcher.list_offsets(wanted, timeout_s=self.request_timeout_s)
        return {tp: offset if (offset := found[tp][0]) >= 0 else None for tp in wanted}

    async def partitions_for(self, queue: str) -> int:
        """The number of partitions of ``queue`` (UnknownQueueError if there is no such queue)."""
        self._check_open()
        if not self._started:
            await self.start()
        return (await self._cluster.queue(queue)).partition_count

    # --- shutdown ----------------------------------------------------------------------------------

    async def close(self) -> None:
        """Commit (when auto-commit is on), call on_revoke with the assignment, leave the group and close
        the connections. Idempotent."""
        if self._closed or self._closing:
            return
        self._closing = True  # the consumer stays usable for on_revoke (which may commit)
        member = self._member
        try:
            if self._pending:
                await self._settle_pending()
            if member is not None and self._started:
                await self._cancel_join()
                owned = self._fetcher.assigned()
                if self._subscription is not None and member.active:
                    await self._auto_commit_now(self._fetcher.positions(), "close")
                    if owned:
                        await self._invoke(self._on_revoke, owned)
                elif self._manual:
                    await self._auto_commit_now(self._fetcher.positions(), "close")
                await member.leave()
        finally:
            self._closed = True
            self._fetcher.assign([])
            self._fetcher.stop()
            if member is not None:
                await member.close()
            await self._cluster.close()  # in-flight fetches end with the connections
            await self._fetcher.close()

    # --- helpers -----------------------------------------------------------------------------------

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Future[Any]:
        task = asyncio.ensure_future(coro)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        return task

    async def _settle_pending(self) -> None:
        await asyncio.gather(*list(self._pending), return_exceptions=True)

    async def _invoke(
        self,
        callback: RebalanceCallback | None,
        partitions: list[QueuePartition],
        errors: list[Exception] | None = None,
    ) -> None:
        """Run a rebalance callback; its exception is raised, or added to ``errors`` when given (so
        the assignment is applied in full before poll raises it)."""
        if callback is None:
            return
        try:
            if self._callback_runner is not None:
                await self._callback_runner(callback, list(partitions))
                return
            result = callback(self, list(partitions))
            if inspect.isawaitable(result):
                await result
        except Exception as exc:
            if errors is None:
                raise
            errors.append(exc)


def _log_auto_commit(error: LogqError | None, offsets: dict[QueuePartition, int]) -> None:
    if error is not None and not isinstance(error, RebalanceInProgressError):
        log.warning("auto-commit of %d partition(s) failed: %s", len(offsets), error)


def _names(partitions: Iterable[QueuePartition]) -> str:
    return ", ".join(f"{q}/{p}" for q, p in partitions)
