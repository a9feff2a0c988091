"""The asyncio admin client: queues (create, delete, list, describe), groups (list, describe with lag),
offset resets planned before they are applied, record deletions (DeleteRecords) likewise, and ACLs
(``acls.py``).

Every call raises a LogqError subclass (``logq.errors``) that carries the broker's error code.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, NamedTuple

from logq import batch as rb
from logq.client import acls
from logq.client.cluster import DEFAULT_BOOTSTRAP, Cluster, QueueInfo, QueuePartition, invalid_name_reason
from logq.client.consumer_protocol import decode_assignment, decode_subscription
from logq.client.security import SecuritySettings
from logq.client.settings import build_settings, takes_settings
from logq.error_codes import ErrorCode
from logq.errors import (
    AuthorizationError,
    ClientTimeoutError,
    ConsumerProtocolError,
    GroupNotEmptyError,
    InvalidQueueNameError,
    LogqError,
    UnknownQueueError,
    error_for_code,
)
from logq.protocol import messages as m
from logq.protocol.apis import ApiKey
from logq.protocol.primitives import INT32_MIN
from logq.quotas import DEFAULT as DEFAULT_ENTITY
from logq.quotas import QuotaEntity, entity_parts
from logq.security.acl import AclBinding, AclBindingFilter, AclOperation
from logq.security.scram import DEFAULT_ITERATIONS, SALT_BYTES, salted_password

CREATION_WAIT_S = 600.0  # how long create_queue waits for a creation the broker answered REQUEST_TIMED_OUT to
CREATION_POLL_S = 0.5
CREATION_LINE_EVERY_S = 10.0
ANSWER_MARGIN_S = 5.0
EARLIEST = -2  # ListOffsets' special timestamps
LATEST = -1
_TOPIC_RESOURCE = 2  # DescribeConfigs resource types
_BROKER_RESOURCE = 4
_DELETE_SWITCHES = ("delete.queue.enable", "delete.topic.enable")  # logq's name, Kafka's
_AUTHORIZER_SWITCH = "authorizer.enable"  # with it on, the ACLs decide deletions, not the switches
_DEFAULT_CONFIG = 5  # DescribeConfigs config sources: a default nobody overrode, a queue's own
_QUEUE_CONFIG = 1
_SET, _DELETE = 0, 1  # IncrementalAlterConfigs operations
# DescribeConfigs config sources, as the CLI shows them
SOURCE_NAMES = {1: "queue", 2: "broker", 3: "cluster", 4: "config-file", 5: "default"}
SCRAM_MECHANISMS = {1: "SCRAM-SHA-256", 2: "SCRAM-SHA-512"}  # the APIs' mechanism codes
COORDINATOR_ATTEMPTS = 5  # a group request finds its coordinator again after it moved (or while it loads)
COORDINATOR_BACKOFF_S = 0.2


@dataclass(frozen=True, slots=True)
class SettingDescription:
    """One setting of a queue or a broker: its value and where it comes from (``SOURCE_NAMES``: queue,
    broker (dynamic, this broker), cluster (dynamic, cluster-wide), config-file, default)."""

    name: str
    value: str | None
    source: str
    read_only: bool


@dataclass(frozen=True, slots=True)
class PartitionDescription:
    partition: int
    leader: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    log_start: int
    log_end: int  # the high watermark: the offset the next record will get
    size_bytes: int | None  # None when the broker does not serve DescribeLogDirs
    oldest_timestamp: int | None  # ms of the oldest retained batch; None when the partition is empty

    @property
    def messages(self) -> int:
        return self.log_end - self.log_start


@dataclass(frozen=True, slots=True)
class QueueDescription:
    name: str
    internal: bool
    partitions: tuple[PartitionDescription, ...]
    settings: Mapping[str, str] = field(default_factory=dict)  # non-default settings (DescribeConfigs)

    @property
    def size_bytes(self) -> int | None:
        sizes = [p.size_bytes for p in self.partitions]
        return None if any(s is None for s in sizes) else sum(s for s in sizes if s is not None)


@dataclass(frozen=True, slots=True)
class GroupListing:
    group_id: str
    protocol_type: str
    state: str


@dataclass(frozen=True, slots=True)
class GroupMemberDescription:
    member_id: str
    client_id: str
    client_host: str
    group_instance_id: str | None
    assignment: tuple[QueuePartition, ...]


@dataclass(frozen=True, slots=True)
class PartitionOffsets:
    """A group's position in one partition."""

    queue: str
    partition: int
    committed: int | None  # None: the group never committed here
    log_start: int
    log_end: int
    owner: str | None  # member id, when a live member is assigned the partition

    @property
    def lag(self) -> int:
        """Messages not yet consumed, clamped into [log start, log end]. Without a commit, everything
        from the log start: where a consumer with auto.offset.reset=earliest would begin."""
        position = self.log_start if self.committed is None else self.committed
        return self.log_end - min(max(position, self.log_start), self.log_end)


@dataclass(frozen=True, slots=True)
class GroupDescription:
    group_id: str
    state: str
    protocol_type: str
    protocol: str
    members: tuple[GroupMemberDescription, ...]
    offsets: tuple[PartitionOffsets, ...]

    @property
    def total_lag(self) -> int:
        return sum(o.lag for o in self.offsets)


@dataclass(frozen=True, slots=True)
class ResetSpec:
    """Where to move a group's offsets, with kafka-consumer-groups' names:
    ``earliest``, ``latest``, ``offset`` (value = N), ``datetime`` (value = ms since the epoch),
    ``duration`` (value = ms before now), ``shift`` (value = ±N from the committed offset)."""

    kind: str
    value: int = 0

    KINDS = ("earliest", "latest", "offset", "datetime", "duration", "shift")

    def __post_init__(self) -> None:
        if self.kind not in self.KINDS:
            raise ValueError(f"unknown reset kind {self.kind!r}; expected one of {', '.join(self.KINDS)}")


@dataclass(frozen=True, slots=True)
class ResetRow:
    queue: str
    partition: int
    current: int | None
    new: int
    log_start: int
    log_end: int
    requested: int | None = None  # the target before it was clamped into [log start, log end]

    @property
    def clamped(self) -> str | None:
        """Why ``new`` is not the offset asked for (outside the log, as Kafka's tool warns), or None."""
        if self.requested is None or self.requested == self.new:
            return None
        where = "before the start" if self.requested < self.new else "past the end"
        return (
            f"offset {self.requested} is {where} of {self.queue}/{self.partition} ({self.new}): "
            f"the reset uses {self.new}"
        )

    @property
    def lag_before(self) -> int:
        position = self.log_start if self.current is None else self.current
        return self.log_end - min(max(position, self.log_start), self.log_end)

    @property
    def lag_after(self) -> int:
        return self.log_end - self.new


@dataclass(frozen=True, slots=True)
class RecordDeletionRow:
    """One partition of a record deletion: its log start now, the new one, and its end (high watermark)."""

    queue: str
    partition: int
    log_start: int
    new_start: int
    log_end: int

    @property
    def records(self) -> int:
        """How many records the deletion removes."""
        return max(self.new_start - self.log_start, 0)


class DeletePermission(NamedTuple):
    """``Admin.may_delete_queue``'s answer: whether the broker would delete, and why not (or a note)."""

    allowed: bool
    reason: str


def _may_not_delete(principal: str, name: str) -> str:
    return f"{principal} may not delete queue {name} (needs DELETE on TOPIC:{name})"


def _internal_queue(name: str) -> str:
    return f"queue {name!r} is internal (logq keeps its own state in it) and cannot be deleted"


def _check(code: int, what: str, message: str | None = None) -> None:
    if code != ErrorCode.NONE:
        name = ErrorCode(code).name if code in ErrorCode._value2member_map_ else str(code)
        raise error_for_code(code, f"{what}: {message or name}")


def _live_members(raw: m.DescribedGroup) -> str:
    """ "N live member(s): client (host), ..." for a refusal message (the first five)."""
    names = ", ".join(f"{mem.client_id} ({mem.client_host})" for mem in raw.members[:5])
    more = f" and {len(raw.members) - 5} more" if len(raw.members) > 5 else ""
    return f"{len(raw.members)} live member(s): {names}{more}"


def _subscribed(data: bytes) -> tuple[str, ...]:
    """The queues of a member's consumer-protocol subscription (none if it is not one)."""
    if not data:
        return ()
    try:
        return decode_subscription(data).queues
    except ConsumerProtocolError:
        return ()


def _assigned(data: bytes) -> tuple[QueuePartition, ...]:
    """The partitions of a member's consumer-protocol assignment (none if it is not one)."""
    if not data:
        return ()
    try:
        return tuple(decode_assignment(data).partitions)
    except ConsumerProtocolError:
        return ()


@takes_settings(SecuritySettings, "Security settings (keyword arguments, as the producer's and consumer's):")
class Admin:
    """Queues, groups and users. ``await start()`` (or ``async with``) first."""

    def __init__(
        self,
        bootstrap: str | Sequence[str] = DEFAULT_BOOTSTRAP,
        *,
        client_id: str = "logq-admin",
        request_timeout_ms: int = 30_000,
        **security: Any,
    ) -> None:
        self._security = build_settings(SecuritySettings, "Admin", security)
        self.cluster = Cluster(
            bootstrap,
            client_id=client_id,
            request_timeout_s=request_timeout_ms / 1000,
            security=self._security,
        )
        self._timeout_ms = request_timeout_ms

    @property
    def principal(self) -> str:
        """Who the brokers see this client as, in their ACLs' terms (``SecuritySettings.principal``)."""
        return self._security.principal()

    async def start(self) -> None:
        await self.cluster.refresh()

    async def close(self) -> None:
        await self.cluster.close()

    async def __aenter__(self) -> Admin:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def _controller(self) -> Any:
        if self.cluster.controller_id >= 0:
            return await self.cluster.connection(self.cluster.controller_id)
        return await self.cluster.any_connection()

    # --- queues ----------------------------------------------------------------------------------

    async def create_queue(
        self,
        name: str,
        partitions: int = 1,
        replication_factor: int = -1,
        settings: Mapping[str, str] | None = None,
        *,
        timeout_ms: int | None = None,
        wait_s: float = CREATION_WAIT_S,
        on_wait: Callable[[str], None] | None = None,
    ) -> QueueInfo:
        """Create a queue; QueueExistsError, InvalidQueueNameError, InvalidConfigError... on refusal.
        ``replication_factor`` -1: the broker's ``default.replication.factor``.

        ``timeout_ms`` (default: the request timeout) is how long the broker may work on it before it
        answers. A broker still creating the queue then answers REQUEST_TIMED_OUT and goes on, as Kafka
        does (e.g. 10,000 partitions on a slow disk): this is not a failure. The call then waits up to
        ``wait_s`` more for every partition to have a leader, passing ``on_wait`` a line about it now
        and then, and raises ClientTimeoutError only if the queue is still incomplete after that."""
        topic = m.CreatableTopic(
            name=name,
            num_partitions=partitions,
            replication_factor=replication_factor,
            assignments=[],
            configs=[m.CreatableTopicConfig(name=k, value=v) for k, v in (settings or {}).items()],
        )
        timeout_ms = self._timeout_ms if timeout_ms is None else timeout_ms
        conn = await self._controller()
        answer: m.CreateTopicsResponse = await self.cluster.send(
            conn,
            m.CreateTopicsRequest(topics=[topic], timeout_ms=timeout_ms),
            timeout_s=timeout_ms / 1000 + ANSWER_MARGIN_S,  # the broker answers at timeout_ms: hear it
        )
        still_creating = False
        for result in answer.topics:
            if result.error_code == ErrorCode.REQUEST_TIMED_OUT:
                still_creating = True
            else:
                _check(result.error_code, f"cannot create queue {name!r}", result.error_message)
        if still_creating:
            return await self._await_creation(name, partitions, wait_s, on_wait or (lambda _line: None))
        return await self._await_queue(name)

    async def _await_creation(
        self, name: str, partitions: int, wait_s: float, on_wait: Callable[[str], None]
    ) -> QueueInfo:
        """Wait for a creation the broker goes on with after answering REQUEST_TIMED_OUT."""
        on_wait(f"the broker is still creating queue {name} ({partitions} partitions); waiting for it")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        next_line = loop.time() + CREATION_LINE_EVERY_S
        ready = 0
        while True:
            try:
                info: QueueInfo | None = await self.cluster.queue(name, refresh=True)
            except UnknownQueueError:
                info = None  # not listed yet (cluster mode: the controller has not written it yet)
            if info is not None:
                ready = sum(p.leader >= 0 for p in info.partitions)
                partitions = len(info.partitions)
                if ready == partitions:
                    return info
            now = loop.time()
            if now >= deadline:
                raise ClientTimeoutError(
                    f"queue {name!r} is still being created after waiting {wait_s:g} s more "
                    f"({ready} of {partitions} partitions have a leader); the broker goes on with it"
                )
            if now >= next_line:
                next_line = now + CREATION_LINE_EVERY_S
                on_wait(f"still creating queue {name}: {ready} of {partitions} partitions ready")
            await asyncio.sleep(min(CREATION_POLL_S, deadline - now))

    async def _await_queue(self, name: str) -> QueueInfo:
        # Metadata may trail the creation by a moment in a cluster; ask until every partition has a leader.
        for _ in range(50):
            try:
                info = await self.cluster.queue(name, refresh=True)
            except UnknownQueueError:
                info = None
            if info is not None and all(p.leader >= 0 for p in info.partitions):
                return info
            await asyncio.sleep(0.1)
        return await self.cluster.queue(name, refresh=True)

    async def may_delete_queue(self, name: str) -> DeletePermission:
        """Whether the broker would delete queue ``name``, asked before anything is deleted (the command
        line asks this before it asks the user to confirm). The queue must exist and not be internal,
        and the broker that deletes (the controller) must allow it: with an authorizer, this client's
        principal needs DELETE on the queue (Metadata v8's authorized operations say whether it has it);
        without one, the broker's ``delete.queue.enable`` (Kafka's ``delete.topic.enable``) decides,
        read with DescribeConfigs. When the broker cannot say, the answer is allowed: the deletion itself
        then decides."""
        conn = await self._controller()
        refusal = await self._delete_refusal_by_acls(conn, name)
        if refusal is not None:
            return refusal
        try:
            info = await self.cluster.queue(name, refresh=True)
        except (UnknownQueueError, InvalidQueueNameError) as exc:
            return DeletePermission(False, str(exc))
        except AuthorizationError:
            return DeletePermission(False, _may_not_delete(self.principal, name))
        if info.internal:
            return DeletePermission(False, _internal_queue(name))
        broker_id = self.cluster.controller_id
        if broker_id < 0 or ApiKey.DESCRIBE_CONFIGS not in conn.versions:
            return DeletePermission(True, "the broker cannot say in advance")
        resource = m.DescribeConfigsResource(
            resource_type=_BROKER_RESOURCE,
            resource_name=str(broker_id),
            configuration_keys=[*_DELETE_SWITCHES, _AUTHORIZER_SWITCH],
        )
        answer: m.DescribeConfigsResponse = await self.cluster.send(
            conn, m.DescribeConfigsRequest(resources=[resource])
        )
        for result in answer.results:
            if result.error_code != ErrorCode.NONE:  # e.g. refused by the ACLs: then they decide
                return DeletePermission(True, "the broker cannot say in advance")
            values = {entry.name: (entry.value or "").lower() for entry in result.configs}
            if values.get(_AUTHORIZER_SWITCH) == "true":
                return DeletePermission(True, "")
            for key in _DELETE_SWITCHES:
                if values.get(key) == "false":
                    return DeletePermission(
                        False,
                        f"broker {broker_id} does not allow deleting queues ({key} = false): deleting "
                        f"is an admin's act, switched on in the broker's settings",
                    )
        return DeletePermission(True, "")

    async def _delete_refusal_by_acls(self, conn: Any, name: str) -> DeletePermission | None:
        """Metadata v8 with the queue's authorized operations: refused if this principal may not even
        see the queue, or may see it but not DELETE it (a broker without an authorizer allows all)."""
        if conn.version_for(ApiKey.METADATA) < 8:
            return None
        request = m.MetadataRequest(
            topics=[m.MetadataRequestTopic(name=name)],
            allow_auto_topic_creation=False,
            include_topic_authorized_operations=True,
        )
        answer: m.MetadataResponse = await self.cluster.send(conn, request)
        for topic in answer.topics:
            if topic.error_code == ErrorCode.TOPIC_AUTHORIZATION_FAILED:
                return DeletePermission(False, _may_not_delete(self.principal, name))
            ops = topic.topic_authorized_operations
            if topic.error_code == ErrorCode.NONE and ops != INT32_MIN and not ops >> AclOperation.DELETE & 1:
                return DeletePermission(False, _may_not_delete(self.principal, name))
        return None

    async def delete_queue(self, name: str) -> None:
        """Delete a queue and its data. Refused with TopicDeletionDisabledError unless the broker allows it
        (``delete.queue.enable``, an admin's switch until authentication exists); ``may_delete_queue``
        asks first without deleting anything."""
        conn = await self._controller()
        answer: m.DeleteTopicsResponse = await self.cluster.send(
            conn, m.DeleteTopicsRequest(topic_names=[name], timeout_ms=self._timeout_ms)
        )
        for result in answer.responses:
            if result.error_code == ErrorCode.TOPIC_DELETION_DISABLED:
                raise error_for_code(
                    result.error_code,
                    f"the broker refused to delete {name!r}: deleting queues is an admin's act, "
                    "and the broker allows it only with delete.queue.enable = true",
                )
            if result.error_code == ErrorCode.TOPIC_AUTHORIZATION_FAILED:
                raise AuthorizationError(
                    _may_not_delete(self.principal, name), code=ErrorCode(result.error_code)
                )
            if result.error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION:
                raise UnknownQueueError(f"queue {name!r} does not exist")
            if result.error_code == ErrorCode.INVALID_TOPIC_EXCEPTION:
                raise InvalidQueueNameError(
                    _internal_queue(name) if name.startswith("__") else invalid_name_reason(name)
                )
            _check(result.error_code, f"cannot delete queue {name!r}")
        self.cluster.queues.pop(name, None)

    async def list_queues(self, *, include_internal: bool = False) -> list[QueueInfo]:
        await self.cluster.refresh()
        return sorted(
            (q for q in self.cluster.queues.values() if include_internal or not q.internal),
            key=lambda q: q.name,
        )

    async def describe_queue(self, name: str) -> QueueDescription:
        info = await self.cluster.queue(name, refresh=True)
        parts = [QueuePartition(name, p.partition) for p in info.partitions]
        starts, ends, sizes, settings = await asyncio.gather(
            self.list_offsets(parts, EARLIEST),
            self.list_offsets(parts, LATEST),
            self._partition_sizes(info),
            self._queue_settings(name),
        )
        oldest = await asyncio.gather(*(self._oldest_timestamp(qp, starts[qp], ends[qp]) for qp in parts))
        described = tuple(
            PartitionDescription(
                p.partition,
                p.leader,
                p.replicas,
                p.isr,
                starts[qp],
                ends[qp],
                sizes.get(p.partition) if sizes is not None else None,
                ts,
            )
            for p, qp, ts in zip(info.partitions, parts, oldest, strict=True)
        )
        return QueueDescription(name, info.internal, described, settings)

    async def _partition_sizes(self, info: QueueInfo) -> dict[int, int] | None:
        """Bytes on disk per partition, from the leaders' DescribeLogDirs (None if not served)."""
        sizes: dict[int, int] = {}
        by_leader: dict[int, list[int]] = {}
        for p in info.partitions:
            by_leader.setdefault(p.leader, []).append(p.partition)
        for leader, partitions in by_leader.items():
            conn = await self.cluster.connection(leader)
            if ApiKey.DESCRIBE_LOG_DIRS not in conn.versions:
                return None
            request = m.DescribeLogDirsRequest(
                topics=[m.DescribableLogDirTopic(topic=info.name, partitions=partitions)]
            )
            answer: m.DescribeLogDirsResponse = await self.cluster.send(conn, request)
            for result in answer.results:
                for topic in result.topics:
                    if topic.name == info.name:
                        for size in topic.partitions:
                            if size.partition_index in partitions:
                                sizes[size.partition_index] = size.partition_size
        return sizes

    async def _queue_settings(self, name: str) -> dict[str, str]:
        """The queue's settings that differ from the broker's defaults (empty if not served)."""
        conn = await self._controller()
        if ApiKey.DESCRIBE_CONFIGS not in conn.versions:
            return {}
        request = m.DescribeConfigsRequest(
            resources=[m.DescribeConfigsResource(resource_type=_TOPIC_RESOURCE, resource_name=name)]
        )
        answer: m.DescribeConfigsResponse = await self.cluster.send(conn, request)
        version = conn.version_for(ApiKey.DESCRIBE_CONFIGS)
        out = {}
        for result in answer.results:
            _check(result.error_code, f"cannot read the settings of {name!r}", result.error_message)
            for entry in result.configs:
                # the queue's own settings (not the brokers' file or dynamic ones)
                own = not entry.is_default if version == 0 else entry.config_source == _QUEUE_CONFIG
                if own and entry.value is not None:
                    out[entry.name] = entry.value
        return out

    async def _oldest_timestamp(self, qp: QueuePartition, start: int, end: int) -> int | None:
        """The first retained batch's timestamp: fetch one batch at the log start."""
        if start >= end:
            return None
        conn = await self.cluster.leader_connection(qp.queue, qp.partition)
        request = m.FetchRequest(
            max_wait_ms=0,
            min_bytes=0,
            max_bytes=1,
            isolation_level=0,
            session_id=0,
            topics=[
                m.FetchTopic(
                    topic=qp.queue,
                    partitions=[
                        m.FetchPartition(partition=qp.partition, fetch_offset=start, partition_max_bytes=1)
                    ],
                )
            ],
            forgotten_topics_data=[],
            rack_id="",
        )
        answer: m.FetchResponse = await self.cluster.send(conn, request)
        for topic in answer.responses:
            for p in topic.partitions:
                records = bytes(p.records or b"")
                if p.error_code == ErrorCode.NONE and len(records) >= rb.HEADER_SIZE:
                    header = rb.parse_header(records)
                    if header.attributes & rb.ATTR_LOG_APPEND_TIME:
                        return header.max_timestamp
                    return header.base_timestamp
        return None

    async def list_offsets(
        self, partitions: Iterable[QueuePartition], timestamp: int
    ) -> dict[QueuePartition, int]:
        """Per partition: the first offset whose timestamp is >= ``timestamp`` (the log end when there is
        none), or the log start (EARLIEST) or log end (LATEST)."""
        by_leader: dict[int, list[QueuePartition]] = {}
        for qp in partitions:
            info = await self.cluster.queue(qp.queue)
            if not 0 <= qp.partition < info.partition_count:
                raise UnknownQueueError(f"queue {qp.queue!r} has no partition {qp.partition}")
            by_leader.setdefault(info.partitions[qp.partition].leader, []).append(qp)
        out: dict[QueuePartition, int] = {}
        latest: list[QueuePartition] = []
        for leader, qps in by_leader.items():
            conn = await self.cluster.connection(leader)
            topics: dict[str, list[m.ListOffsetsPartition]] = {}
            for qp in qps:
                topics.setdefault(qp.queue, []).append(
                    m.ListOffsetsPartition(partition_index=qp.partition, timestamp=timestamp)
                )
            request = m.ListOffsetsRequest(
                isolation_level=0,
                topics=[m.ListOffsetsTopic(name=n, partitions=ps) for n, ps in topics.items()],
            )
            answer: m.ListOffsetsResponse = await self.cluster.send(conn, request)
            for topic in answer.topics:
                for p in topic.partitions:
                    qp = QueuePartition(topic.name, p.partition_index)
                    _check(p.error_code, f"cannot list offsets of {qp.queue}/{qp.partition}")
                    if p.offset < 0:
                        latest.append(qp)  # no record at or after the timestamp
                    else:
                        out[qp] = p.offset
        if latest:
            out.update(await self.list_offsets(latest, LATEST))
        return out

    # --- users (SCRAM credentials, APIs 50/51) -------------------------------------------------------

    async def list_users(self, names: Sequence[str] | None = None) -> dict[str, list[tuple[str, int]]]:
        """User -> [(mechanism, iterations)], every user or the ``names`` given (an unknown one raises
        a BrokerError with RESOURCE_NOT_FOUND)."""
        body = m.DescribeUserScramCredentialsRequest(
            users=None if names is None else [m.UserName(name=n) for n in names]
        )
        answer = await self.cluster.send(await self.cluster.any_connection(), body)
        _check(answer.error_code, "list users", answer.error_message)
        users = {}
        for result in answer.results:
            _check(result.error_code, f"user {result.user!r}", result.error_message)
            users[result.user] = [
                (SCRAM_MECHANISMS.get(c.mechanism, str(c.mechanism)), c.iterations)
                for c in result.credential_infos
            ]
        return users

    async def set_user_password(
        self,
        user: str,
        password: str,
        *,
        mechanisms: Sequence[str] = ("SCRAM-SHA-256", "SCRAM-SHA-512"),
        iterations: int = DEFAULT_ITERATIONS,
    ) -> None:
        """Create ``user`` or change its password: a SCRAM credential per mechanism (salted and hashed
        here; the broker stores neither the password nor the salted password). Send it over TLS."""
        codes = {name: code for code, name in SCRAM_MECHANISMS.items()}
        upsertions = []
        for mechanism in mechanisms:
            if mechanism not in codes:
                raise ValueError(f"unknown SCRAM mechanism {mechanism!r}; expected one of {', '.join(codes)}")
            salt = secrets.token_bytes(SALT_BYTES)
            upsertions.append(
                m.ScramCredentialUpsertion(
                    name=user,
                    mechanism=codes[mechanism],
                    iterations=iterations,
                    salt=salt,
                    salted_password=salted_password(mechanism, password, salt, iterations),
                )
            )
        await self._alter_users(m.AlterUserScramCredentialsRequest(upsertions=upsertions), f"user {user!r}")

    async def delete_user(self, user: str) -> None:
        """Remove every credential of ``user``; BrokerError RESOURCE_NOT_FOUND if it has none."""
        mechanisms = (await self.list_users([user]))[user]
        codes = {name: code for code, name in SCRAM_MECHANISMS.items()}
        deletions = [m.ScramCredentialDeletion(name=user, mechanism=codes[mech]) for mech, _ in mechanisms]
        await self._alter_users(m.AlterUserScramCredentialsRequest(deletions=deletions), f"user {user!r}")

    async def _alter_users(self, body: m.AlterUserScramCredentialsRequest, what: str) -> None:
        answer = await self.cluster.send(await self.cluster.any_connection(), body)
        for result in answer.results:
            _check(result.error_code, what, result.error_message)

    # --- client quotas (APIs 48/49) ------------------------------------------------------------------

    async def list_client_quotas(
        self, *, user: str | None = None, client_id: str | None = None
    ) -> dict[QuotaEntity, dict[str, float]]:
        """Every quota entity, or those naming ``user`` / ``client_id`` (``logq.quotas.DEFAULT``: the
        default entity of that kind): entity -> {key: value}."""
        components = []
        for kind, name in (("user", user), ("client-id", client_id)):
            if name is None:
                continue
            default = name == DEFAULT_ENTITY
            components.append(
                m.ClientQuotaFilterComponent(
                    entity_type=kind, match_type=1 if default else 0, match=None if default else name
                )
            )
        body = m.DescribeClientQuotasRequest(components=components, strict=False)
        answer = await self.cluster.send(await self.cluster.any_connection(), body)
        _check(answer.error_code, "list client quotas", answer.error_message)
        out: dict[QuotaEntity, dict[str, float]] = {}
        for entry in answer.entries or ():
            names = {
                p.entity_type: DEFAULT_ENTITY if p.entity_name is None else p.entity_name
                for p in entry.entity
            }
            entity = QuotaEntity(names.get("user"), names.get("client-id"))
            out[entity] = {v.key: v.value for v in entry.values}
        return out

    async def alter_client_quotas(
        self, entity: QuotaEntity, changes: Mapping[str, float | None], *, validate_only: bool = False
    ) -> None:
        """Set (a value) or remove (None) quota keys of one entity, in force on every broker within a
        second; a BrokerError INVALID_REQUEST names a bad key or value."""
        ops = [
            m.AlterClientQuotasOp(key=k, value=0.0 if v is None else float(v), remove=v is None)
            for k, v in changes.items()
        ]
        parts = [m.ClientQuotaEntityPart(entity_type=t, entity_name=n) for t, n in entity_parts(entity)]
        body = m.AlterClientQuotasRequest(
            entries=[m.AlterClientQuotasEntry(entity=parts, ops=ops)], validate_only=validate_only
        )
        answer = await self.cluster.send(await self.cluster.any_connection(), body)
        for result in answer.entries:
            _check(result.error_code, f"quotas of {entity.describe()}", result.error_message)

    # --- groups ----------------------------------------------------------------------------------

    async def list_groups(self) -> list[GroupListing]:
        listed: dict[str, str] = {}
        for node_id in list(self.cluster.brokers) or [-1]:
            conn = await (self.cluster.connection(node_id) if node_id >= 0 else self.cluster.any_connection())
            answer: m.ListGroupsResponse = await self.cluster.send(conn, m.ListGroupsRequest())
            _check(answer.error_code, "cannot list groups")
            for g in answer.groups:
                listed[g.group_id] = g.protocol_type
        states = await self._describe_raw(sorted(listed))
        return [
            GroupListing(name, listed[name], states[name].group_state if name in states else "Unknown")
            for name in sorted(listed)
        ]

    async def _describe_raw(self, groups: Sequence[str]) -> dict[str, m.DescribedGroup]:
        out = {}
        for group in groups:
            conn = await self.cluster.coordinator(group)
            answer: m.DescribeGroupsResponse = await self.cluster.send(
                conn, m.DescribeGroupsRequest(groups=[group])
            )
            for g in answer.groups:
                _check(g.error_code, f"cannot describe group {g.group_id!r}")
                out[g.group_id] = g
        return out

    async def committed_offsets(
        self, group: str, partitions: Sequence[QueuePartition] | None = None
    ) -> dict[QueuePartition, int]:
        """The group's committed offsets (every one it has when ``partitions`` is None)."""
        topics = None
        if partitions is not None:
            grouped: dict[str, list[int]] = {}
            for qp in partitions:
                grouped.setdefault(qp.queue, []).append(qp.partition)
            topics = [m.OffsetFetchRequestTopic(name=n, partition_indexes=ps) for n, ps in grouped.items()]
        conn = await self.cluster.coordinator(group)
        answer: m.OffsetFetchResponse = await self.cluster.send(
            conn, m.OffsetFetchRequest(group_id=group, topics=topics)
        )
        _check(answer.error_code, f"cannot read the offsets of group {group!r}")
        out = {}
        for topic in answer.topics:
            for p in topic.partitions:
                if p.error_code == ErrorCode.NONE and p.committed_offset >= 0:
                    out[QueuePartition(topic.name, p.partition_index)] = p.committed_offset
        return out

    async def describe_group(self, group: str) -> GroupDescription:
        """Members with their assignments, and per partition the committed offset, log end and lag.

        Partitions shown: every partition of every queue the group consumes, that is the queues its
        live members subscribe to or are assigned and those it has committed offsets for; a partition
        without a commit shows ``committed`` None and counts its lag from the log start. Raises
        BrokerError (GROUP_ID_NOT_FOUND) when the broker knows nothing of the group."""
        raw = (await self._describe_raw([group]))[group]
        committed = await self.committed_offsets(group)
        if raw.group_state == "Dead" and not committed:
            raise error_for_code(ErrorCode.GROUP_ID_NOT_FOUND, f"group {group!r} does not exist")
        consumer = raw.protocol_type == "consumer"
        members = tuple(
            GroupMemberDescription(
                mem.member_id,
                mem.client_id,
                mem.client_host,
                mem.group_instance_id,
                _assigned(mem.member_assignment) if consumer else (),
            )
            for mem in raw.members
        )
        owners = {qp: mem.member_id for mem in members for qp in mem.assignment}
        subscribed = {q for mem in raw.members if consumer for q in _subscribed(mem.member_metadata)}
        queues = {qp.queue for qp in committed} | {qp.queue for qp in owners} | subscribed
        partitions: list[QueuePartition] = []
        for name in sorted(queues):  # committed offsets may outlive a deleted queue: skip those
            with contextlib.suppress(UnknownQueueError):
                partitions += await self.partitions_of(name)
        starts, ends = await asyncio.gather(
            self.list_offsets(partitions, EARLIEST), self.list_offsets(partitions, LATEST)
        )
        offsets = tuple(
            PartitionOffsets(qp.queue, qp.partition, committed.get(qp), starts[qp], ends[qp], owners.get(qp))
            for qp in partitions
        )
        return GroupDescription(
            group, raw.group_state, raw.protocol_type, raw.protocol_data, members, offsets
        )

    async def plan_offset_reset(
        self, group: str, partitions: Sequence[QueuePartition], spec: ResetSpec, *, now_ms: int
    ) -> list[ResetRow]:
        """What a reset would do: per partition the current committed offset and the new one (clamped into
        [log start, log end], as Kafka does)."""
        committed = await self.committed_offsets(group, partitions)
        starts, ends = await asyncio.gather(
            self.list_offsets(partitions, EARLIEST), self.list_offsets(partitions, LATEST)
        )
        if spec.kind in ("datetime", "duration"):
            ts = spec.value if spec.kind == "datetime" else now_ms - spec.value
            targets = await self.list_offsets(partitions, ts)
        rows = []
        for qp in partitions:
            start, end, current = starts[qp], ends[qp], committed.get(qp)
            if spec.kind == "earliest":
                new = start
            elif spec.kind == "latest":
                new = end
            elif spec.kind == "offset":
                new = spec.value
            elif spec.kind == "shift":
                new = (start if current is None else current) + spec.value
            else:
                new = targets[qp]
            rows.append(ResetRow(qp.queue, qp.partition, current, min(max(new, start), end), start, end, new))
        return rows

    async def apply_offset_reset(self, group: str, rows: Sequence[ResetRow]) -> None:
        """Commit the planned offsets for the group. Refused with GroupNotEmptyError while the group has
        live members: they hold their positions in memory and their next commit would undo the reset."""
        raw = (await self._describe_raw([group]))[group]
        if raw.members:
            names = ", ".join(f"{mem.client_id} ({mem.client_host})" for mem in raw.members[:5])
            more = f" and {len(raw.members) - 5} more" if len(raw.members) > 5 else ""
            raise GroupNotEmptyError(
                f"group {group!r} is {raw.group_state} with {len(raw.members)} live member(s): "
                f"{names}{more}; their next commit would overwrite a reset, so stop them "
                "(or wait for their sessions to expire) and run the reset again"
            )
        topics: dict[str, list[m.OffsetCommitRequestPartition]] = {}
        for row in rows:
            topics.setdefault(row.queue, []).append(
                m.OffsetCommitRequestPartition(
                    partition_index=row.partition, committed_offset=row.new, committed_metadata=""
                )
            )
        conn = await self.cluster.coordinator(group)
        request = m.OffsetCommitRequest(
            group_id=group,
            generation_id=-1,
            member_id="",
            topics=[m.OffsetCommitRequestTopic(name=n, partitions=ps) for n, ps in topics.items()],
        )
        answer: m.OffsetCommitResponse = await self.cluster.send(conn, request)
        for topic in answer.topics:
            for p in topic.partitions:
                if p.error_code in (ErrorCode.UNKNOWN_MEMBER_ID, ErrorCode.ILLEGAL_GENERATION):
                    raise GroupNotEmptyError(
                        f"group {group!r} gained members while the reset was applied; run it again "
                        "once they have stopped"
                    )
                _check(p.error_code, f"cannot reset {topic.name}/{p.partition_index} for {group!r}")

    # --- growing a queue (CreatePartitions) ---------------------------------------------------------

    async def create_partitions(
        self,
        name: str,
        total: int,
        assignments: Sequence[Sequence[int]] | None = None,
        *,
        validate_only: bool = False,
        timeout_ms: int | None = None,
    ) -> QueueInfo:
        """Grow queue ``name`` to ``total`` partitions (never fewer: InvalidPartitionsError); the broker
        places the new ones unless ``assignments`` gives each new partition's replicas (leader first).
        Returns the queue once every partition has a leader (with ``validate_only``: as it is, unchanged).
        Producers spread keys over the new count once their metadata shows it, so a key's partition may
        change. UnknownQueueError, InvalidReplicaAssignmentError, AuthorizationError on refusal."""
        timeout_ms = self._timeout_ms if timeout_ms is None else timeout_ms
        topic = m.CreatePartitionsTopic(
            name=name,
            count=total,
            assignments=None
            if assignments is None
            else [m.CreatePartitionsAssignment(broker_ids=list(a)) for a in assignments],
        )
        conn = await self._controller()
        answer: m.CreatePartitionsResponse = await self.cluster.send(
            conn,
            m.CreatePartitionsRequest(topics=[topic], timeout_ms=timeout_ms, validate_only=validate_only),
            timeout_s=timeout_ms / 1000 + ANSWER_MARGIN_S,
        )
        for result in answer.results:
            _check(
                result.error_code, f"cannot grow queue {name!r} to {total} partitions", result.error_message
            )
        if validate_only:
            return await self.cluster.queue(name, refresh=True)
        for _ in range(50):  # in a cluster, this broker's metadata may trail the change by a moment
            info = await self.cluster.queue(name, refresh=True)
            if len(info.partitions) >= total and all(p.leader >= 0 for p in info.partitions):
                return info
            await asyncio.sleep(0.1)
        return await self.cluster.queue(name, refresh=True)

    # --- records (DeleteRecords, API 21) ----------------------------------------------------------

    async def plan_record_deletion(
        self,
        queue: str,
        *,
        before: int | None = None,
        before_time_ms: int | None = None,
        partitions: Sequence[int] | None = None,
    ) -> list[RecordDeletionRow]:
        """What ``delete_records`` would do, deleting nothing: per partition (all of them by default) the
        log start now and the new one, for every record below offset ``before`` (past the end: up to the
        end) or every record older than ``before_time_ms`` (ListOffsets by timestamp). Refused up front
        with AuthorizationError when this principal may not DELETE the queue (Metadata v8's authorized
        operations), so a dry run already says it."""
        if (before is None) == (before_time_ms is None):
            raise ValueError("give exactly one of before (an offset) and before_time_ms")
        if before is not None and before < 0:
            raise ValueError(f"offset {before} is negative: records are deleted below an offset >= 0")
        if await self._delete_refusal_by_acls(await self._controller(), queue) is not None:
            raise AuthorizationError(
                f"{self.principal} may not delete records of queue {queue} (needs DELETE on TOPIC:{queue})",
                code=ErrorCode.TOPIC_AUTHORIZATION_FAILED,
            )
        every = await self.partitions_of(queue)
        chosen = every if partitions is None else [QueuePartition(queue, p) for p in partitions]
        missing = [qp.partition for qp in chosen if qp not in every]
        if missing:
            raise UnknownQueueError(f"queue {queue!r} has no partition {missing[0]} (it has {len(every)})")
        starts, ends = await asyncio.gather(
            self.list_offsets(chosen, EARLIEST), self.list_offsets(chosen, LATEST)
        )
        targets = (
            dict.fromkeys(chosen, before)
            if before is not None
            else await self.list_offsets(chosen, before_time_ms or 0)
        )
        return [
            RecordDeletionRow(
                qp.queue, qp.partition, starts[qp], max(starts[qp], min(targets[qp], ends[qp])), ends[qp]
            )
            for qp in chosen
        ]

    async def delete_records(
        self, offsets: Mapping[QueuePartition, int], *, timeout_ms: int | None = None
    ) -> dict[QueuePartition, int]:
        """Delete every record below the given offset of each partition (-1: below the high watermark,
        all of it): the offset becomes the partition's log start. Returns each partition's new low
        watermark, once every in-sync replica has it (within ``timeout_ms``, default the request
        timeout). Raises a LogqError: OffsetOutOfRangeError past the high watermark, AuthorizationError
        without DELETE on the queue, BrokerError with POLICY_VIOLATION for a compacted queue, ..."""
        wait_ms = self._timeout_ms if timeout_ms is None else timeout_ms
        out: dict[QueuePartition, int] = {}
        pending = dict(offsets)
        for attempt in range(2):  # a leader that moved: refresh the metadata and ask the new one once
            by_leader: dict[int, list[QueuePartition]] = {}
            for qp in pending:
                info = await self.cluster.queue(qp.queue, refresh=attempt > 0)
                if not 0 <= qp.partition < info.partition_count:
                    raise UnknownQueueError(f"queue {qp.queue!r} has no partition {qp.partition}")
                by_leader.setdefault(info.partitions[qp.partition].leader, []).append(qp)
            moved: dict[QueuePartition, int] = {}
            for leader, qps in by_leader.items():
                answer = await self._delete_records_on(leader, {qp: pending[qp] for qp in qps}, wait_ms)
                for topic in answer.topics:
                    for p in topic.partitions:
                        qp = QueuePartition(topic.name, p.partition_index)
                        if p.error_code == ErrorCode.NOT_LEADER_OR_FOLLOWER and attempt == 0:
                            moved[qp] = pending[qp]
                        elif p.error_code == ErrorCode.TOPIC_AUTHORIZATION_FAILED:
                            raise AuthorizationError(
                                f"{self.principal} may not delete records of queue {qp.queue} "
                                f"(needs DELETE on TOPIC:{qp.queue})",
                                code=ErrorCode.TOPIC_AUTHORIZATION_FAILED,
                            )
                        else:
                            _check(p.error_code, f"cannot delete records of {qp.queue}/{qp.partition}")
                            out[qp] = p.low_watermark
            if not moved:
                break
            pending = moved
        return out

    async def _delete_records_on(
        self, leader: int, offsets: Mapping[QueuePartition, int], wait_ms: int
    ) -> m.DeleteRecordsResponse:
        conn = await self.cluster.connection(leader)
        topics: dict[str, list[m.DeleteRecordsPartition]] = {}
        for qp, offset in offsets.items():
            topics.setdefault(qp.queue, []).append(
                m.DeleteRecordsPartition(partition_index=qp.partition, offset=offset)
            )
        request = m.DeleteRecordsRequest(
            topics=[m.DeleteRecordsTopic(name=n, partitions=ps) for n, ps in topics.items()],
            timeout_ms=wait_ms,
        )
        answer: m.DeleteRecordsResponse = await self.cluster.send(
            conn, request, timeout_s=wait_ms / 1000 + ANSWER_MARGIN_S
        )
        return answer

    async def partitions_of(self, queue: str) -> list[QueuePartition]:
        info = await self.cluster.queue(queue, refresh=True)
        return [QueuePartition(queue, p.partition) for p in info.partitions]

    # --- group deletion --------------------------------------------------------------------------

    async def check_group_deletable(self, group: str) -> dict[QueuePartition, int]:
        """What ``delete_group`` would remove: the group's committed offsets. Raises GroupNotEmptyError
        naming the live members, or BrokerError GROUP_ID_NOT_FOUND for a group the broker does not know
        (a dry run's check; the broker checks again when asked to delete)."""
        raw = (await self._describe_raw([group]))[group]
        committed = await self.committed_offsets(group)
        if raw.members:
            raise GroupNotEmptyError(
                f"group {group!r} is {raw.group_state} with {_live_members(raw)}: stop them "
                "(or wait for their sessions to expire) before deleting it",
                code=ErrorCode.NON_EMPTY_GROUP,
            )
        if raw.group_state == "Dead" and not committed:
            raise error_for_code(ErrorCode.GROUP_ID_NOT_FOUND, f"group {group!r} does not exist")
        return committed

    async def delete_group(self, group: str) -> None:
        """Delete an empty group (DeleteGroups): its committed offsets and its record are removed for good
        (a restart or a new coordinator does not bring them back) and it leaves the group listings.
        Raises GroupNotEmptyError (NON_EMPTY_GROUP) naming the live members, BrokerError
        GROUP_ID_NOT_FOUND for an unknown group, AuthorizationError without DELETE on the group."""
        answer: m.DeleteGroupsResponse = await self._send_to_coordinator(
            group, m.DeleteGroupsRequest(groups_names=[group]), lambda a: a.results[0].error_code
        )
        code = answer.results[0].error_code
        if code == ErrorCode.NON_EMPTY_GROUP:
            await self.check_group_deletable(group)  # raises, naming the members
        _check(code, f"cannot delete group {group!r}")

    async def check_offsets_deletable(self, group: str, queues: Iterable[str]) -> None:
        """Raise GroupNotEmptyError when live members of the group subscribe to one of ``queues`` (the
        broker would refuse to delete their offsets: GROUP_SUBSCRIBED_TO_TOPIC), BrokerError
        GROUP_ID_NOT_FOUND for an unknown group."""
        raw = (await self._describe_raw([group]))[group]
        if raw.group_state == "Dead" and not await self.committed_offsets(group):
            raise error_for_code(ErrorCode.GROUP_ID_NOT_FOUND, f"group {group!r} does not exist")
        consumer = raw.protocol_type == "consumer"
        subscribed = {q for mem in raw.members if consumer for q in _subscribed(mem.member_metadata)}
        for queue in sorted(set(queues)):
            if raw.members and (queue in subscribed or not consumer):
                raise GroupNotEmptyError(
                    f"group {group!r} consumes queue {queue!r}: {_live_members(raw)}; stop them (or "
                    "unsubscribe them from it) before deleting its offsets",
                    code=ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC,
                )

    async def delete_offsets(self, group: str, partitions: Sequence[QueuePartition]) -> None:
        """Delete the group's committed offsets of ``partitions`` (OffsetDelete): allowed for any queue
        while the group is empty, otherwise only for queues no live member subscribes to. Raises
        GroupNotEmptyError (GROUP_SUBSCRIBED_TO_TOPIC or NON_EMPTY_GROUP) naming the members, BrokerError
        GROUP_ID_NOT_FOUND, UnknownQueueError for a partition that does not exist."""
        grouped: dict[str, list[int]] = {}
        for qp in partitions:
            grouped.setdefault(qp.queue, []).append(qp.partition)
        request = m.OffsetDeleteRequest(
            group_id=group,
            topics=[
                m.OffsetDeleteRequestTopic(
                    name=name, partitions=[m.OffsetDeleteRequestPartition(partition_index=p) for p in ps]
                )
                for name, ps in grouped.items()
            ],
        )
        answer: m.OffsetDeleteResponse = await self._send_to_coordinator(
            group, request, lambda a: a.error_code
        )
        refused = {ErrorCode.NON_EMPTY_GROUP, ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC}
        codes = [answer.error_code] + [p.error_code for t in answer.topics for p in t.partitions]
        if refused & set(codes):
            await self.check_offsets_deletable(group, grouped)  # raises, naming the members
        _check(answer.error_code, f"cannot delete offsets of group {group!r}")
        for topic in answer.topics:
            for p in topic.partitions:
                _check(
                    p.error_code,
                    f"cannot delete the offset of {topic.name}/{p.partition_index} for {group!r}",
                )

    async def _send_to_coordinator(self, group: str, body: Any, code_of: Callable[[Any], int]) -> Any:
        """Send to the group's coordinator, finding it again while the answer says it moved or loads."""
        moved = (ErrorCode.NOT_COORDINATOR, ErrorCode.COORDINATOR_NOT_AVAILABLE)
        for attempt in range(COORDINATOR_ATTEMPTS):
            answer = await self.cluster.send(await self.cluster.coordinator(group), body)
            code = code_of(answer)
            if (
                code not in (*moved, ErrorCode.COORDINATOR_LOAD_IN_PROGRESS)
                or attempt == COORDINATOR_ATTEMPTS - 1
            ):
                return answer
            if code in moved:
                self.cluster.forget_coordinator(group)
            await asyncio.sleep(COORDINATOR_BACKOFF_S * (attempt + 1))
        raise AssertionError("unreachable")  # the last attempt returns

    # --- settings after creation (AlterConfigs, IncrementalAlterConfigs, DescribeConfigs) -----------

    async def describe_queue_settings(self, name: str) -> list[SettingDescription]:
        """Every setting of queue ``name`` with its value and where it comes from (``SOURCE_NAMES``)."""
        conn = await self._controller()
        return await self._describe_settings(conn, _TOPIC_RESOURCE, name, f"the settings of {name!r}")

    async def alter_queue_settings(
        self,
        name: str,
        set_settings: Mapping[str, str] | None = None,
        delete: Sequence[str] = (),
        *,
        validate_only: bool = False,
    ) -> None:
        """Set and delete (back to the broker's value) some of queue ``name``'s settings, the others kept
        (IncrementalAlterConfigs). INVALID_CONFIG names a bad key or value; nothing is changed then."""
        conn = await self._controller()
        await self._alter_settings(
            conn, _TOPIC_RESOURCE, name, set_settings or {}, delete, validate_only=validate_only
        )

    async def describe_broker_settings(self, broker_id: int | None = None) -> list[SettingDescription]:
        """The settings of broker ``broker_id`` (default: the controller, else any), the dynamic ones
        with where their value comes from."""
        conn, node = await self._broker(broker_id)
        return await self._describe_settings(
            conn, _BROKER_RESOURCE, str(node), f"the settings of broker {node}"
        )

    async def alter_broker_settings(
        self,
        set_settings: Mapping[str, str] | None = None,
        delete: Sequence[str] = (),
        *,
        broker_id: int | None = None,
        validate_only: bool = False,
    ) -> None:
        """Set and delete dynamic broker settings: cluster-wide (``broker_id`` None), or of one broker
        (sent to that broker, as Kafka requires)."""
        if broker_id is None:
            conn, name = await self._controller(), ""
        else:
            conn, node = await self._broker(broker_id)
            name = str(node)
        await self._alter_settings(
            conn, _BROKER_RESOURCE, name, set_settings or {}, delete, validate_only=validate_only
        )

    async def _broker(self, broker_id: int | None) -> tuple[Any, int]:
        if broker_id is None:
            await self.cluster.refresh()
            controller = self.cluster.controller_id
            broker_id = controller if controller >= 0 else min(self.cluster.brokers)
        return await self.cluster.connection(broker_id), broker_id

    async def _describe_settings(
        self, conn: Any, kind: int, name: str, what: str
    ) -> list[SettingDescription]:
        if ApiKey.DESCRIBE_CONFIGS not in conn.versions:
            raise LogqError(f"cannot read {what}: the broker does not serve DescribeConfigs")
        request = m.DescribeConfigsRequest(
            resources=[m.DescribeConfigsResource(resource_type=kind, resource_name=name)]
        )
        answer: m.DescribeConfigsResponse = await self.cluster.send(conn, request)
        version = conn.version_for(ApiKey.DESCRIBE_CONFIGS)
        out = []
        for result in answer.results:
            _check(result.error_code, f"cannot read {what}", result.error_message)
            for entry in result.configs:
                source = entry.config_source if version >= 1 else (_DEFAULT_CONFIG if entry.is_default else 1)
                out.append(
                    SettingDescription(
                        entry.name, entry.value, SOURCE_NAMES.get(source, "unknown"), entry.read_only
                    )
                )
        return sorted(out, key=lambda d: d.name)

    async def _alter_settings(
        self,
        conn: Any,
        kind: int,
        name: str,
        set_settings: Mapping[str, str],
        delete: Sequence[str],
        *,
        validate_only: bool,
    ) -> None:
        if kind == _TOPIC_RESOURCE:
            what = f"queue {name!r}"
        else:
            what = f"the settings of broker {name}" if name else "the cluster-wide broker settings"
        if ApiKey.INCREMENTAL_ALTER_CONFIGS not in conn.versions:
            raise LogqError(f"cannot change {what}: the broker does not serve IncrementalAlterConfigs")
        configs = [
            m.IncrementalAlterableConfig(name=k, config_operation=_SET, value=v)
            for k, v in set_settings.items()
        ]
        configs += [
            m.IncrementalAlterableConfig(name=k, config_operation=_DELETE, value=None) for k in delete
        ]
        request = m.IncrementalAlterConfigsRequest(
            resources=[
                m.IncrementalAlterConfigsResource(resource_type=kind, resource_name=name, configs=configs)
            ],
            validate_only=validate_only,
        )
        answer: m.IncrementalAlterConfigsResponse = await self.cluster.send(conn, request)
        for result in answer.responses:
            _check(result.error_code, f"cannot change {what}", result.error_message)

    # --- ACLs ------------------------------------------------------------------------------------

    async def create_acls(self, bindings: Sequence[AclBinding]) -> None:
        """Create ACL bindings (needs ALTER on the cluster). Each is created or refused on its own; the
        first refusal is raised (INVALID_REQUEST with the reason, CLUSTER_AUTHORIZATION_FAILED,
        SECURITY_DISABLED when the broker has no authorizer)."""
        await acls.create_acls(self.cluster, await self._controller(), bindings)

    async def describe_acls(self, acl_filter: AclBindingFilter | None = None) -> list[AclBinding]:
        """The bindings the filter matches (every one by default; needs DESCRIBE on the cluster)."""
        return await acls.describe_acls(
            self.cluster, await self._controller(), acl_filter or AclBindingFilter()
        )

    async def delete_acls(self, filters: Sequence[AclBindingFilter]) -> list[AclBinding]:
        """Delete every binding some filter matches (needs ALTER on the cluster); the bindings deleted."""
        return await acls.delete_acls(self.cluster, await self._controller(), filters)


__all__ = [
    "EARLIEST",
    "LATEST",
    "Admin",
    "AuthorizationError",
    "DeletePermission",
    "GroupDescription",
    "GroupListing",
    "GroupMemberDescription",
    "GroupNotEmptyError",
    "LogqError",
    "PartitionDescription",
    "PartitionOffsets",
    "QueueDescription",
    "ResetRow",
    "ResetSpec",
    "SettingDescription",
]
