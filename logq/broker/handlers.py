"""One handler per Kafka API. This is the only place where exceptions become error codes.

Each handler takes the request header and the decoded body and returns the response body (or None for
acks=0 Produce). Per-partition problems become per-partition error codes; nothing a client sends makes a
handler raise. With an authorizer, each API checks what Kafka checks, before it looks at the resource
(docs/security.md has the table).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Container, Iterable
from typing import Any

from logq import batch as rb
from logq.broker.authorization import RequestAuthorizer
from logq.broker.config import BrokerConfig
from logq.broker.metrics import BrokerMetrics
from logq.broker.partition import EMPTY, MAX_TIMESTAMP, Origin, PartitionRead
from logq.broker.replica_manager import ReplicaManager
from logq.broker.session import current_session
from logq.coordinator import Coordinator, QueueMetadata
from logq.error_codes import ErrorCode
from logq.errors import (
    CoordinationError,
    InvalidPartitionsError,
    InvalidQueueNameError,
    InvalidRecordsError,
    InvalidReplicationFactorError,
    LogqError,
    QueueExistsError,
    RequestRefusedError,
    UnknownQueueError,
)
from logq.protocol import RequestHeader
from logq.protocol import messages as m
from logq.protocol.apis import spec_for_request
from logq.queues import validate_queue_name, validate_queue_settings
from logq.security.acl import CLUSTER_NAME, AclOperation, ResourceType

TOPIC = ResourceType.TOPIC

log = logging.getLogger(__name__)

INT32_MAX = 2**31 - 1
_MAGIC_AT = 16  # the magic byte's position in both the old message format and RecordBatch v2
DEFAULT_CREATE_WAIT_MS = 30_000  # CreateTopics with timeout_ms <= 0
MIN_SERVED_PRODUCE_VERSION = (
    3  # v0-2 are advertised only for old librdkafka's sake (docs/protocol.md, "APIs and versions")
)

Handler = Callable[[RequestHeader, Any], Awaitable[Any]]


class CloseConnectionError(Exception):
    """Close this client's connection (the message says why); the broker carries on."""


class Handlers:
    def __init__(
        self,
        config: BrokerConfig,
        coordinator: Coordinator,
        replicas: ReplicaManager,
        metrics: BrokerMetrics,
        auth: RequestAuthorizer | None = None,
    ) -> None:
        self._config = config
        self._coordinator = coordinator
        self._replicas = replicas
        self._metrics = metrics
        self._auth = auth or RequestAuthorizer()
        self.by_type: dict[type, Handler] = {
            m.ProduceRequest: self.produce,
            m.FetchRequest: self.fetch,
            m.ListOffsetsRequest: self.list_offsets,
            m.MetadataRequest: self.metadata,
            m.ApiVersionsRequest: self.api_versions,
            m.CreateTopicsRequest: self.create_topics,
            m.DeleteTopicsRequest: self.delete_topics,
            m.InitProducerIdRequest: self.init_producer_id,
            m.SaslHandshakeRequest: self.sasl_handshake,
            m.SaslAuthenticateRequest: self.sasl_authenticate,
        }

    def _count_errors(self, api: str, codes: Iterable[int]) -> None:
        for code in codes:
            if code:
                self._metrics.errors.labels(api, str(code)).inc()

    # --- ApiVersions, Metadata ------------------------------------------------------------------------

    async def api_versions(self, header: RequestHeader, req: m.ApiVersionsRequest) -> m.ApiVersionsResponse:
        """Exactly the APIs with a handler: never advertise an API one does not serve (docs/protocol.md,
        "APIs and versions")."""
        specs = sorted((spec_for_request(t) for t in self.by_type), key=lambda spec: spec.api_key)
        keys = [
            m.ApiVersionsResponseKey(api_key=s.api_key, min_version=s.min_version, max_version=s.max_version)
            for s in specs
        ]
        return m.ApiVersionsResponse(error_code=ErrorCode.NONE, api_keys=keys)

    async def metadata(self, header: RequestHeader, req: m.MetadataRequest) -> m.MetadataResponse:
        """A listing of every queue silently leaves out those the client may not DESCRIBE; a queue it
        names and may not DESCRIBE is TOPIC_AUTHORIZATION_FAILED, whether or not it exists."""
        auth = self._auth
        queues = self._coordinator.queues()
        everything = req.topics is None or (header.api_version == 0 and not req.topics)
        if everything:
            wanted = [name for name in sorted(queues) if auth.allows(AclOperation.DESCRIBE, TOPIC, name)]
        else:
            wanted = [t.name for t in req.topics or ()]
        may_create = self._config.auto_create_queues and (
            header.api_version < 4 or req.allow_auto_topic_creation
        )
        topics = []
        for name in wanted:
            if not everything and not auth.allows(AclOperation.DESCRIBE, TOPIC, name):
                topics.append(
                    m.MetadataResponseTopic(error_code=ErrorCode.TOPIC_AUTHORIZATION_FAILED, name=name)
                )
                continue
            meta = queues.get(name)
            if meta is None and may_create and not auth.may_create_queue(name):
                topics.append(
                    m.MetadataResponseTopic(error_code=ErrorCode.TOPIC_AUTHORIZATION_FAILED, name=name)
                )
                continue
            if meta is None and may_create:
                meta, error = await self._auto_create(name)
                if meta is None:
                    topics.append(m.MetadataResponseTopic(error_code=error, name=name))
                    continue
            if meta is None:
                topics.append(m.MetadataResponseTopic(error_code=_missing_queue_error(name), name=name))
                continue
            topics.append(_topic_metadata(meta, self._replicas.without_log(meta)))
        self._count_errors("Metadata", (t.error_code for t in topics))
        # Each client is told the addresses of the listener it came in on (brokers without it are left
        # out, as Kafka's getAliveBrokerNodes(listenerName)).
        listener = current_session().listener
        brokers = [
            m.MetadataResponseBroker(node_id=b.broker_id, host=address[0], port=address[1], rack=b.rack)
            for b in self._coordinator.brokers()
            if (address := b.address_for(listener)) is not None
        ]
        response = m.MetadataResponse(
            brokers=brokers,
            cluster_id=self._coordinator.cluster_id(),
            controller_id=self._coordinator.controller_id(),
            topics=topics,
        )
        if header.api_version >= 8:  # KIP-430: the bit fields are computed only when asked for
            if req.include_topic_authorized_operations:
                for topic in topics:
                    topic.topic_authorized_operations = auth.operations(TOPIC, topic.name)
            if req.include_cluster_authorized_operations:
                described = auth.allows_cluster(AclOperation.DESCRIBE)
                response.cluster_authorized_operations = (
                    auth.operations(ResourceType.CLUSTER, CLUSTER_NAME) if described else 0
                )
        return response

    async def _auto_create(self, name: str) -> tuple[QueueMetadata | None, int]:
        meta: QueueMetadata | None
        try:
            validate_queue_name(name)
            meta = await self._coordinator.create_queue(
                name, self._config.num_partitions, self._config.default_replication_factor, {}
            )
        except QueueExistsError:  # created concurrently by another request
            meta = self._coordinator.queues().get(name)
        except LogqError as exc:
            return None, exc.code
        if meta is None:
            return None, ErrorCode.LEADER_NOT_AVAILABLE
        await self._replicas.host({name: meta})
        log.info("auto-created queue %s with %d partitions", name, len(meta.partitions))
        return meta, ErrorCode.NONE

    # --- SaslHandshake, SaslAuthenticate -------------------------------------------------------------

    # A SASL listener's connection authenticates before any handler runs (logq/broker/authentication.py);
    # these answer what comes later or elsewhere: on a PLAINTEXT or SSL listener, or a second login
    # (re-authentication is not offered: session_lifetime_ms is 0), ILLEGAL_SASL_STATE as Kafka does.

    async def sasl_handshake(
        self, header: RequestHeader, req: m.SaslHandshakeRequest
    ) -> m.SaslHandshakeResponse:
        self._count_errors("SaslHandshake", (ErrorCode.ILLEGAL_SASL_STATE,))
        return m.SaslHandshakeResponse(error_code=ErrorCode.ILLEGAL_SASL_STATE)

    async def sasl_authenticate(
        self, header: RequestHeader, req: m.SaslAuthenticateRequest
    ) -> m.SaslAuthenticateResponse:
        self._count_errors("SaslAuthenticate", (ErrorCode.ILLEGAL_SASL_STATE,))
        return m.SaslAuthenticateResponse(
            error_code=ErrorCode.ILLEGAL_SASL_STATE,
            error_message="this connection cannot authenticate (again)",
        )

    # --- Produce ----------------------------------------------------------------------------------------

    async def produce(self, header: RequestHeader, req: m.ProduceRequest) -> m.ProduceResponse | None:
        general = ErrorCode.NONE
        if req.acks not in (0, 1, -1):
            general = ErrorCode.INVALID_REQUIRED_ACKS
        elif req.transactional_id is not None:
            general = ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED  # transactions are not supported
        client = header.client_id or ""
        responses = []
        pending: list[Awaitable[m.PartitionProduceResponse]] = []
        shape: list[tuple[str, int]] = []
        for topic in req.topic_data:
            shape.append((topic.name, len(topic.partition_data)))
            refused = general or (
                ErrorCode.NONE
                if self._auth.allows(AclOperation.WRITE, TOPIC, topic.name)
                else ErrorCode.TOPIC_AUTHORIZATION_FAILED
            )
            for part in topic.partition_data:
                if refused:
                    pending.append(_done(_produce_error(part.index, refused)))
                else:
                    pending.append(
                        self._produce_partition(
                            header.api_version,
                            client,
                            topic.name,
                            part,
                            acks=req.acks,
                            timeout_ms=req.timeout_ms,
                        )
                    )
        results = await asyncio.gather(*pending) if req.acks == -1 else [await p for p in pending]
        position = 0
        for name, count in shape:
            responses.append(
                m.TopicProduceResponse(name=name, partition_responses=results[position : position + count])
            )
            position += count
        failed = [r for r in results if r.error_code]
        self._count_errors("Produce", (r.error_code for r in failed))
        if req.acks == 0:
            if failed:  # the producer would never learn of it: close, as Kafka does
                raise CloseConnectionError(f"acks=0 produce failed with error {failed[0].error_code}")
            return None
        return m.ProduceResponse(responses=responses)

    async def _produce_partition(
        self,
        version: int,
        client: str,
        queue: str,
        part: m.PartitionProduceData,
        *,
        acks: int,
        timeout_ms: int,
    ) -> m.PartitionProduceResponse:
        if (
            self._replicas.partition(queue, part.index) is None
            and self._config.auto_create_queues
            and queue not in self._coordinator.queues()
            and self._auth.may_create_queue(queue)
        ):
            await self._auto_create(queue)
        records = part.records
        if version < 7 and _codec_of(records) == rb.CODEC_ZSTD:
            return _produce_error(part.index, ErrorCode.UNSUPPORTED_COMPRESSION_TYPE)
        try:
            partition = self._replicas.leader(queue, part.index)
            info = await partition.append(
                records or b"", acks=acks, origin=Origin.CLIENT, timeout_ms=timeout_ms
            )
        except InvalidRecordsError as exc:  # v8+ names the bad records (KIP-467)
            refused = _produce_error(part.index, exc.code, str(exc))
            refused.record_errors = [
                m.BatchIndexAndErrorMessage(batch_index=i, batch_index_error_message=why)
                for i, why in exc.record_errors
            ]
            return refused
        except LogqError as exc:
            return _produce_error(part.index, exc.code, str(exc))
        plog = partition.log
        assert records is not None
        assert plog is not None
        metrics = self._metrics
        metrics.labelled(metrics.bytes_in, queue, client).inc(len(records))
        metrics.labelled(metrics.records_in, queue, client).inc(info.last_offset - info.base_offset + 1)
        return m.PartitionProduceResponse(
            index=part.index,
            error_code=ErrorCode.NONE,
            base_offset=info.base_offset,
            log_append_time_ms=info.log_append_time,  # -1 unless the queue uses LogAppendTime
            log_start_offset=plog.log_start_offset,
        )

    async def init_producer_id(
        self, header: RequestHeader, req: m.InitProducerIdRequest
    ) -> m.InitProducerIdResponse:
        if req.transactional_id is not None:
            return m.InitProducerIdResponse(error_code=ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
        # KIP-679: WRITE on any queue will do, so idempotent-by-default producers need no cluster ACL.
        if not (
            self._auth.allows_cluster(AclOperation.IDEMPOTENT_WRITE)
            or self._auth.allows_some(AclOperation.WRITE, TOPIC)
        ):
            return m.InitProducerIdResponse(error_code=ErrorCode.CLUSTER_AUTHORIZATION_FAILED)
        try:
            producer_id = await self._coordinator.allocate_producer_id()
        except LogqError as exc:  # e.g. the block of ids could not be recorded: a full disk
            self._count_errors("InitProducerId", (exc.code,))
            return m.InitProducerIdResponse(error_code=exc.code, producer_id=-1, producer_epoch=-1)
        return m.InitProducerIdResponse(error_code=ErrorCode.NONE, producer_id=producer_id, producer_epoch=0)

    # --- Fetch ------------------------------------------------------------------------------------------

    async def fetch(self, header: RequestHeader, req: m.FetchRequest) -> m.FetchResponse:
        """A long poll: answer at once if there is enough data, an error, or no wait; otherwise wait for
        an append to one of the partitions (not a timer) or for max_wait_ms."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(req.max_wait_ms, 0) / 1000
        keys = [(t.topic, p.partition) for t in req.topics for p in t.partitions]
        denied = self._denied_fetch(req)
        refused = self._check_fetch(req, denied)
        while True:
            responses, size, error = self._read(req, denied, refused)
            remaining = deadline - loop.time()
            if error or size >= req.min_bytes or remaining <= 0:
                break
            arrival = self._replicas.data_arrival(keys)
            try:
                await asyncio.wait_for(arrival, remaining)
            except TimeoutError:
                responses, size, error = self._read(req, denied, refused)
                break
            finally:
                arrival.cancel()
        client = header.client_id or ""
        for topic in responses:
            out = sum(len(p.records) for p in topic.partitions if p.records is not None)
            if out:
                self._metrics.labelled(self._metrics.bytes_out, topic.topic, client).inc(out)
            if error:
                self._count_errors("Fetch", (p.error_code for p in topic.partitions))
        return m.FetchResponse(error_code=ErrorCode.NONE, session_id=0, responses=responses)

    def _denied_fetch(self, req: m.FetchRequest) -> set[str]:
        """The queues this fetch may not read: a consumer needs READ on each; a follower
        (replica_id >= 0) needs CLUSTER_ACTION, or is refused everything."""
        if req.replica_id >= 0:
            if self._auth.allows_cluster(AclOperation.CLUSTER_ACTION):
                return set()
            return {t.topic for t in req.topics}
        return {t.topic for t in req.topics if not self._auth.allows(AclOperation.READ, TOPIC, t.topic)}

    def _check_fetch(self, req: m.FetchRequest, denied: set[str]) -> dict[tuple[str, int], ErrorCode]:
        """Per partition, the error that refuses it before any read: a stale or future leader epoch
        (KIP-320), and for a follower's fetch (replica_id >= 0) what its progress report says. A
        follower's fetch offset is its log end: recorded once per request, before any wait."""
        refused: dict[tuple[str, int], ErrorCode] = {}
        for topic in req.topics:
            if topic.topic in denied:
                continue
            for p in topic.partitions:
                partition = self._replicas.partition(topic.topic, p.partition)
                if partition is None or not partition.is_leader:
                    continue  # the read answers why
                code = partition.check_epoch(p.current_leader_epoch)
                if code == ErrorCode.NONE and req.replica_id >= 0:
                    code = partition.follower_fetched(
                        req.replica_id, p.fetch_offset, p.current_leader_epoch, p.log_start_offset
                    )
                if code != ErrorCode.NONE:
                    refused[(topic.topic, p.partition)] = code
        return refused

    def _read(
        self, req: m.FetchRequest, denied: set[str], refused: dict[tuple[str, int], ErrorCode]
    ) -> tuple[list[m.FetchableTopicResponse], int, bool]:
        """Read every requested partition, in request order (each partition's rules are its own:
        ``Partition.read``). A partition listed twice is served once (the repeats answer with no records),
        and the response is capped at the broker's fetch.max.bytes; only the first non-empty partition may
        go over it (KIP-74)."""
        follower = req.replica_id >= 0
        budget = min(req.max_bytes if req.max_bytes > 0 else INT32_MAX, self._config.fetch_max_bytes)
        total = 0
        any_error = False
        served: set[tuple[str, int]] = set()
        topics = []
        for topic in req.topics:
            partitions = []
            for p in topic.partitions:
                key = (topic.topic, p.partition)
                if topic.topic in denied:
                    got = PartitionRead(ErrorCode.TOPIC_AUTHORIZATION_FAILED, EMPTY, -1, -1)
                else:
                    got = self._read_one(
                        key, p, follower, refused, budget - total, first=total == 0, again=key in served
                    )
                    served.add(key)
                total += len(got.records)
                any_error = any_error or got.error != ErrorCode.NONE
                partitions.append(
                    m.FetchPartitionData(
                        partition_index=p.partition,
                        error_code=got.error,
                        high_watermark=got.high_watermark,
                        last_stable_offset=got.high_watermark,
                        log_start_offset=got.log_start_offset,
                        aborted_transactions=[],
                        records=got.records,
                    )
                )
            topics.append(m.FetchableTopicResponse(topic=topic.topic, partitions=partitions))
        return topics, total, any_error

    def _read_one(
        self,
        key: tuple[str, int],
        p: m.FetchPartition,
        follower: bool,
        refused: dict[tuple[str, int], ErrorCode],
        left: int,
        *,
        first: bool,
        again: bool,
    ) -> PartitionRead:
        try:
            partition = self._replicas.leader(*key)
        except LogqError as exc:
            return PartitionRead(exc.code, EMPTY, -1, -1)
        if key in refused:
            plog = partition.log
            assert plog is not None
            return PartitionRead(refused[key], EMPTY, plog.high_watermark, plog.log_start_offset)
        limit = 0 if again else min(p.partition_max_bytes, left)
        return partition.read(p.fetch_offset, limit, follower=follower, may_exceed=first and not again)

    # --- ListOffsets --------------------------------------------------------------------------------------

    async def list_offsets(self, header: RequestHeader, req: m.ListOffsetsRequest) -> m.ListOffsetsResponse:
        topics = []
        for topic in req.topics:
            partitions = []
            described = self._auth.allows(AclOperation.DESCRIBE, TOPIC, topic.name)
            for p in topic.partitions:
                result = m.ListOffsetsPartitionResponse(
                    partition_index=p.partition_index, error_code=ErrorCode.NONE
                )
                if not described:
                    result.error_code = ErrorCode.TOPIC_AUTHORIZATION_FAILED
                elif p.timestamp < -2 and not (p.timestamp == MAX_TIMESTAMP and header.api_version >= 7):
                    result.error_code = ErrorCode.INVALID_REQUEST  # -3 exists from v7; -4 and -5 not served
                else:
                    try:
                        partition = self._replicas.leader(topic.name, p.partition_index)
                        result.error_code = partition.check_epoch(p.current_leader_epoch)
                        if not result.error_code:
                            found = await partition.list_offset(p.timestamp)
                            result.offset, result.timestamp, result.leader_epoch = found
                    except LogqError as exc:  # not led here, or deleted meanwhile
                        result.error_code = exc.code
                partitions.append(result)
            topics.append(m.ListOffsetsTopicResponse(name=topic.name, partitions=partitions))
            self._count_errors("ListOffsets", (p.error_code for p in partitions))
        return m.ListOffsetsResponse(topics=topics)

    # --- CreateTopics, DeleteTopics --------------------------------------------------------------------

    async def create_topics(
        self, header: RequestHeader, req: m.CreateTopicsRequest
    ) -> m.CreateTopicsResponse:
        results = []
        names = [t.name for t in req.topics]
        # Kafka's timeout_ms: answer by then; a creation still going on then gets REQUEST_TIMED_OUT and
        # completes anyway. 0 or less would answer at once in Kafka; here it means the default wait.
        wait_ms = req.timeout_ms if req.timeout_ms > 0 else DEFAULT_CREATE_WAIT_MS
        deadline = asyncio.get_running_loop().time() + wait_ms / 1000
        for topic in req.topics:
            try:
                if names.count(topic.name) > 1:
                    raise RequestRefusedError(
                        f"queue {topic.name!r} appears twice", code=ErrorCode.INVALID_REQUEST
                    )
                if not self._auth.may_create_queue(topic.name):
                    raise RequestRefusedError(
                        f"{self._auth.principal} may not create queue {topic.name!r} "
                        f"(needs CREATE on CLUSTER:{CLUSTER_NAME} or on TOPIC:{topic.name})",
                        code=ErrorCode.TOPIC_AUTHORIZATION_FAILED,
                    )
                await self._create_one(topic, req.validate_only, deadline)
                results.append(m.CreatableTopicResult(name=topic.name, error_code=ErrorCode.NONE))
            except LogqError as exc:
                results.append(
                    m.CreatableTopicResult(name=topic.name, error_code=exc.code, error_message=str(exc))
                )
                self._metrics.errors.labels("CreateTopics", str(exc.code)).inc()
        return m.CreateTopicsResponse(topics=results)

    async def _create_one(self, topic: m.CreatableTopic, validate_only: bool, deadline: float) -> None:
        validate_queue_name(topic.name)
        settings = validate_queue_settings({c.name: c.value for c in topic.configs})
        partitions = topic.num_partitions
        replication = topic.replication_factor
        live = {b.broker_id for b in self._coordinator.brokers()}
        if topic.assignments:
            if partitions != -1 or replication != -1:
                raise RequestRefusedError(
                    "give either assignments or partitions and replication factor",
                    code=ErrorCode.INVALID_REQUEST,
                )
            indexes = sorted(a.partition_index for a in topic.assignments)
            sizes = {len(a.broker_ids) for a in topic.assignments}
            if indexes != list(range(len(indexes))) or len(sizes) != 1:
                raise RequestRefusedError(
                    "assignments must cover 0..N-1 evenly", code=ErrorCode.INVALID_REPLICA_ASSIGNMENT
                )
            for a in topic.assignments:
                if len(set(a.broker_ids)) != len(a.broker_ids) or not set(a.broker_ids) <= live:
                    raise RequestRefusedError(
                        f"partition {a.partition_index} names brokers that are not live or repeats one",
                        code=ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                    )
            partitions, replication = len(indexes), sizes.pop()
        if partitions == -1:
            partitions = self._config.num_partitions
        if replication == -1:
            replication = self._config.default_replication_factor
        if partitions < 1:
            raise InvalidPartitionsError(f"a queue needs at least 1 partition, not {partitions}")
        if replication < 1 or replication > len(live):
            raise InvalidReplicationFactorError(
                f"replication factor {replication} is impossible with {len(live)} live broker(s)"
            )
        if validate_only:
            if topic.name in self._coordinator.queues():
                raise QueueExistsError(f"queue {topic.name!r} already exists")
            return
        meta = await self._coordinator.create_queue(topic.name, partitions, replication, settings)
        hosting = self._replicas.host_in_background({topic.name: meta})
        remaining = deadline - asyncio.get_running_loop().time()
        try:
            await asyncio.wait_for(asyncio.shield(hosting), max(remaining, 0))
        except TimeoutError:
            log.info(
                "queue %s: still creating %d partitions; answered REQUEST_TIMED_OUT", topic.name, partitions
            )
            hosting.add_done_callback(lambda task: _log_late_creation(task, topic.name, partitions))
            raise CoordinationError(
                f"queue {topic.name!r} is still being created ({partitions} partitions); "
                "it is listed with a leader for every partition once done",
                code=ErrorCode.REQUEST_TIMED_OUT,
            ) from None
        log.info(
            "created queue %s (%d partitions, settings %s)", topic.name, partitions, settings or "default"
        )

    async def delete_topics(
        self, header: RequestHeader, req: m.DeleteTopicsRequest
    ) -> m.DeleteTopicsResponse:
        """With an authorizer, deleting needs DELETE on the queue (super users have it) and
        ``delete.queue.enable`` is not consulted: the ACLs make it an admin's act. Without one, that
        setting decides, as before."""
        results = []
        for name in req.topic_names:
            code = ErrorCode.NONE
            if self._auth.enabled and not self._auth.allows(AclOperation.DELETE, TOPIC, name):
                code = ErrorCode.TOPIC_AUTHORIZATION_FAILED
            elif not self._auth.enabled and not self._config.delete_queue_enable:
                code = ErrorCode.TOPIC_DELETION_DISABLED
            else:
                meta = self._coordinator.queues().get(name)
                try:
                    if meta is None:
                        raise UnknownQueueError(f"queue {name!r} does not exist")
                    if meta.internal:
                        raise InvalidQueueNameError(f"queue {name!r} is internal and cannot be deleted")
                    await self._coordinator.delete_queue(name)
                    await self._replicas.drop(name, len(meta.partitions))
                    log.info("deleted queue %s", name)
                except LogqError as exc:
                    code = exc.code
            self._count_errors("DeleteTopics", (code,))
            results.append(m.DeletableTopicResult(name=name, error_code=code))
        return m.DeleteTopicsResponse(responses=results)


def _log_late_creation(hosting: asyncio.Task[None], queue: str, partitions: int) -> None:
    if not hosting.cancelled() and hosting.exception() is None:  # a failure is logged where it happens
        log.info("created queue %s (%d partitions) after answering REQUEST_TIMED_OUT", queue, partitions)


def _missing_queue_error(name: str) -> ErrorCode:
    """Kafka's answer for a queue that does not exist: INVALID_TOPIC_EXCEPTION when no queue could have
    that name (so clients do not wait for it to appear), else UNKNOWN_TOPIC_OR_PARTITION."""
    try:
        validate_queue_name(name)
    except InvalidQueueNameError:
        return ErrorCode.INVALID_TOPIC_EXCEPTION
    return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION


def _topic_metadata(meta: QueueMetadata, without_log: Container[int] = ()) -> m.MetadataResponseTopic:
    """``without_log``: partitions still being created here, answered without a leader. Leader epochs are
    the real ones (clients use them to detect truncation, KIP-320; OffsetForLeaderEpoch is served)."""
    partitions = [
        m.MetadataResponsePartition(
            error_code=ErrorCode.NONE
            if state.leader >= 0 and index not in without_log
            else ErrorCode.LEADER_NOT_AVAILABLE,
            partition_index=index,
            leader_id=state.leader if index not in without_log else -1,
            leader_epoch=state.leader_epoch,
            replica_nodes=list(state.replicas),
            isr_nodes=list(state.isr),
            offline_replicas=[],
        )
        for index, state in enumerate(meta.partitions)
    ]
    return m.MetadataResponseTopic(
        error_code=ErrorCode.NONE, name=meta.name, is_internal=meta.internal, partitions=partitions
    )


def _codec_of(records: bytes | bytearray | memoryview | None) -> int:
    """The compression codec of a RecordBatch v2 (-1 for anything else; the append explains why)."""
    if records is None or len(records) < rb.HEADER_SIZE or records[_MAGIC_AT] != rb.MAGIC:
        return -1
    return rb.parse_header(memoryview(records)).codec


def _produce_error(index: int, code: int, message: str | None = None) -> m.PartitionProduceResponse:
    return m.PartitionProduceResponse(index=index, error_code=code, base_offset=-1, error_message=message)


async def _done(value: m.PartitionProduceResponse) -> m.PartitionProduceResponse:
    return value
