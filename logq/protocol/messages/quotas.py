"""DescribeClientQuotas (key 48, v0) and AlterClientQuotas (key 49, v0): client quotas over the wire, as
kafka-configs.sh --entity-type users/clients and the AdminClient use them. v0 is non-flexible (v1 is the
first flexible version of both).

Field lists follow Apache Kafka's ``DescribeClientQuotasRequest.json`` / ``...Response.json`` and
``AlterClientQuotasRequest.json`` / ``...Response.json``. An entity is a list of (type, name) pairs,
type ``user`` or ``client-id``; a null name is the default entity of that type. Quota values are float64.
"""

from __future__ import annotations

from dataclasses import dataclass

from logq.protocol.schema import BOOL, FLOAT64, INT8, INT16, INT32, STRING, ArrayOf, Struct, wire

__all__ = [
    "AlterClientQuotasEntry",
    "AlterClientQuotasEntryResult",
    "AlterClientQuotasOp",
    "AlterClientQuotasRequest",
    "AlterClientQuotasResponse",
    "ClientQuotaEntityPart",
    "ClientQuotaFilterComponent",
    "ClientQuotaValue",
    "DescribeClientQuotasEntry",
    "DescribeClientQuotasRequest",
    "DescribeClientQuotasResponse",
]

MATCH_EXACT = 0
MATCH_DEFAULT = 1
MATCH_ANY = 2


@dataclass(slots=True, kw_only=True)
class ClientQuotaFilterComponent(Struct):
    entity_type: str = wire(STRING)
    match_type: int = wire(INT8)  # 0 exact name, 1 the default entity, 2 any (Kafka's MatchType)
    match: str | None = wire(STRING, nullable="0+", default=None)


@dataclass(slots=True, kw_only=True)
class DescribeClientQuotasRequest(Struct):
    components: list[ClientQuotaFilterComponent] = wire(ArrayOf(ClientQuotaFilterComponent))
    strict: bool = wire(BOOL, default=False)


@dataclass(slots=True, kw_only=True)
class ClientQuotaEntityPart(Struct):
    entity_type: str = wire(STRING)
    entity_name: str | None = wire(STRING, nullable="0+", default=None)  # null: the default entity


@dataclass(slots=True, kw_only=True)
class ClientQuotaValue(Struct):
    key: str = wire(STRING)
    value: float = wire(FLOAT64)


@dataclass(slots=True, kw_only=True)
class DescribeClientQuotasEntry(Struct):
    entity: list[ClientQuotaEntityPart] = wire(ArrayOf(ClientQuotaEntityPart))
    values: list[ClientQuotaValue] = wire(ArrayOf(ClientQuotaValue))


@dataclass(slots=True, kw_only=True)
class DescribeClientQuotasResponse(Struct):
    throttle_time_ms: int = wire(INT32, default=0)
    error_code: int = wire(INT16, default=0)
    error_message: str | None = wire(STRING, nullable="0+", default=None)
    entries: list[DescribeClientQuotasEntry] | None = wire(
        ArrayOf(DescribeClientQuotasEntry), nullable="0+", default=None
    )


@dataclass(slots=True, kw_only=True)
class AlterClientQuotasOp(Struct):
    key: str = wire(STRING)
    value: float = wire(FLOAT64, default=0.0)
    remove: bool = wire(BOOL, default=False)


@dataclass(slots=True, kw_only=True)
class AlterClientQuotasEntry(Struct):
    entity: list[ClientQuotaEntityPart] = wire(ArrayOf(ClientQuotaEntityPart))
    ops: list[AlterClientQuotasOp] = wire(ArrayOf(AlterClientQuotasOp))


@dataclass(slots=True, kw_only=True)
class AlterClientQuotasRequest(Struct):
    entries: list[AlterClientQuotasEntry] = wire(ArrayOf(AlterClientQuotasEntry))
    validate_only: bool = wire(BOOL, default=False)


@dataclass(slots=True, kw_only=True)
class AlterClientQuotasEntryResult(Struct):
    error_code: int = wire(INT16, default=0)
    error_message: str | None = wire(STRING, nullable="0+", default=None)
    entity: list[ClientQuotaEntityPart] = wire(ArrayOf(ClientQuotaEntityPart))


@dataclass(slots=True, kw_only=True)
class AlterClientQuotasResponse(Struct):
    throttle_time_ms: int = wire(INT32, default=0)
    entries: list[AlterClientQuotasEntryResult] = wire(ArrayOf(AlterClientQuotasEntryResult))
