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
from logq.broker.replica_manager import ReplicaManager
from logq.broker.session import current_session
from logq.coordinator import Coordinator, QueueMetadata
from logq.error_codes import ErrorCode
from logq.errors import (
    CoordinationError,
    InvalidPartitionsError,
    InvalidQueueNameError,
    InvalidReplicationFactorError,
    LogqError,
    QueueExistsError,
    UnknownQueueError,
)
from logq.protocol import RequestHeader
from logq.protocol import messages as m
from logq.protocol.apis import spec_for_request
from logq.queues import INTERNAL_PREFIX, validate_queue_name, validate_queue_settings
from logq.security.acl import CLUSTER_NAME, AclOperation, ResourceType

TOPIC = ResourceType.TOPIC

log = logging.getLogger(__name__)

INT32_MAX = 2**31 - 1
_MAGIC_AT = 16  # the magic byte's position in both the old message format and RecordBatch v2
EMPTY = memoryview(b"")
DEFAULT_CREATE_WAIT_MS = 30_000  # CreateTopics with timeout_ms <= 0
MIN_SERVED_PRODUCE_VERSION = 3  # v0-2 are advertised only for old librdkafka's sake (protocol.md §0)

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
        """Exactly the APIs with a handler (protocol.md §0: never advertise an API you do not serve)."""
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
        plog = self._replicas.log_for(queue, part.index)
        if (
            plog is None
            and self._config.auto_create_queues
            and queue not in self._coordinator.queues()
            and self._auth.may_create_queue(queue)
        ):
            await self._auto_create(queue)
            plog = self._replicas.log_for(queue, part.index)
        if plog is None or not self._replicas.is_leader(queue, part.index):
            return _produce_error(
                part.index, self._replicas.not_served(queue, part.index, self._coordinator.queues())
            )
        if queue.startswith(INTERNAL_PREFIX):
            return _produce_error(
                part.index, ErrorCode.INVALID_TOPIC_EXCEPTION, "internal queues are not writable"
            )
        records = part.records
        if records is not None and len(records) > _MAGIC_AT and records[_MAGIC_AT] != rb.MAGIC:
            return _produce_error(part.index, ErrorCode.INVALID_RECORD, "only record batches of magic 2")
        if records is None or len(records) < rb.HEADER_SIZE:
            return _produce_error(
                part.index, ErrorCode.CORRUPT_MESSAGE, "the records are shorter than a batch header"
            )
        view = memoryview(records)
        header = rb.parse_header(view)
        if header.size < len(view):
            return _produce_error(
                part.index, ErrorCode.INVALID_RECORD, "exactly one record batch per partition"
            )
        if header.is_control or header.is_transactional:
            return _produce_error(part.index, ErrorCode.INVALID_RECORD, "control and transactional batches")
        if header.codec == rb.CODEC_ZSTD and version < 7:
            return _produce_error(part.index, ErrorCode.UNSUPPORTED_COMPRESSION_TYPE)
        try:
            info = await self._replicas.append(queue, part.index, plog, view, acks, timeout_ms=timeout_ms)
        except LogqError as exc:
            return _produce_error(part.index, exc.code, str(exc))
        self._metrics.bytes_in.labels(queue, client).inc(len(view))
        self._metrics.records_in.labels(queue, client).inc(header.records_count)
        return m.PartitionProduceResponse(
            index=part.index,
            error_code=ErrorCode.NONE,
            base_offset=info.base_offset,
            log_append_time_ms=-1,
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
                self._metrics.bytes_out.labels(topic.topic, client).inc(out)
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
                code = self._replicas.check_leader_epoch(topic.topic, p.partition, p.current_leader_epoch)
                if code == ErrorCode.NONE and req.replica_id >= 0:
                    code = self._replicas.follower_fetched(
                        topic.topic, p.partition, req.replica_id, p.fetch_offset, p.current_leader_epoch
                    )
                if code != ErrorCode.NONE:
                    refused[(topic.topic, p.partition)] = code
        return refused

    def _read(
        self, req: m.FetchRequest, denied: set[str], refused: dict[tuple[str, int], ErrorCode]
    ) -> tuple[list[m.FetchableTopicResponse], int, bool]:
        """Read every requested partition, in request order. A partition listed twice is served once (the
        repeats answer with no records), and the response is capped at the broker's fetch.max.bytes.
        Consumers read up to the high watermark, followers (replica_id >= 0) up to the log end."""
        follower = req.replica_id >= 0
        budget = min(req.max_bytes if req.max_bytes > 0 else INT32_MAX, self._config.fetch_max_bytes)
        total = 0
        any_error = False
        served: set[tuple[str, int]] = set()
        topics = []
        for topic in req.topics:
            partitions = []
            for p in topic.partitions:
                data, error, plog = EMPTY, ErrorCode.NONE, self._replicas.log_for(topic.topic, p.partition)
                if topic.topic in denied:
                    error, plog = ErrorCode.TOPIC_AUTHORIZATION_FAILED, None
                elif plog is None or not self._replicas.is_leader(topic.topic, p.partition):
                    error = self._replicas.not_served(topic.topic, p.partition, self._coordinator.queues())
                    plog = None
                elif (topic.topic, p.partition) in refused:
                    error = refused[(topic.topic, p.partition)]
                elif not plog.log_start_offset <= p.fetch_offset <= plog.log_end_offset:
                    error = ErrorCode.OFFSET_OUT_OF_RANGE
                elif (topic.topic, p.partition) not in served:
                    served.add((topic.topic, p.partition))
                    if not follower:
                        self._replicas.record_fetch(topic.topic, p.partition)
                    limit = min(p.partition_max_bytes, budget - total)
                    if limit > 0 or total == 0:
                        try:
                            upto = None if follower else plog.high_watermark
                            data = plog.read(p.fetch_offset, limit, upto=upto)
                        except LogqError as exc:  # retention (another thread) moved the start; log closed
                            error = exc.code
                        if total and len(data) > limit:  # only the first non-empty partition may overshoot
                            data = EMPTY
                    total += len(data)
                any_error = any_error or error != ErrorCode.NONE
                hw = plog.high_watermark if plog is not None else -1
                partitions.append(
                    m.FetchPartitionData(
                        partition_index=p.partition,
                        error_code=error,
                        high_watermark=hw,
                        last_stable_offset=hw,
                        log_start_offset=plog.log_start_offset if plog is not None else -1,
                        aborted_transactions=[],
                        records=data,
                    )
                )
            topics.append(m.FetchableTopicResponse(topic=topic.topic, partitions=partitions))
        return topics, total, any_error

    # --- ListOffsets --------------------------------------------------------------------------------------

    async def list_offsets(self, header: RequestHeader, req: m.ListOffsetsRequest) -> m.ListOffsetsResponse:
        topics = []
        for topic in req.topics:
            partitions = []
            described = self._auth.allows(AclOperation.DESCRIBE, TOPIC, topic.name)
            for p in topic.partitions:
                plog = self._replicas.log_for(topic.name, p.partition_index)
                result = m.ListOffsetsPartitionResponse(
                    partition_index=p.partition_index, error_code=ErrorCode.NONE
                )
                if not described:
                    result.error_code = ErrorCode.TOPIC_AUTHORIZATION_FAILED
                elif plog is None or not self._replicas.is_leader(topic.name, p.partition_index):
                    result.error_code = self._replicas.not_served(
                        topic.name, p.partition_index, self._coordinator.queues()
                    )
                elif p.timestamp == -1:  # latest
                    result.offset = plog.high_watermark
                elif p.timestamp == -2:  # earliest
                    result.offset = plog.log_start_offset
                elif p.timestamp >= 0:
                    try:
                        found = await asyncio.to_thread(plog.offset_for_timestamp, p.timestamp)
                    except LogqError as exc:  # the queue was deleted meanwhile
                        result.error_code = exc.code
                        found = None
                    if found is not None:
                        result.offset, result.timestamp = found
                else:
                    result.error_code = ErrorCode.INVALID_REQUEST
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
                    raise _RequestError(ErrorCode.INVALID_REQUEST, f"queue {topic.name!r} appears twice")
                if not self._auth.may_create_queue(topic.name):
                    raise _RequestError(
                        ErrorCode.TOPIC_AUTHORIZATION_FAILED,
                        f"{self._auth.principal} may not create queue {topic.name!r} "
                        f"(needs CREATE on CLUSTER:{CLUSTER_NAME} or on TOPIC:{topic.name})",
                    )
                await self._create_one(topic, req.validate_only, deadline)
                results.append(m.CreatableTopicResult(name=topic.name, error_code=ErrorCode.NONE))
            except (LogqError, _RequestError) as exc:
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
                raise _RequestError(
                    ErrorCode.INVALID_REQUEST, "give either assignments or partitions and replication factor"
                )
            indexes = sorted(a.partition_index for a in topic.assignments)
            sizes = {len(a.broker_ids) for a in topic.assignments}
            if indexes != list(range(len(indexes))) or len(sizes) != 1:
                raise _RequestError(
                    ErrorCode.INVALID_REPLICA_ASSIGNMENT, "assignments must cover 0..N-1 evenly"
                )
            for a in topic.assignments:
                if len(set(a.broker_ids)) != len(a.broker_ids) or not set(a.broker_ids) <= live:
                    raise _RequestError(
                        ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                        f"partition {a.partition_index} names brokers that are not live or repeats one",
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


class _RequestError(Exception):
    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code


def _missing_queue_error(name: str) -> ErrorCode:
    """Kafka's answer for a queue that does not exist: INVALID_TOPIC_EXCEPTION when no queue could have
    that name (so clients do not wait for it to appear), else UNKNOWN_TOPIC_OR_PARTITION."""
    try:
        validate_queue_name(name)
    except InvalidQueueNameError:
        return ErrorCode.INVALID_TOPIC_EXCEPTION
    return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION


def _topic_metadata(meta: QueueMetadata, without_log: Container[int] = ()) -> m.MetadataResponseTopic:
    """``without_log``: partitions still being created here, answered without a leader."""
    # Leader epochs go out as -1: logq does not serve OffsetForLeaderEpoch (protocol.md §6, §10.7).
    partitions = [
        m.MetadataResponsePartition(
            error_code=ErrorCode.NONE
            if state.leader >= 0 and index not in without_log
            else ErrorCode.LEADER_NOT_AVAILABLE,
            partition_index=index,
            leader_id=state.leader if index not in without_log else -1,
            leader_epoch=-1,
            replica_nodes=list(state.replicas),
            isr_nodes=list(state.isr),
            offline_replicas=[],
        )
        for index, state in enumerate(meta.partitions)
    ]
    return m.MetadataResponseTopic(
        error_code=ErrorCode.NONE, name=meta.name, is_internal=meta.internal, partitions=partitions
    )


def _produce_error(index: int, code: int, message: str | None = None) -> m.PartitionProduceResponse:
    return m.PartitionProduceResponse(index=index, error_code=code, base_offset=-1, error_message=message)


async def _done(value: m.PartitionProduceResponse) -> m.PartitionProduceResponse:
    return value
