"""The consumer's settings (Kafka's consumer configs of the same names: ``fetch_max_wait_ms`` =
fetch.max.wait.ms ...), each with its default and its documentation, and the checks of their values."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from logq.client import assignors as asg
from logq.client.fetcher import RESET_STRATEGIES
from logq.client.security import KAFKA_NAMES as SECURITY_NAMES
from logq.client.security import SecuritySettings
from logq.client.settings import check_number, setting

__all__ = ["KAFKA_NAMES", "ConsumerSettings"]

# Kafka's names (dots as underscores) that differ from logq's, for ``-X key=value``.
KAFKA_NAMES = {"partition_assignment_strategy": "assignors", **SECURITY_NAMES}


@dataclass(frozen=True, kw_only=True)
class ConsumerSettings(SecuritySettings):
    """Every setting of logq's consumer (the security ones from SecuritySettings). ValueError when a value
    is out of range or settings conflict."""

    group_id: str | None = setting(
        None, "The consumer group to join (subscribe) or commit to; None: no group, assign() only."
    )
    auto_offset_reset: str = setting(
        "latest",
        "Where to start in a partition without a committed offset, or whose position is out of range: "
        "'earliest', 'latest' or 'error' (poll raises OffsetOutOfRangeError).",
    )
    enable_auto_commit: bool = setting(
        True, "Commit the positions every auto_commit_interval_ms (in poll), on a rebalance and at close()."
    )
    auto_commit_interval_ms: int = setting(5000, "How often auto-commit commits (ms).")
    session_timeout_ms: int = setting(
        45_000, "The group drops a member it has not heard from (heartbeats) for this long (ms)."
    )
    heartbeat_interval_ms: int = setting(
        3000, "How often a member heartbeats (ms); below session_timeout_ms."
    )
    max_poll_interval_ms: int = setting(
        300_000, "A member that does not call poll() for this long leaves the group, which rebalances (ms)."
    )
    rebalance_timeout_ms: int | None = setting(
        None, "How long a rebalance waits for the members to rejoin (ms); None: max_poll_interval_ms."
    )
    assignors: Sequence[str] = setting(
        ("range", "roundrobin"),
        "The assignors this member offers, preferred first: 'range', 'roundrobin', 'cooperative-sticky' "
        "(incremental rebalances when every assignor offered is cooperative).",
    )
    fetch_min_bytes: int = setting(1, "A fetch waits (up to fetch_max_wait_ms) for this many bytes.")
    fetch_max_wait_ms: int = setting(500, "How long a broker may hold a fetch for fetch_min_bytes (ms).")
    fetch_max_bytes: int = setting(50 << 20, "The most bytes one fetch asks for (all partitions).")
    max_partition_fetch_bytes: int = setting(
        1 << 20, "The most bytes one fetch asks for per partition (a larger first batch still comes whole)."
    )
    max_poll_records: int = setting(10_000, "The most records one poll() returns.")
    group_instance_id: str | None = setting(
        None,
        "A static member's id (KIP-345): a member that comes back within session_timeout_ms keeps its "
        "partitions without a rebalance.",
    )
    client_id: str = setting("logq-consumer", "The name brokers see in their logs and metrics.")
    request_timeout_ms: int = setting(30_000, "How long to wait for a broker's answer (ms).")
    metadata_max_age_ms: int = setting(
        300_000,
        "How often a pattern subscription looks for new queues (ms); a subscribed queue that is missing "
        "is looked for every 10 s, or this often if that is sooner.",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.auto_offset_reset not in RESET_STRATEGIES:
            choices = ", ".join(RESET_STRATEGIES)
            raise ValueError(f"auto_offset_reset must be one of {choices}, not {self.auto_offset_reset!r}")
        if self.group_id is not None and (not isinstance(self.group_id, str) or not self.group_id):
            raise ValueError("group_id must be a non-empty string (or None for no group)")
        check_number("session_timeout_ms", self.session_timeout_ms, 1)
        check_number("heartbeat_interval_ms", self.heartbeat_interval_ms, 1)
        if self.heartbeat_interval_ms >= self.session_timeout_ms:
            raise ValueError("heartbeat_interval_ms must be positive and below session_timeout_ms")
        check_number("auto_commit_interval_ms", self.auto_commit_interval_ms, 0)
        check_number("max_poll_interval_ms", self.max_poll_interval_ms, 1)
        if self.rebalance_timeout_ms is not None:
            check_number("rebalance_timeout_ms", self.rebalance_timeout_ms, 1)
        check_number("max_poll_records", self.max_poll_records, 1)
        check_number("metadata_max_age_ms", self.metadata_max_age_ms, 0)
        check_number("request_timeout_ms", self.request_timeout_ms, 1)
        check_number("fetch_min_bytes", self.fetch_min_bytes, 0)
        check_number("fetch_max_wait_ms", self.fetch_max_wait_ms, 0)
        check_number("fetch_max_bytes", self.fetch_max_bytes, 1)
        check_number("max_partition_fetch_bytes", self.max_partition_fetch_bytes, 1)
        if isinstance(self.assignors, str):
            raise ValueError(f"assignors must be a list of names, not the string {self.assignors!r}")
        object.__setattr__(self, "assignors", tuple(self.assignors))  # frozen: a list given becomes a tuple
        unknown = [name for name in self.assignors if name not in asg.ASSIGNORS]
        if unknown or not self.assignors:
            raise ValueError(
                f"unknown assignor(s) {unknown}: choose from {sorted(asg.ASSIGNORS)}"
                if unknown
                else "at least one assignor is needed"
            )
        if not isinstance(self.client_id, str) or not self.client_id:
            raise ValueError(f"client_id must be a non-empty string, not {self.client_id!r}")
