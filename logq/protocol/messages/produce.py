"""Produce (key 0, v0-8) and InitProducerId (key 22, v0-1).

Field lists follow Apache Kafka's ``ProduceRequest.json``/``ProduceResponse.json`` and
``InitProducerIdRequest.json``/``InitProducerIdResponse.json`` (non-flexible versions only).
"""

from __future__ import annotations

from dataclasses import dataclass

from logq.protocol.primitives import Buffer
from logq.protocol.schema import INT16, INT32, INT64, RECORDS, STRING, ArrayOf, Struct, wire

__all__ = [
    "BatchIndexAndErrorMessage",
    "InitProducerIdRequest",
    "InitProducerIdResponse",
    "PartitionProduceData",
    "PartitionProduceResponse",
    "ProduceRequest",
    "ProduceResponse",
    "TopicProduceData",
    "TopicProduceResponse",
]


@dataclass(slots=True, kw_only=True)
class PartitionProduceData(Struct):
    index: int = wire(INT32)
    # Opaque RecordBatch bytes: a zero-copy view into the request frame once decoded.
    records: Buffer | None = wire(RECORDS, nullable="0+")


@dataclass(slots=True, kw_only=True)
class TopicProduceData(Struct):
    name: str = wire(STRING)
    partition_data: list[PartitionProduceData] = wire(ArrayOf(PartitionProduceData))


@dataclass(slots=True, kw_only=True)
class ProduceRequest(Struct):
    transactional_id: str | None = wire(STRING, "3+", nullable="3+", default=None)
    # The JSON default is 0, but acks=0 means "send no response": default to the safe "all replicas".
    acks: int = wire(INT16, default=-1)
    timeout_ms: int = wire(INT32)
    topic_data: list[TopicProduceData] = wire(ArrayOf(TopicProduceData))


@dataclass(slots=True, kw_only=True)
class BatchIndexAndErrorMessage(Struct):
    batch_index: int = wire(INT32, "8+")
    batch_index_error_message: str | None = wire(STRING, "8+", nullable="8+", default=None)


@dataclass(slots=True, kw_only=True)
class PartitionProduceResponse(Struct):
    index: int = wire(INT32)
    error_code: int = wire(INT16)
    base_offset: int = wire(INT64)
    log_append_time_ms: int = wire(INT64, "2+", default=-1)
    log_start_offset: int = wire(INT64, "5+", default=-1)
    record_errors: list[BatchIndexAndErrorMessage] = wire(ArrayOf(BatchIndexAndErrorMessage), "8+")
    error_message: str | None = wire(STRING, "8+", nullable="8+", default=None)


@dataclass(slots=True, kw_only=True)
class TopicProduceResponse(Struct):
    name: str = wire(STRING)
    partition_responses: list[PartitionProduceResponse] = wire(ArrayOf(PartitionProduceResponse))


@dataclass(slots=True, kw_only=True)
class ProduceResponse(Struct):
    responses: list[TopicProduceResponse] = wire(ArrayOf(TopicProduceResponse))
    # Throttle comes last in Produce responses (unlike every other API).
    throttle_time_ms: int = wire(INT32, "1+")


@dataclass(slots=True, kw_only=True)
class InitProducerIdRequest(Struct):
    transactional_id: str | None = wire(STRING, nullable="0+", default=None)
    transaction_timeout_ms: int = wire(INT32)


@dataclass(slots=True, kw_only=True)
class InitProducerIdResponse(Struct):
    throttle_time_ms: int = wire(INT32)
    error_code: int = wire(INT16)
    producer_id: int = wire(INT64, default=-1)
    producer_epoch: int = wire(INT16)
