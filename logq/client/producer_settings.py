"""The producer's settings (Kafka's producer configs of the same names: ``linger_ms`` = linger.ms ...), each
with its default and its documentation, and the checks of their values."""

from __future__ import annotations

from dataclasses import dataclass

from logq import batch as rb
from logq.client.security import KAFKA_NAMES as SECURITY_NAMES
from logq.client.security import SecuritySettings
from logq.client.settings import check_number, setting

__all__ = [
    "ACKS",
    "CODECS",
    "KAFKA_NAMES",
    "MAX_IDEMPOTENT_IN_FLIGHT",
    "MIN_REQUEST_SIZE",
    "ProducerSettings",
    "parse_acks",
]

CODECS = {"none": rb.CODEC_NONE, "gzip": rb.CODEC_GZIP, "zstd": rb.CODEC_ZSTD}
ACKS = {0: 0, 1: 1, -1: -1, "all": -1, "0": 0, "1": 1, "-1": -1}
MAX_IDEMPOTENT_IN_FLIGHT = 5  # the broker remembers the last 5 batches of each producer (docs/protocol.md)
MIN_REQUEST_SIZE = 128
# Kafka's names (dots as underscores) that differ from logq's, for ``-X key=value``.
KAFKA_NAMES = {
    "compression_type": "compression",
    "max_in_flight_requests_per_connection": "max_in_flight",
    "allow_auto_create_topics": "allow_auto_create",
    **SECURITY_NAMES,
}


def parse_acks(acks: object) -> int:
    """The wire value of an ``acks`` setting (0, 1, -1 or 'all', also as strings)."""
    if isinstance(acks, bool) or not isinstance(acks, int | str) or acks not in ACKS:
        raise ValueError(f"acks must be 0, 1, -1 or 'all', not {acks!r}")
    return ACKS[acks]


@dataclass(frozen=True, kw_only=True)
class ProducerSettings(SecuritySettings):
    """Every setting of logq's producer (the security ones from SecuritySettings). ValueError when a value
    is out of range or settings conflict."""

    acks: int | str = setting(
        "all",
        "When a record counts as delivered: 'all' (-1) once every in-sync replica has it (fsynced, on a "
        "standalone broker), 1 once the leader has written it, 0 once it is written to the socket.",
    )
    linger_ms: float = setting(5, "How long a batch waits for more records before it is sent (ms).")
    batch_size: int = setting(
        131072, "The largest batch of one partition (bytes); a larger record goes in a batch of its own."
    )
    compression: str = setting("zstd", "How batches are compressed: 'none', 'gzip' or 'zstd'.")
    enable_idempotence: bool | None = setting(
        None,
        "The broker drops a retried batch it already has, so retries never duplicate. None: on when "
        "acks='all', max_in_flight <= 5 and retries != 0 (as Kafka 3); True with other settings is an error.",
    )
    retries: int | None = setting(
        None, "How many times a batch is retried after retriable errors; None: until delivery_timeout_ms."
    )
    retry_backoff_ms: int = setting(
        100, "The wait before the first retry (ms); it doubles with each failure, up to 1 s."
    )
    delivery_timeout_ms: int = setting(
        120_000,
        "A record fails once it is this old without being delivered, retries included (ms); at least "
        "linger_ms + request_timeout_ms.",
    )
    request_timeout_ms: int = setting(30_000, "How long to wait for a broker's answer (ms).")
    metadata_max_age_ms: int = setting(
        300_000,
        "Read the queues' metadata again at least this often (ms), to learn moved leaders and new "
        "partitions without an error to prompt it.",
    )
    max_in_flight: int = setting(
        5, "Produce requests in flight per partition (Kafka's max.in.flight.requests.per.connection)."
    )
    buffer_memory: int = setting(
        64 << 20,
        "Bytes of records waiting to be sent; send() blocks when it is full (asyncio: BufferFullError, "
        "then await wait_for_room()).",
    )
    max_request_size: int = setting(
        1 << 20,
        "The largest produce request, hence the largest record (bytes, encoded); the queue's "
        "max.message.bytes must allow the record too.",
    )
    client_id: str = setting("logq-producer", "The name brokers see in their logs and metrics.")
    allow_auto_create: bool = setting(
        True,
        "Ask the broker to create a queue that does not exist when a record is sent to it, as Kafka's "
        "producers do; the broker decides (its auto.create.queues setting).",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        wire_acks = parse_acks(self.acks)
        check_number("linger_ms", self.linger_ms, 0, integer=False)
        check_number("batch_size", self.batch_size, 1)
        if self.compression not in CODECS:
            raise ValueError(f"compression must be one of {', '.join(CODECS)}, not {self.compression!r}")
        if self.enable_idempotence is not None and not isinstance(self.enable_idempotence, bool):
            raise ValueError(
                f"enable_idempotence must be True, False or None, not {self.enable_idempotence!r}"
            )
        if self.retries is not None:
            check_number("retries", self.retries, 0)
        check_number("retry_backoff_ms", self.retry_backoff_ms, 0)
        check_number("request_timeout_ms", self.request_timeout_ms, 1)
        check_number("delivery_timeout_ms", self.delivery_timeout_ms, 1)
        check_number("metadata_max_age_ms", self.metadata_max_age_ms, 1)
        check_number("max_in_flight", self.max_in_flight, 1)
        check_number("buffer_memory", self.buffer_memory, 1)
        check_number("max_request_size", self.max_request_size, MIN_REQUEST_SIZE)
        if self.delivery_timeout_ms < self.linger_ms + self.request_timeout_ms:
            raise ValueError(
                f"delivery_timeout_ms ({self.delivery_timeout_ms}) must be at least linger_ms + "
                f"request_timeout_ms ({self.linger_ms:g} + {self.request_timeout_ms})"
            )
        if not isinstance(self.client_id, str) or not self.client_id:
            raise ValueError(f"client_id must be a non-empty string, not {self.client_id!r}")
        if not isinstance(self.allow_auto_create, bool):
            raise ValueError(f"allow_auto_create must be True or False, not {self.allow_auto_create!r}")
        if self.enable_idempotence:
            if wire_acks != -1:
                raise ValueError(f"enable_idempotence=True needs acks='all', not acks={self.acks!r}")
            if self.max_in_flight > MAX_IDEMPOTENT_IN_FLIGHT:
                raise ValueError(
                    f"enable_idempotence=True needs max_in_flight <= {MAX_IDEMPOTENT_IN_FLIGHT}, "
                    f"not {self.max_in_flight}"
                )
            if self.retries == 0:
                raise ValueError("enable_idempotence=True needs retries > 0")

    @property
    def wire_acks(self) -> int:
        return parse_acks(self.acks)

    @property
    def idempotent(self) -> bool:
        """enable_idempotence, or its default: on unless other settings conflict with it (as Kafka 3)."""
        if self.enable_idempotence is not None:
            return self.enable_idempotence
        return self.wire_acks == -1 and self.max_in_flight <= MAX_IDEMPOTENT_IN_FLIGHT and self.retries != 0
