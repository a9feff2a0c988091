"""logq's exception hierarchy. Each error carries the Kafka error code it maps to on the wire.

LogqError
 +-- StorageError                 a log or index operation failed
 |    +-- CorruptBatchError       CORRUPT_MESSAGE: not a valid magic-2 batch (CRC, lengths, magic)
 |    +-- BatchTooLargeError      MESSAGE_TOO_LARGE: larger than max.message.bytes
 |    +-- OffsetOutOfRangeError   OFFSET_OUT_OF_RANGE: below the log start or past the log end
 |    +-- LogClosedError          KAFKA_STORAGE_ERROR: the partition log is closed or deleted
 |    +-- DiskFullError           KAFKA_STORAGE_ERROR: no space left for an append; nothing was written
 |    +-- LogDirOfflineError      KAFKA_STORAGE_ERROR: the data directory failed (an fsync, an index write):
 |                                nothing more is written or acknowledged until the broker restarts
 +-- FencedLeaderEpochError       FENCED_LEADER_EPOCH: an append's leader epoch is below the log's latest
 +-- ReplicationError             an acks=all write not replicated: NOT_ENOUGH_REPLICAS(_AFTER_APPEND), ...
 +-- ProducerStateError           a sequence/epoch check of an idempotent producer failed
      +-- InvalidProducerEpochError   INVALID_PRODUCER_EPOCH
      +-- OutOfOrderSequenceError     OUT_OF_ORDER_SEQUENCE_NUMBER
 +-- CoordinationError            a cluster-metadata operation was refused (queue exists, bad name, ...)
 +-- RequestRefusedError          a handler refuses a request, or one resource of it; ``code`` says why
 +-- UnsafePermissionsError       a data directory or key file others may read or write: not started
 +-- ConfigurationError           a setting that cannot work (a TLS file that does not load); a ValueError
 +-- ClientError                  raised by the client (logq.Producer/Consumer/Admin)
      +-- AuthorizationError      TOPIC_/GROUP_/CLUSTER_/TRANSACTIONAL_ID_AUTHORIZATION_FAILED: ACLs refuse
      +-- BrokerUnavailableError  NETWORK_EXCEPTION: cannot reach a broker, or the connection broke
      |    +-- AuthenticationError  SASL_AUTHENTICATION_FAILED (or a refused TLS handshake): not retried
      +-- ClientTimeoutError      REQUEST_TIMED_OUT: no answer within the client's deadline
      +-- BrokerError             any other error code a broker answered; ``code`` says which
      +-- BufferFullError         the producer's buffer_memory is full (also a builtin BufferError)
      +-- CommitFailedError       ILLEGAL_GENERATION: the consumer is no longer in the group's generation
      +-- RebalanceInProgressError  REBALANCE_IN_PROGRESS: the group is rebalancing; poll, then retry
      +-- GroupNotEmptyError      an offset reset or a group deletion refused while the group has live
      |                           members (NON_EMPTY_GROUP, GROUP_SUBSCRIBED_TO_TOPIC from a broker)
      +-- ConsumerProtocolError   member metadata or an assignment that is not consumer protocol
 +-- BatchError                   CORRUPT_MESSAGE: not one valid RecordBatch v2 (``logq/batch.py``)
 +-- ProtocolError                INVALID_REQUEST: not a valid message of its version (``logq/protocol/``)
      +-- ProtocolDecodeError, ProtocolEncodeError, FrameSizeError
      +-- UnsupportedVersionError     UNSUPPORTED_VERSION

An exception that maps to a Kafka error code is a LogqError: the last two are defined next to the code
that raises them (this core module imports nothing of logq but ``error_codes``), and are handled like
the others. Every error has ``code`` (an ErrorCode) and ``retriable``. ``error_for_code(code, message)``
builds the most specific class for a code a broker sent, so ``except UnknownQueueError`` works on the
client too.
"""

from __future__ import annotations

from logq.error_codes import ErrorCode


class LogqError(Exception):
    code: ErrorCode = ErrorCode.UNKNOWN_SERVER_ERROR

    def __init__(self, message: str = "", *, code: ErrorCode | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code  # an instance may carry a more precise code than its class

    @property
    def retriable(self) -> bool:
        return self.code.retriable


class StorageError(LogqError):
    code = ErrorCode.KAFKA_STORAGE_ERROR


class InconsistentClusterError(StorageError):
    """The data directory was used by another cluster than the one the broker joins."""

    code = ErrorCode.INCONSISTENT_CLUSTER_ID


class CorruptBatchError(StorageError):
    code = ErrorCode.CORRUPT_MESSAGE


class BatchTooLargeError(StorageError):
    code = ErrorCode.MESSAGE_TOO_LARGE


class OffsetOutOfRangeError(StorageError):
    code = ErrorCode.OFFSET_OUT_OF_RANGE


class LogClosedError(StorageError):
    code = ErrorCode.KAFKA_STORAGE_ERROR


class DiskFullError(StorageError):
    """The data directory's disk has no space for an append (ENOSPC, EDQUOT). The write was cut back, so
    the log is unchanged and takes appends again once there is space."""

    code = ErrorCode.KAFKA_STORAGE_ERROR


class LogDirOfflineError(StorageError):
    """The data directory went offline after a failure whose effect on the disk is unknown: a failed
    fsync (the kernel may have dropped the unwritten pages), a failed index write, a write that could
    not be cut back. Nothing more is appended or acknowledged there until the broker restarts."""

    code = ErrorCode.KAFKA_STORAGE_ERROR


class FencedLeaderEpochError(LogqError):
    """An append stamped with a leader epoch older than the latest one the log has recorded (KIP-101).
    Not a StorageError: nothing is wrong with the log; the writer is a deposed leader."""

    code = ErrorCode.FENCED_LEADER_EPOCH


class ProducerStateError(LogqError):
    pass


class InvalidProducerEpochError(ProducerStateError):
    code = ErrorCode.INVALID_PRODUCER_EPOCH


class OutOfOrderSequenceError(ProducerStateError):
    code = ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER


class InvalidRecordsError(LogqError):
    """A produced batch holding records the queue refuses (KIP-467): the whole batch is refused, and
    ``record_errors`` names each bad record by its index in the batch, so that a client fails only
    those (librdkafka fails the others with _INVALID_DIFFERENT_RECORD, to be sent again)."""

    code = ErrorCode.INVALID_RECORD

    def __init__(self, message: str, record_errors: list[tuple[int, str]]) -> None:
        super().__init__(message)
        self.record_errors = record_errors


class ReplicationError(LogqError):
    """An acks=all write that cannot be acknowledged: the ISR is smaller than min.insync.replicas
    (NOT_ENOUGH_REPLICAS, nothing appended; NOT_ENOUGH_REPLICAS_AFTER_APPEND, appended but the ISR
    shrank meanwhile), the ISR did not catch up in time (REQUEST_TIMED_OUT), or this broker stopped
    leading while it waited (NOT_LEADER_OR_FOLLOWER). The instance carries the precise code."""

    code = ErrorCode.NOT_ENOUGH_REPLICAS


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


class InvalidReplicaAssignmentError(CoordinationError):
    code = ErrorCode.INVALID_REPLICA_ASSIGNMENT


class InvalidConfigError(CoordinationError):
    code = ErrorCode.INVALID_CONFIG


class TopicDeletionDisabledError(CoordinationError):
    code = ErrorCode.TOPIC_DELETION_DISABLED


class RequestRefusedError(LogqError):
    """Raised by a broker handler, always with the precise code (a duplicate name, a refused ACL check,
    an assignment that cannot be served): answered for that resource, nothing else fails."""


class ConfigurationError(LogqError, ValueError):
    """A setting that cannot work, found when it is used (e.g. a certificate file that does not load)."""


class UnsafePermissionsError(LogqError):
    """A data directory or a secret file that others may read or write (or another user owns)."""


class ClientError(LogqError):
    """Raised by logq's client."""


class AuthorizationError(ClientError):
    """The broker's ACLs refuse this client (``code`` says on what: TOPIC_, GROUP_, CLUSTER_ or
    TRANSACTIONAL_ID_AUTHORIZATION_FAILED). Not retriable: an admin must grant the ACL first."""

    code = ErrorCode.TOPIC_AUTHORIZATION_FAILED


class BrokerUnavailableError(ClientError):
    code = ErrorCode.NETWORK_EXCEPTION


class AuthenticationError(BrokerUnavailableError):
    """The broker refused who the client says it is (SASL), or the TLS handshake failed. Retrying with
    the same settings cannot help."""

    code = ErrorCode.SASL_AUTHENTICATION_FAILED

    @property
    def retriable(self) -> bool:
        return False


class ClientTimeoutError(ClientError):
    code = ErrorCode.REQUEST_TIMED_OUT


class BrokerError(ClientError):
    """A broker answered an error code that has no more specific class here."""


class BufferFullError(ClientError, BufferError):
    """``buffer_memory`` is full: on the event loop, ``await producer.wait_for_room()`` before sending."""


class CommitFailedError(ClientError):
    """The commit was refused because this consumer is no longer in the group's current generation (it
    was dropped after a session timeout or a rebalance); its partitions may belong to another member now."""

    code = ErrorCode.ILLEGAL_GENERATION


class RebalanceInProgressError(ClientError):
    """The group is rebalancing: poll() to rejoin, then commit again."""

    code = ErrorCode.REBALANCE_IN_PROGRESS


class GroupNotEmptyError(ClientError):
    """An offset reset was refused because the group has live members that would overwrite it, or a
    deletion because the group (or its subscription to the queue) is in use: NON_EMPTY_GROUP,
    GROUP_SUBSCRIBED_TO_TOPIC."""

    code = ErrorCode.REBALANCE_IN_PROGRESS


class ConsumerProtocolError(ClientError):
    """Member metadata or an assignment that is not a valid consumer-protocol message."""


_BY_CODE: dict[ErrorCode, type[LogqError]] = {
    ErrorCode.CORRUPT_MESSAGE: CorruptBatchError,
    ErrorCode.MESSAGE_TOO_LARGE: BatchTooLargeError,
    ErrorCode.OFFSET_OUT_OF_RANGE: OffsetOutOfRangeError,
    ErrorCode.KAFKA_STORAGE_ERROR: StorageError,
    ErrorCode.INVALID_PRODUCER_EPOCH: InvalidProducerEpochError,
    ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER: OutOfOrderSequenceError,
    ErrorCode.FENCED_LEADER_EPOCH: FencedLeaderEpochError,
    ErrorCode.TOPIC_ALREADY_EXISTS: QueueExistsError,
    ErrorCode.UNKNOWN_TOPIC_OR_PARTITION: UnknownQueueError,
    ErrorCode.INVALID_TOPIC_EXCEPTION: InvalidQueueNameError,
    ErrorCode.INVALID_PARTITIONS: InvalidPartitionsError,
    ErrorCode.INVALID_REPLICATION_FACTOR: InvalidReplicationFactorError,
    ErrorCode.INVALID_CONFIG: InvalidConfigError,
    ErrorCode.INVALID_REPLICA_ASSIGNMENT: InvalidReplicaAssignmentError,
    ErrorCode.TOPIC_DELETION_DISABLED: TopicDeletionDisabledError,
    ErrorCode.TOPIC_AUTHORIZATION_FAILED: AuthorizationError,
    ErrorCode.GROUP_AUTHORIZATION_FAILED: AuthorizationError,
    ErrorCode.CLUSTER_AUTHORIZATION_FAILED: AuthorizationError,
    ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED: AuthorizationError,
    ErrorCode.NETWORK_EXCEPTION: BrokerUnavailableError,
    ErrorCode.SASL_AUTHENTICATION_FAILED: AuthenticationError,
    ErrorCode.REQUEST_TIMED_OUT: ClientTimeoutError,
    ErrorCode.NON_EMPTY_GROUP: GroupNotEmptyError,
    ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC: GroupNotEmptyError,
}


def error_for_code(code: int, message: str | None = None) -> LogqError:
    """The exception for an error code a broker answered (``message`` defaults to the code's name)."""
    try:
        error_code = ErrorCode(code)
    except ValueError:
        return BrokerError(message or f"broker error code {code}", code=ErrorCode.UNKNOWN_SERVER_ERROR)
    cls = _BY_CODE.get(error_code, BrokerError)
    return cls(message or error_code.name, code=error_code)
