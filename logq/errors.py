"""logq's exception hierarchy. Each error carries the Kafka error code it maps to on the wire.

LogqError
 +-- StorageError                 a log or index operation failed
 |    +-- CorruptBatchError       CORRUPT_MESSAGE: not a valid magic-2 batch (CRC, lengths, magic)
 |    +-- BatchTooLargeError      MESSAGE_TOO_LARGE: larger than max.message.bytes
 |    +-- OffsetOutOfRangeError   OFFSET_OUT_OF_RANGE: below the log start or past the log end
 |    +-- LogClosedError          KAFKA_STORAGE_ERROR: the partition log is closed or deleted
 +-- ProducerStateError           a sequence/epoch check of an idempotent producer failed
      +-- InvalidProducerEpochError   INVALID_PRODUCER_EPOCH
      +-- OutOfOrderSequenceError     OUT_OF_ORDER_SEQUENCE_NUMBER
"""

from __future__ import annotations

from logq.error_codes import ErrorCode


class LogqError(Exception):
    code: ErrorCode = ErrorCode.UNKNOWN_SERVER_ERROR

    @property
    def retriable(self) -> bool:
        return self.code.retriable


class StorageError(LogqError):
    code = ErrorCode.KAFKA_STORAGE_ERROR


class CorruptBatchError(StorageError):
    code = ErrorCode.CORRUPT_MESSAGE


class BatchTooLargeError(StorageError):
    code = ErrorCode.MESSAGE_TOO_LARGE


class OffsetOutOfRangeError(StorageError):
    code = ErrorCode.OFFSET_OUT_OF_RANGE


class LogClosedError(StorageError):
    code = ErrorCode.KAFKA_STORAGE_ERROR


class ProducerStateError(LogqError):
    pass


class InvalidProducerEpochError(ProducerStateError):
    code = ErrorCode.INVALID_PRODUCER_EPOCH


class OutOfOrderSequenceError(ProducerStateError):
    code = ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER


class CoordinationError(LogqError):
    """A cluster-metadata operation was refused or failed."""


class QueueExistsError(CoordinationError):
    code = ErrorCode.TOPIC_ALREADY_EXISTS


class UnknownQueueError(CoordinationError):
    code = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION


class InvalidQueueNameError(CoordinationError):
    code = ErrorCode.INVALID_TOPIC_EXCEPTION


class InvalidPartitionsError(CoordinationError):
    code = ErrorCode.INVALID_PARTITIONS


class InvalidReplicationFactorError(CoordinationError):
    code = ErrorCode.INVALID_REPLICATION_FACTOR


class InvalidConfigError(CoordinationError):
    code = ErrorCode.INVALID_CONFIG
