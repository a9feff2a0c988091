"""What the client knows of the cluster: brokers, queues and their partition leaders, one connection per
broker, and group coordinators. Shared by the producer, the consumer and the admin client.

Metadata is cached and refreshed on demand (an error such as NOT_LEADER_OR_FOLLOWER makes the caller ask
for a refresh) and when older than ``metadata_max_age_s``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from logq.client.connection import BrokerConnection, BrokerConnectionError
from logq.client.security import SecuritySettings
from logq.error_codes import ErrorCode
from logq.errors import (
    AuthenticationError,
    AuthorizationError,
    BrokerUnavailableError,
    ClientTimeoutError,
    InvalidQueueNameError,
    UnknownQueueError,
    error_for_code,
)
from logq.protocol import messages as m
from logq.protocol.apis import spec_for_request
from logq.queues import validate_queue_name

DEFAULT_BOOTSTRAP = "127.0.0.1:9092"


def parse_bootstrap(bootstrap: str | Sequence[str]) -> list[tuple[str, int]]:
    """``"host:port,host:port"`` (or a list of ``host:port``) as (host, port) pairs; ValueError if bad."""
    items = bootstrap.split(",") if isinstance(bootstrap, str) else list(bootstrap)
    out = []
    for item in (i.strip() for i in items):
        host, sep, port = item.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"bad bootstrap address {item!r}: expected HOST:PORT")
        out.append((host.strip("[]"), int(port)))
    if not out:
        raise ValueError("no bootstrap address given")
    return out


def invalid_name_reason(name: str) -> str:
    """Why a broker refused ``name`` (INVALID_TOPIC_EXCEPTION), in logq's words when its rules say."""
    try:
        validate_queue_name(name)
    except InvalidQueueNameError as exc:
        return str(exc)
    if name.startswith("__"):
        return f"queue {name!r} is internal: clients may not use it this way"
    return f"queue {name!r}: the broker says the name is not valid"


class QueuePartition(NamedTuple):
    """One partition of one queue (Kafka's TopicPartition)."""

    queue: str
    partition: int


@dataclass(frozen=True, slots=True)
class BrokerNode:
    node_id: int
    host: str
    port: int

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class PartitionInfo:
    partition: int
    leader: int  # node id, -1 while there is none
    leader_epoch: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    error_code: int


@dataclass(frozen=True, slots=True)
class QueueInfo:
    name: str
    partitions: tuple[PartitionInfo, ...]
    internal: bool

    @property
    def partition_count(self) -> int:
        return len(self.partitions)


class Cluster:
    def __init__(
        self,
        bootstrap: str | Sequence[str] = DEFAULT_BOOTSTRAP,
        *,
        client_id: str = "logq",
        request_timeout_s: float = 30.0,
        metadata_max_age_s: float = 300.0,
        security: SecuritySettings | None = None,
    ) -> None:
        self.bootstrap = parse_bootstrap(bootstrap)
        self.security = security
        self.client_id = client_id
        self.request_timeout_s = request_timeout_s
        self.metadata_max_age_s = metadata_max_age_s
        self.brokers: dict[int, BrokerNode] = {}
        self.queues: dict[str, QueueInfo] = {}
        self.cluster_id: str | None = None
        self.controller_id = -1
        self._fetched_at: dict[str, float] = {}
        self._connections: dict[int, BrokerConnection] = {}
        self._connecting: dict[int, asyncio.Future[BrokerConnection]] = {}
        self._bootstrap_conn: BrokerConnection | None = None
        self._coordinators: dict[str, int] = {}
        self._closed = False

    # --- requests ---------------------------------------------------------------------------------

    async def send(self, conn: BrokerConnection, body: Any, *, timeout_s: float | None = None) -> Any:
        """Send ``body`` at the highest version both sides speak; the decoded answer.

        Raises BrokerUnavailableError when the connection fails and ClientTimeoutError on timeout."""
        version = conn.version_for(spec_for_request(type(body)).api_key)
        timeout = self.request_timeout_s if timeout_s is None else timeout_s
        try:
            return await conn.request(body, version, timeout_s=timeout)
        except TimeoutError:
            raise ClientTimeoutError(f"{conn.address} did not answer within {timeout:g} s") from None

    # --- connections ------------------------------------------------------------------------------

    async def any_connection(self) -> BrokerConnection:
        """A connection to some broker: a known one if connected, else the bootstrap list in order."""
        for conn in self._connections.values():
            if not conn.closed:
                return conn
        if self._bootstrap_conn is not None and not self._bootstrap_conn.closed:
            return self._bootstrap_conn
        failures = []
        for host, port in self.bootstrap:
            try:
                conn = await BrokerConnection.open(
                    host,
                    port,
                    client_id=self.client_id,
                    timeout_s=min(self.request_timeout_s, 10.0),
                    security=self.security,
                )
            except BrokerConnectionError as exc:
                failures.append((f"{host}:{port}", exc.reason))
                continue
            self._bootstrap_conn = conn
            return conn
        if len(failures) == 1:
            address, reason = failures[0]
            raise BrokerUnavailableError(f"cannot reach a broker at {address}: {reason}")
        raise BrokerUnavailableError(
            "cannot reach a broker: " + "; ".join(f"{address}: {reason}" for address, reason in failures)
        )

    async def connection(self, node_id: int) -> BrokerConnection:
        """The connection to broker ``node_id`` (opened on first use, reopened after a failure)."""
        conn = self._connections.get(node_id)
        if conn is not None and not conn.closed:
            return conn
        pending = self._connecting.get(node_id)
        if pending is not None:
            return await asyncio.shield(pending)
        node = self.brokers.get(node_id)
        if node is None:
            await self.refresh()
            node = self.brokers.get(node_id)
            if node is None:
                raise BrokerUnavailableError(f"broker {node_id} is not in the cluster's metadata")
        future: asyncio.Future[BrokerConnection] = asyncio.get_running_loop().create_future()
        self._connecting[node_id] = future
        try:
            conn = await BrokerConnection.open(
                node.host,
                node.port,
                client_id=self.client_id,
                timeout_s=min(self.request_timeout_s, 10.0),
                security=self.security,
            )
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: nobody else may be waiting
            raise
        finally:
            del self._connecting[node_id]
        self._connections[node_id] = conn
        future.set_result(conn)
        return conn

    # --- metadata ---------------------------------------------------------------------------------

    async def refresh(
        self, queues: Iterable[str] | None = None, *, allow_auto_create: bool = False
    ) -> m.MetadataResponse:
        """Ask a broker for metadata of ``queues`` (None: every queue) and update the cache."""
        names = None if queues is None else sorted(set(queues))
        body = m.MetadataRequest(
            topics=None if names is None else [m.MetadataRequestTopic(name=n) for n in names],
            allow_auto_topic_creation=allow_auto_create,
        )
        try:
            conn = await self.any_connection()
            answer: m.MetadataResponse = await self.send(conn, body)
        except AuthenticationError:
            raise  # another connection would be refused the same way
        except BrokerUnavailableError:
            # The connection we used may have died with its broker; try the others once.
            conn = await self._fresh_connection()
            answer = await self.send(conn, body)
        self._apply(answer, names)
        return answer

    async def _fresh_connection(self) -> BrokerConnection:
        for node_id in list(self._connections):
            if self._connections[node_id].closed:
                del self._connections[node_id]
        for node_id in list(self.brokers):
            try:
                return await self.connection(node_id)
            except BrokerUnavailableError:
                continue
        self._bootstrap_conn = None
        return await self.any_connection()

    def _apply(self, answer: m.MetadataResponse, names: list[str] | None) -> None:
        if answer.brokers:
            self.brokers = {b.node_id: BrokerNode(b.node_id, b.host, b.port) for b in answer.brokers}
        self.cluster_id = answer.cluster_id
        self.controller_id = answer.controller_id
        now = time.monotonic()
        seen = set()
        for topic in answer.topics:
            seen.add(topic.name)
            if topic.error_code != ErrorCode.NONE:
                self.queues.pop(topic.name, None)
                continue
            parts = sorted(
                (
                    PartitionInfo(
                        p.partition_index,
                        p.leader_id,
                        p.leader_epoch,
                        tuple(p.replica_nodes),
                        tuple(p.isr_nodes),
                        p.error_code,
                    )
                    for p in topic.partitions
                ),
                key=lambda p: p.partition,
            )
            self.queues[topic.name] = QueueInfo(topic.name, tuple(parts), topic.is_internal)
            self._fetched_at[topic.name] = now
        if names is None:  # a full listing: anything not in it is gone
            for gone in set(self.queues) - seen:
                del self.queues[gone]

    async def queue(self, name: str, *, refresh: bool = False, allow_auto_create: bool = False) -> QueueInfo:
        """A queue's partitions from the cache (refreshed when asked, missing or old).

        Raises UnknownQueueError when the broker does not know it."""
        info = self.queues.get(name)
        age = time.monotonic() - self._fetched_at.get(name, 0.0)
        if refresh or info is None or age > self.metadata_max_age_s:
            answer = await self.refresh([name], allow_auto_create=allow_auto_create)
            for topic in answer.topics:
                if topic.name == name and topic.error_code != ErrorCode.NONE:
                    if topic.error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION:
                        raise UnknownQueueError(f"queue {name!r} does not exist")
                    if topic.error_code == ErrorCode.INVALID_TOPIC_EXCEPTION:
                        raise InvalidQueueNameError(invalid_name_reason(name))
                    if topic.error_code == ErrorCode.TOPIC_AUTHORIZATION_FAILED:
                        raise AuthorizationError(
                            f"queue {name!r}: the broker's ACLs do not let this client use it "
                            "(TOPIC_AUTHORIZATION_FAILED)"
                        )
                    raise error_for_code(
                        topic.error_code, f"queue {name!r}: {ErrorCode(topic.error_code).name}"
                    )
            info = self.queues.get(name)
            if info is None:
                raise UnknownQueueError(f"queue {name!r} does not exist")
        return info

    async def leader_connection(self, queue: str, partition: int) -> BrokerConnection:
        """The connection to the leader of ``queue``/``partition``, per the cached metadata."""
        info = await self.queue(queue)
        if not 0 <= partition < info.partition_count:
            raise UnknownQueueError(f"queue {queue!r} has no partition {partition}")
        leader = info.partitions[partition].leader
        if leader < 0:
            info = await self.queue(queue, refresh=True)
            leader = info.partitions[partition].leader
            if leader < 0:
                raise error_for_code(
                    ErrorCode.LEADER_NOT_AVAILABLE, f"{queue}/{partition} has no leader right now"
                )
        return await self.connection(leader)

    # --- group coordinators -----------------------------------------------------------------------

    async def coordinator(self, group: str) -> BrokerConnection:
        """The connection to ``group``'s coordinator (FindCoordinator, cached until invalidated)."""
        node_id = self._coordinators.get(group)
        if node_id is None:
            conn = await self.any_connection()
            answer: m.FindCoordinatorResponse = await self.send(
                conn, m.FindCoordinatorRequest(key=group, key_type=0)
            )
            if answer.error_code != ErrorCode.NONE:
                raise error_for_code(
                    answer.error_code, answer.error_message or f"no coordinator for group {group!r}"
                )
            node_id = answer.node_id
            if node_id not in self.brokers:
                self.brokers[node_id] = BrokerNode(node_id, answer.host, answer.port)
            self._coordinators[group] = node_id
        return await self.connection(node_id)

    def forget_coordinator(self, group: str) -> None:
        """Call after NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE or a broken connection."""
        self._coordinators.pop(group, None)

    # --- shutdown ---------------------------------------------------------------------------------

    async def close(self) -> None:
        self._closed = True
        conns = list(self._connections.values())
        if self._bootstrap_conn is not None:
            conns.append(self._bootstrap_conn)
        self._connections.clear()
        self._bootstrap_conn = None
        await asyncio.gather(*(c.close() for c in conns), return_exceptions=True)
