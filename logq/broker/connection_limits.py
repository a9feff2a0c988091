"""Connection limits, as Kafka's: ``max.connections`` (broker-wide), ``max.connections.per.ip`` (with
``max.connections.per.ip.overrides``, "HOST:COUNT,HOST:COUNT") and ``max.connection.creation.rate``
(new connections per second, broker-wide). A connection over a limit is closed right after accept.

Pure bookkeeping, no I/O: the server asks ``admit`` when a connection is made and calls ``release``
when an admitted one closes. Connections on the inter-broker listener of a cluster are never counted
or refused (the server does not ask), as Kafka exempts that listener: a cluster must not lose its
replication because clients flooded a broker.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass, field

UNLIMITED = 2_147_483_647  # Kafka's default for each limit (Int.MaxValue)

# The reasons a connection is refused: the label of logq_connections_refused.
MAX_CONNECTIONS = "max-connections"
MAX_CONNECTIONS_PER_IP = "max-connections-per-ip"
CREATION_RATE = "creation-rate"


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    max_connections: int = UNLIMITED
    max_per_ip: int = UNLIMITED
    per_ip_overrides: dict[str, int] = field(default_factory=dict)  # normalised IP address -> limit
    creation_rate: int = UNLIMITED  # per second

    @classmethod
    def parse(
        cls, max_connections: int, max_per_ip: int, overrides: str, creation_rate: int
    ) -> ConnectionLimits:
        """The limits from the settings; ValueError (one line) for a bad value."""
        for key, value in (
            ("max.connections", max_connections),
            ("max.connections.per.ip", max_per_ip),
            ("max.connection.creation.rate", creation_rate),
        ):
            if value < 1:
                raise ValueError(f"{key} must be at least 1, not {value}")
        return cls(max_connections, max_per_ip, parse_overrides(overrides), creation_rate)

    def limit_for(self, host: str) -> int:
        return self.per_ip_overrides.get(host, self.max_per_ip)


def parse_overrides(text: str) -> dict[str, int]:
    """``"127.0.0.1:200,::1:0"`` -> {address: limit}. Addresses only (a name would need a lookup at
    every start, and could change under a running broker); 0 refuses the address altogether."""
    out: dict[str, int] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        host, sep, count = item.rpartition(":")
        host = host.strip().strip("[]")
        try:
            address = str(ipaddress.ip_address(host))
        except ValueError:
            address = ""
        if not sep or not address or not count.strip().isdigit():
            raise ValueError(
                f"max.connections.per.ip.overrides: expected IP:COUNT[,IP:COUNT...], got {item!r}"
            )
        out[address] = int(count)
    return out


class ConnectionGate:
    """Counts the open connections (in all and per address) and the recent ones (a token bucket of
    ``creation_rate`` tokens, refilled at that rate: a burst of one second's worth, then the rate)."""

    def __init__(self, limits: ConnectionLimits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        self.open = 0
        self._per_ip: dict[str, int] = {}
        self._tokens = float(limits.creation_rate)
        self._refilled = clock()

    def admit(self, host: str) -> str | None:
        """Count a new connection from ``host`` and return None, or return why it is refused (it is
        then not counted)."""
        limits = self.limits
        host = _normalised(host)
        if self.open >= limits.max_connections:
            return MAX_CONNECTIONS
        if self._per_ip.get(host, 0) >= limits.limit_for(host):
            return MAX_CONNECTIONS_PER_IP
        if limits.creation_rate < UNLIMITED:
            now = self._clock()
            rate = limits.creation_rate
            self._tokens = min(float(rate), self._tokens + (now - self._refilled) * rate)
            self._refilled = now
            if self._tokens < 1:
                return CREATION_RATE
            self._tokens -= 1
        self.open += 1
        self._per_ip[host] = self._per_ip.get(host, 0) + 1
        return None

    def release(self, host: str) -> None:
        """An admitted connection from ``host`` closed."""
        host = _normalised(host)
        self.open -= 1
        left = self._per_ip.get(host, 1) - 1
        if left > 0:
            self._per_ip[host] = left
        else:
            self._per_ip.pop(host, None)

    def count_for(self, host: str) -> int:
        return self._per_ip.get(_normalised(host), 0)


def _normalised(host: str) -> str:
    """One spelling per address (``::ffff:127.0.0.1`` is 127.0.0.1, as a dual-stack socket reports it)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)
