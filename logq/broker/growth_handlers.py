"""CreatePartitions (37, v0-1): grow a queue's partition count, as kafka-topics.sh --alter --partitions
and the AdminClients' create_partitions do.

Per queue, as Kafka answers: a queue listed twice INVALID_REQUEST (once for the name); without ALTER on
the queue TOPIC_AUTHORIZATION_FAILED; a queue that does not exist UNKNOWN_TOPIC_OR_PARTITION; an internal
queue (``__consumer_offsets``: groups are mapped to its partitions by their count) INVALID_REQUEST; a
count not above the current one INVALID_PARTITIONS; assignments that do not fit INVALID_REPLICA_ASSIGNMENT
(``logq.coordinator.growth`` has the rules). ``validate_only`` checks all of it and changes nothing.
The answer waits, up to ``timeout_ms`` (30 s when 0 or less), until the new partitions are in the
metadata with their leaders and the ones led here have their logs; past it the growth is answered
REQUEST_TIMED_OUT and completes in a task, as CreateTopics does.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter

from logq.broker.authorization import RequestAuthorizer
from logq.broker.handlers import DEFAULT_CREATE_WAIT_MS, Handler
from logq.broker.metrics import BrokerMetrics
from logq.broker.replica_manager import ReplicaManager
from logq.coordinator import Coordinator
from logq.coordinator.embedded import MAX_PARTITIONS
from logq.coordinator.growth import new_partition_replicas
from logq.error_codes import ErrorCode
from logq.errors import CoordinationError, LogqError, RequestRefusedError, UnknownQueueError
from logq.protocol import RequestHeader
from logq.protocol import messages as m
from logq.security.acl import AclOperation, ResourceType

log = logging.getLogger(__name__)


class GrowthHandlers:
    def __init__(
        self,
        coordinator: Coordinator,
        replicas: ReplicaManager,
        metrics: BrokerMetrics,
        auth: RequestAuthorizer,
    ) -> None:
        self._coordinator = coordinator
        self._replicas = replicas
        self._metrics = metrics
        self._auth = auth
        self.by_type: dict[type, Handler] = {m.CreatePartitionsRequest: self.create_partitions}

    async def create_partitions(
        self, header: RequestHeader, req: m.CreatePartitionsRequest
    ) -> m.CreatePartitionsResponse:
        wait_ms = req.timeout_ms if req.timeout_ms > 0 else DEFAULT_CREATE_WAIT_MS
        deadline = asyncio.get_running_loop().time() + wait_ms / 1000
        listed = Counter(t.name for t in req.topics)
        results: list[m.CreatePartitionsTopicResult] = []
        answered: set[str] = set()
        for topic in req.topics:
            if topic.name in answered:
                continue
            answered.add(topic.name)
            try:
                if listed[topic.name] > 1:
                    raise RequestRefusedError(
                        f"queue {topic.name!r} is listed {listed[topic.name]} times",
                        code=ErrorCode.INVALID_REQUEST,
                    )
                if not self._auth.allows(AclOperation.ALTER, ResourceType.TOPIC, topic.name):
                    raise RequestRefusedError(
                        self._auth.refusal(AclOperation.ALTER, ResourceType.TOPIC, topic.name),
                        code=ErrorCode.TOPIC_AUTHORIZATION_FAILED,
                    )
                await self._grow(topic, req.validate_only, deadline)
                results.append(m.CreatePartitionsTopicResult(name=topic.name, error_code=ErrorCode.NONE))
            except LogqError as exc:
                results.append(
                    m.CreatePartitionsTopicResult(
                        name=topic.name, error_code=exc.code, error_message=str(exc)
                    )
                )
                self._metrics.errors.labels("CreatePartitions", str(exc.code)).inc()
        return m.CreatePartitionsResponse(results=results)

    async def _grow(self, topic: m.CreatePartitionsTopic, validate_only: bool, deadline: float) -> None:
        meta = self._coordinator.queues().get(topic.name)
        if meta is None:
            raise UnknownQueueError(f"queue {topic.name!r} does not exist")
        if meta.internal:
            raise RequestRefusedError(
                f"queue {topic.name!r} is internal: its partition count cannot change",
                code=ErrorCode.INVALID_REQUEST,
            )
        assignments = None if topic.assignments is None else [a.broker_ids for a in topic.assignments]
        live = [b.broker_id for b in self._coordinator.brokers()]
        # checked here first so validate_only answers as the real thing would (the coordinator checks
        # again on the metadata it writes over)
        new_partition_replicas(
            [p.replicas for p in meta.partitions],
            topic.count,
            assignments,
            live,
            max_partitions=MAX_PARTITIONS,
        )
        if validate_only:
            return
        before = len(meta.partitions)
        growth = asyncio.ensure_future(self._add_and_host(topic.name, topic.count, assignments))
        remaining = deadline - asyncio.get_running_loop().time()
        try:
            await asyncio.wait_for(asyncio.shield(growth), max(remaining, 0))
        except TimeoutError:
            growth.add_done_callback(lambda done: _log_late_growth(done, topic.name, topic.count))
            raise CoordinationError(
                f"queue {topic.name!r} is still growing to {topic.count} partitions; "
                "they are listed with leaders once done",
                code=ErrorCode.REQUEST_TIMED_OUT,
            ) from None
        log.info("queue %s: %d -> %d partitions", topic.name, before, topic.count)

    async def _add_and_host(self, name: str, count: int, assignments: list[list[int]] | None) -> None:
        grown = await self._coordinator.add_partitions(name, count, assignments)
        await self._replicas.host_in_background({name: grown})


def _log_late_growth(growth: asyncio.Future[None], queue: str, count: int) -> None:
    if growth.cancelled():
        return
    error = growth.exception()
    if error is None:
        log.info("queue %s grew to %d partitions after answering REQUEST_TIMED_OUT", queue, count)
    else:
        log.warning(
            "queue %s: growing to %d partitions failed after REQUEST_TIMED_OUT: %s", queue, count, error
        )
