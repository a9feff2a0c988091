"""Handlers of the group deletions an operator asks for: DeleteGroups (42) and OffsetDelete (47).

What goes (docs/architecture.md, "Consumer groups"): DeleteGroups removes an Empty group's committed
offsets and its group record, as tombstones (null values) written to the group's ``__consumer_offsets``
partition through the coordinator's normal write path (``OffsetStore.delete_group``), and forgets the
group in membership, so it leaves ListGroups and DescribeGroups at once; a restart or a new coordinator
replays the tombstones and does not bring it back. OffsetDelete tombstones some committed offsets of a
group (``OffsetStore.delete_offsets``). Both answer once the write is acknowledged as an OffsetCommit is
(fsynced and, in cluster mode, on the ISR of the offsets partition).

Refusals follow Kafka's classic group coordinator: a group with members (or a rebalance under way) is
NON_EMPTY_GROUP for DeleteGroups; OffsetDelete refuses, per partition, GROUP_SUBSCRIBED_TO_TOPIC for the
queues its live members subscribe to (a consumer group whose subscriptions cannot be read counts as
subscribed to everything, as Kafka's does) and the whole request NON_EMPTY_GROUP for a live group of
another protocol type. A group that neither membership nor the offsets store knows is GROUP_ID_NOT_FOUND.
Authorization (docs/security.md): DELETE on the group for both, and READ on each queue for OffsetDelete.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from logq.broker.authorization import RequestAuthorizer
from logq.broker.group_handlers import OFFSET_COMMIT_TIMEOUT_MS, coordinator_error, not_coordinated_here
from logq.broker.handlers import Handler
from logq.broker.lag import decode_consumer_subscription
from logq.broker.metrics import BrokerMetrics
from logq.broker.replica_manager import ReplicaManager
from logq.coordinator import Coordinator
from logq.error_codes import ErrorCode
from logq.errors import LogqError, ReplicationError
from logq.groups.membership import Group, GroupMembership
from logq.groups.offsets import OFFSETS_QUEUE, OffsetStore
from logq.protocol import RequestHeader
from logq.protocol import messages as m
from logq.security.acl import AclOperation, ResourceType
from logq.segments.log import AppendInfo

GROUP, TOPIC = ResourceType.GROUP, ResourceType.TOPIC
CONSUMER_PROTOCOL = "consumer"


class GroupDeletionHandlers:
    def __init__(
        self,
        coordinator: Coordinator,
        membership: GroupMembership,
        offsets: OffsetStore,
        replicas: ReplicaManager,
        *,
        metrics: BrokerMetrics,
        auth: RequestAuthorizer | None = None,
    ) -> None:
        self._coordinator = coordinator
        self._membership = membership
        self._offsets = offsets
        self._replicas = replicas
        self._metrics = metrics
        self._auth = auth or RequestAuthorizer()
        self.by_type: dict[type, Handler] = {
            m.DeleteGroupsRequest: self.delete_groups,
            m.OffsetDeleteRequest: self.offset_delete,
        }

    def _count_errors(self, api: str, codes: Iterable[int]) -> None:
        for code in codes:
            if code:
                self._metrics.errors.labels(api, str(code)).inc()

    # --- DeleteGroups ----------------------------------------------------------------------------

    async def delete_groups(
        self, header: RequestHeader, req: m.DeleteGroupsRequest
    ) -> m.DeleteGroupsResponse:
        # The response is keyed by group id (Kafka's mapKey): a name listed twice is answered once.
        results = [
            m.DeletableGroupResult(group_id=group_id, error_code=await self._delete_group(group_id))
            for group_id in dict.fromkeys(req.groups_names)
        ]
        self._count_errors("DeleteGroups", (r.error_code for r in results))
        return m.DeleteGroupsResponse(results=results)

    async def _delete_group(self, group_id: str) -> ErrorCode:
        if not self._auth.allows(AclOperation.DELETE, GROUP, group_id):
            return ErrorCode.GROUP_AUTHORIZATION_FAILED
        if not group_id:
            return ErrorCode.INVALID_GROUP_ID
        error = not_coordinated_here(self._offsets, self._replicas, group_id)
        if error:
            return error
        if self._membership.has_members(group_id):
            return ErrorCode.NON_EMPTY_GROUP
        if group_id not in self._membership.groups and not self._stored(group_id):
            return ErrorCode.GROUP_ID_NOT_FOUND
        return await self._write_acknowledged(
            group_id, lambda: self._offsets.delete_group(group_id), then=self._membership.forget_deleted
        )

    # --- OffsetDelete ----------------------------------------------------------------------------

    async def offset_delete(
        self, header: RequestHeader, req: m.OffsetDeleteRequest
    ) -> m.OffsetDeleteResponse:
        group_id = req.group_id
        error = self._offset_delete_refusal(group_id)
        if error:  # the whole request, with no partitions (as Kafka answers a group-level error)
            self._count_errors("OffsetDelete", [error])
            return m.OffsetDeleteResponse(error_code=error)
        codes: dict[tuple[str, int], ErrorCode] = {}
        queues = self._coordinator.queues()
        for topic in req.topics:
            readable = self._auth.allows(AclOperation.READ, TOPIC, topic.name)
            meta = queues.get(topic.name)
            for p in topic.partitions:
                if not readable:
                    codes[(topic.name, p.partition_index)] = ErrorCode.TOPIC_AUTHORIZATION_FAILED
                elif meta is None or not 0 <= p.partition_index < len(meta.partitions):
                    codes[(topic.name, p.partition_index)] = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        group = self._membership.groups.get(group_id)
        subscribed: set[str] | None = set()
        if group is not None and self._membership.has_members(group_id):
            subscribed = _subscribed_queues(group)
        deletable = []
        for topic in req.topics:
            for p in topic.partitions:
                key = (topic.name, p.partition_index)
                if key in codes:
                    continue
                if subscribed is None or topic.name in subscribed:
                    codes[key] = ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC
                else:
                    deletable.append(key)
        if deletable:
            written = await self._write_acknowledged(
                group_id, lambda: self._offsets.delete_offsets(group_id, deletable)
            )
            codes.update((key, written) for key in deletable)
        self._count_errors("OffsetDelete", codes.values())
        return m.OffsetDeleteResponse(
            error_code=ErrorCode.NONE,
            topics=[
                m.OffsetDeleteResponseTopic(
                    name=topic.name,
                    partitions=[
                        m.OffsetDeleteResponsePartition(
                            partition_index=p.partition_index,
                            error_code=codes[(topic.name, p.partition_index)],
                        )
                        for p in topic.partitions
                    ],
                )
                for topic in req.topics
            ],
        )

    def _offset_delete_refusal(self, group_id: str) -> ErrorCode:
        """The group-level answer to an OffsetDelete, before its partitions are looked at."""
        if not self._auth.allows(AclOperation.DELETE, GROUP, group_id):
            return ErrorCode.GROUP_AUTHORIZATION_FAILED
        if not group_id:
            return ErrorCode.INVALID_GROUP_ID
        error = not_coordinated_here(self._offsets, self._replicas, group_id)
        if error:
            return error
        group = self._membership.groups.get(group_id)
        if group is None and not self._stored(group_id):
            return ErrorCode.GROUP_ID_NOT_FOUND
        live = group is not None and self._membership.has_members(group_id)
        if live and group is not None and group.protocol_type != CONSUMER_PROTOCOL:
            return ErrorCode.NON_EMPTY_GROUP  # its members' subscriptions are not ours to read
        return ErrorCode.NONE

    # --- helpers ---------------------------------------------------------------------------------

    def _stored(self, group_id: str) -> bool:
        """Whether the offsets store keeps anything of the group (offsets or a group record)."""
        try:
            return self._offsets.group_info(group_id) is not None or bool(self._offsets.fetch(group_id))
        except LogqError:  # a group id the store refuses (too long): it cannot hold anything of it
            return False

    async def _write_acknowledged(
        self,
        group_id: str,
        write: Callable[[], AppendInfo | None],
        *,
        then: Callable[[str], None] | None = None,
    ) -> ErrorCode:
        """Append the tombstones through the group's offsets partition, run ``then`` (memory follows the
        log at once, as for a commit), and answer once the partition acknowledged them as an acks=all
        produce. A failed write answers as a failed commit does (NOT_COORDINATOR when the leadership
        moved, else COORDINATOR_NOT_AVAILABLE, or the store's own refusal)."""
        try:
            partition = self._replicas.leader(OFFSETS_QUEUE, self._offsets.partition_of(group_id))
            info = write()
        except ReplicationError as exc:
            return coordinator_error(exc).code
        except LogqError as exc:
            return exc.code
        if then is not None:
            then(group_id)
        if info is None:
            return ErrorCode.NONE
        try:
            await partition.wait_acknowledged(info, acks=-1, timeout_ms=OFFSET_COMMIT_TIMEOUT_MS)
        except ReplicationError as exc:
            return coordinator_error(exc).code
        except LogqError as exc:
            return exc.code
        return ErrorCode.NONE


def _subscribed_queues(group: Group) -> set[str] | None:
    """The queues the live members of a consumer group subscribe to; None when that is not known (no
    protocol chosen yet, or a member's subscription does not decode), which counts as every queue."""
    if group.protocol_name is None:
        return None
    subscribed: set[str] = set()
    for member in list(group.members.values()):
        queues = decode_consumer_subscription(member.metadata_for(group.protocol_name))
        if not queues:
            return None
        subscribed.update(queues)
    return subscribed
