"""DeleteRecords (key 21, v0-1): move partitions' log start forward (kafka-delete-records.sh, the
AdminClient's ``delete_records``).

Per partition, on its leader (``Partition.delete_records``): the requested offset (-1: the high watermark)
becomes the log start, durable on the leader before the in-sync followers are asked; the answer waits up
to ``timeout_ms`` until every ISR member has it (the low watermark), as Kafka's DelayedDeleteRecords.
The partitions of one request are handled together, so the whole request waits at most ``timeout_ms``.
With an authorizer: DELETE on each queue (TOPIC_AUTHORIZATION_FAILED before existence is looked at).
"""

from __future__ import annotations

import asyncio

from logq.broker.authorization import RequestAuthorizer
from logq.broker.handlers import Handler
from logq.broker.metrics import BrokerMetrics
from logq.broker.replica_manager import ReplicaManager
from logq.error_codes import ErrorCode
from logq.errors import LogqError
from logq.protocol import RequestHeader
from logq.protocol import messages as m
from logq.security.acl import AclOperation, ResourceType


class RecordHandlers:
    def __init__(
        self, replicas: ReplicaManager, metrics: BrokerMetrics, auth: RequestAuthorizer | None = None
    ) -> None:
        self._replicas = replicas
        self._metrics = metrics
        self._auth = auth or RequestAuthorizer()
        self.by_type: dict[type, Handler] = {m.DeleteRecordsRequest: self.delete_records}

    async def delete_records(
        self, header: RequestHeader, req: m.DeleteRecordsRequest
    ) -> m.DeleteRecordsResponse:
        topics = []
        for topic in req.topics:
            allowed = self._auth.allows(AclOperation.DELETE, ResourceType.TOPIC, topic.name)
            results = await asyncio.gather(
                *(self._delete_one(topic.name, p, req.timeout_ms, allowed) for p in topic.partitions)
            )
            for result in results:
                if result.error_code:
                    self._metrics.errors.labels("DeleteRecords", str(result.error_code)).inc()
            topics.append(m.DeleteRecordsTopicResult(name=topic.name, partitions=list(results)))
        return m.DeleteRecordsResponse(throttle_time_ms=0, topics=topics)

    async def _delete_one(
        self, queue: str, p: m.DeleteRecordsPartition, timeout_ms: int, allowed: bool
    ) -> m.DeleteRecordsPartitionResult:
        result = m.DeleteRecordsPartitionResult(
            partition_index=p.partition_index, low_watermark=-1, error_code=ErrorCode.NONE
        )
        if not allowed:
            result.error_code = ErrorCode.TOPIC_AUTHORIZATION_FAILED
            return result
        try:
            partition = self._replicas.leader(queue, p.partition_index)
            result.error_code, result.low_watermark = await partition.delete_records(p.offset, timeout_ms)
        except LogqError as exc:  # not led here, unknown, out of range, refused by policy, a failing disk
            result.error_code = exc.code
        return result
