"""OffsetForLeaderEpoch (key 23): where an epoch of the log ended, as this broker leads it.

A follower asks it before fetching (KIP-101/279): it names the latest leader epoch in its own log and
truncates to the answer, so its log never diverges from the leader's. Consumers ask it too (KIP-320: a
consumer that seeks with the leader epoch of a message it read checks where that epoch ended, to detect
truncation after a leader change). Served in both modes, by the leader.
With an authorizer: CLUSTER_ACTION on the cluster (a follower), else DESCRIBE on each queue.
"""

from __future__ import annotations

from logq.broker.authorization import RequestAuthorizer
from logq.broker.handlers import Handler
from logq.broker.replica_manager import ReplicaManager
from logq.coordinator import Coordinator
from logq.error_codes import ErrorCode
from logq.errors import LogqError
from logq.protocol import RequestHeader
from logq.protocol import messages as m
from logq.security.acl import AclOperation, ResourceType


class ReplicaHandlers:
    def __init__(
        self, coordinator: Coordinator, replicas: ReplicaManager, auth: RequestAuthorizer | None = None
    ) -> None:
        self._auth = auth or RequestAuthorizer()
        self._coordinator = coordinator
        self._replicas = replicas
        self.by_type: dict[type, Handler] = {m.OffsetForLeaderEpochRequest: self.offset_for_leader_epoch}

    async def offset_for_leader_epoch(
        self, header: RequestHeader, req: m.OffsetForLeaderEpochRequest
    ) -> m.OffsetForLeaderEpochResponse:
        topics = []
        follower = self._auth.allows_cluster(AclOperation.CLUSTER_ACTION)
        for topic in req.topics:
            results = []
            described = follower or self._auth.allows(AclOperation.DESCRIBE, ResourceType.TOPIC, topic.topic)
            for p in topic.partitions:
                if not described:
                    results.append(
                        m.EpochEndOffset(
                            error_code=ErrorCode.TOPIC_AUTHORIZATION_FAILED, partition=p.partition
                        )
                    )
                    continue
                results.append(self._end_offset(topic.topic, p))
            topics.append(m.OffsetForLeaderTopicResult(topic=topic.topic, partitions=results))
        return m.OffsetForLeaderEpochResponse(topics=topics)

    def _end_offset(self, queue: str, p: m.OffsetForLeaderPartition) -> m.EpochEndOffset:
        try:
            partition = self._replicas.leader(queue, p.partition)
            code = partition.check_epoch(p.current_leader_epoch)
            if code != ErrorCode.NONE:
                return m.EpochEndOffset(error_code=code, partition=p.partition)
            epoch, end = partition.end_offset_for_epoch(p.leader_epoch)
        except LogqError as exc:
            return m.EpochEndOffset(error_code=exc.code, partition=p.partition)
        return m.EpochEndOffset(
            error_code=ErrorCode.NONE, partition=p.partition, leader_epoch=epoch, end_offset=end
        )
