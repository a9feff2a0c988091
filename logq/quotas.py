"""Client quotas: who they apply to (entities), what they limit (keys), and which one applies to a
connection (Kafka's precedence). Pure: the coordinator stores them, the broker enforces them.

An entity is a user, a client id, or both; each part is a name or the default entity of its kind
(``<default>``, a null name on the wire). For each quota key separately, the first entity below that sets
it applies to a request of (user, client-id) — Kafka's order:

    user + client-id, user + default client-id, user,
    default user + client-id, default user + default client-id, default user,
    client-id, default client-id

Where the quota matched decides who shares it (Kafka's metric tags): an entity naming a user or client id
explicitly shares one allowance among every connection it matches; a default part gives each user (or
client id) its own.
"""

from __future__ import annotations

import math
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from logq.error_codes import ErrorCode
from logq.errors import RequestRefusedError

DEFAULT = "<default>"  # the default entity of a kind (Kafka's znode name for it)
USER = "user"
CLIENT_ID = "client-id"

PRODUCER_BYTE_RATE = "producer_byte_rate"
CONSUMER_BYTE_RATE = "consumer_byte_rate"
REQUEST_PERCENTAGE = "request_percentage"
CONTROLLER_MUTATION_RATE = "controller_mutation_rate"
QUOTA_KEYS = frozenset({PRODUCER_BYTE_RATE, CONSUMER_BYTE_RATE, REQUEST_PERCENTAGE, CONTROLLER_MUTATION_RATE})
# Kafka stores the byte rates as longs and refuses fractions of them.
_WHOLE_KEYS = frozenset({PRODUCER_BYTE_RATE, CONSUMER_BYTE_RATE})


@dataclass(frozen=True, slots=True)
class QuotaEntity:
    """None: the entity has no part of that kind; DEFAULT: the default entity of that kind."""

    user: str | None = None
    client_id: str | None = None

    def sort_key(self) -> tuple[bool, str, bool, str]:
        return (self.user is None, self.user or "", self.client_id is None, self.client_id or "")

    def path(self) -> str:
        """Kafka's ZooKeeper path under /config (names URL-encoded, as Kafka's sanitised names)."""
        parts = []
        if self.user is not None:
            parts.append(f"users/{_encode(self.user)}")
        if self.client_id is not None:
            parts.append(f"clients/{_encode(self.client_id)}")
        return "/".join(parts)

    @classmethod
    def from_path(cls, path: str) -> QuotaEntity:
        user = client_id = None
        parts = path.split("/")
        if len(parts) not in (2, 4):
            raise ValueError(f"not a quota entity path: {path!r}")
        for kind, name in zip(parts[::2], parts[1::2], strict=True):
            if kind == "users" and user is None and client_id is None:
                user = _decode(name)
            elif kind == "clients" and client_id is None:
                client_id = _decode(name)
            else:
                raise ValueError(f"not a quota entity path: {path!r}")
        return cls(user, client_id)

    def describe(self) -> str:
        parts = []
        if self.user is not None:
            parts.append(f"user {'(default)' if self.user == DEFAULT else repr(self.user)}")
        if self.client_id is not None:
            parts.append(f"client-id {'(default)' if self.client_id == DEFAULT else repr(self.client_id)}")
        return ", ".join(parts)


def _invalid(message: str) -> RequestRefusedError:
    return RequestRefusedError(message, code=ErrorCode.INVALID_REQUEST)


def _encode(name: str) -> str:
    return name if name == DEFAULT else urllib.parse.quote(name, safe="")


def _decode(name: str) -> str:
    return name if name == DEFAULT else urllib.parse.unquote(name)


ClientQuotas = Mapping[QuotaEntity, Mapping[str, float]]
NO_QUOTAS: ClientQuotas = MappingProxyType({})


def entity_from_parts(parts: Iterable[tuple[str, str | None]]) -> QuotaEntity:
    """An entity from the wire's (type, name) pairs (a null name: the default). INVALID_REQUEST for an
    empty entity, an unknown or repeated type, or an empty name."""
    user = client_id = None
    seen = set()
    for kind, name in parts:
        if kind in seen:
            raise _invalid(f"entity type {kind!r} is listed twice")
        seen.add(kind)
        if name == "":
            raise _invalid(f"the {kind} name is empty (a null name is the default entity)")
        value = DEFAULT if name is None else name
        if kind == USER:
            user = value
        elif kind == CLIENT_ID:
            client_id = value
        else:
            raise _invalid(f"unsupported quota entity type {kind!r} (user, client-id)")
    if not seen:
        raise _invalid("the entity is empty")
    return QuotaEntity(user, client_id)


def entity_parts(entity: QuotaEntity) -> list[tuple[str, str | None]]:
    parts: list[tuple[str, str | None]] = []
    if entity.user is not None:
        parts.append((USER, None if entity.user == DEFAULT else entity.user))
    if entity.client_id is not None:
        parts.append((CLIENT_ID, None if entity.client_id == DEFAULT else entity.client_id))
    return parts


def validate_quota_value(key: str, value: float) -> float:
    """INVALID_REQUEST for an unknown key or a value Kafka refuses (not positive, a fractional byte rate)."""
    if key not in QUOTA_KEYS:
        raise _invalid(f"unknown quota key {key!r} (known: {', '.join(sorted(QUOTA_KEYS))})")
    if not math.isfinite(value) or value <= 0:
        raise _invalid(f"{key} must be greater than 0, not {value:g}")
    if key in _WHOLE_KEYS and value != int(value):
        raise _invalid(f"{key} must be a whole number of bytes per second, not {value:g}")
    return value


def with_changes(
    quotas: ClientQuotas, entity: QuotaEntity, changes: Mapping[str, float | None]
) -> dict[QuotaEntity, Mapping[str, float]]:
    """A copy of ``quotas`` with ``entity``'s keys set (a value) or removed (None); an entity left with no
    key is dropped."""
    out = dict(quotas)
    values = dict(out.get(entity, {}))
    for key, value in changes.items():
        if value is None:
            values.pop(key, None)
        else:
            values[key] = value
    if values:
        out[entity] = MappingProxyType(values)
    else:
        out.pop(entity, None)
    return out


@dataclass(frozen=True, slots=True)
class AppliedQuota:
    """The quota in force for one key: its value per second and who shares it (the sensor key)."""

    limit: float
    shared_by: tuple[str, str]  # (user or "", client id or ""): Kafka's metric tags


def _precedence(user: str, client_id: str) -> tuple[QuotaEntity, ...]:
    return (
        QuotaEntity(user, client_id),
        QuotaEntity(user, DEFAULT),
        QuotaEntity(user, None),
        QuotaEntity(DEFAULT, client_id),
        QuotaEntity(DEFAULT, DEFAULT),
        QuotaEntity(DEFAULT, None),
        QuotaEntity(None, client_id),
        QuotaEntity(None, DEFAULT),
    )


def quota_for(quotas: ClientQuotas, key: str, user: str, client_id: str) -> AppliedQuota | None:
    """The quota of ``key`` that applies to (user, client id), or None: unlimited."""
    if not quotas:
        return None
    for entity in _precedence(user, client_id):
        values = quotas.get(entity)
        if values is None or key not in values:
            continue
        # A user part (named or default) means per user; a client part likewise: Kafka's tags
        return AppliedQuota(
            values[key],
            (user if entity.user is not None else "", client_id if entity.client_id is not None else ""),
        )
    return None


def user_of_principal(principal: str) -> str:
    """``User:alice`` -> ``alice``; ``User:ANONYMOUS`` -> ``ANONYMOUS`` (Kafka's quota user)."""
    return principal.partition(":")[2] or principal
