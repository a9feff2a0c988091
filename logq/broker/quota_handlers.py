"""DescribeClientQuotas (48, v0) and AlterClientQuotas (49, v0): client quotas over the wire, as Kafka's
kafka-configs.sh --entity-type users/clients and the AdminClient's describe/alterClientQuotas use them.

As in Kafka: describing needs DESCRIBE_CONFIGS on the cluster (else CLUSTER_AUTHORIZATION_FAILED for
the whole request), altering ALTER_CONFIGS on the cluster (else that code for every entry). A bad filter
is INVALID_REQUEST for the whole describe; a bad entry (an unknown key or entity type, a value not
above 0, a key listed twice) is INVALID_REQUEST for that entry, and AlterClientQuotas then changes
nothing of that entry while the valid ones are applied together. ``validate_only`` checks and writes
nothing. The quotas are stored by the coordinator, which tells every broker (``quota_manager.py``).
"""

from __future__ import annotations

from collections.abc import Mapping

from logq.broker.authorization import RequestAuthorizer
from logq.broker.handlers import Handler
from logq.broker.metrics import BrokerMetrics
from logq.coordinator import Coordinator
from logq.error_codes import ErrorCode
from logq.errors import LogqError
from logq.protocol import RequestHeader
from logq.protocol import messages as m
from logq.quotas import (
    CLIENT_ID,
    DEFAULT,
    USER,
    QuotaEntity,
    entity_from_parts,
    entity_parts,
    validate_quota_value,
)
from logq.security.acl import CLUSTER_NAME, AclOperation, ResourceType

MATCH_EXACT, MATCH_DEFAULT, MATCH_ANY = 0, 1, 2  # DescribeClientQuotas' match_type
_CLUSTER = (ResourceType.CLUSTER, CLUSTER_NAME)


class _BadFilterError(Exception):
    pass


class QuotaHandlers:
    def __init__(self, coordinator: Coordinator, metrics: BrokerMetrics, auth: RequestAuthorizer) -> None:
        self._coordinator = coordinator
        self._metrics = metrics
        self._auth = auth
        self.by_type: dict[type, Handler] = {
            m.DescribeClientQuotasRequest: self.describe,
            m.AlterClientQuotasRequest: self.alter,
        }

    async def describe(
        self, header: RequestHeader, req: m.DescribeClientQuotasRequest
    ) -> m.DescribeClientQuotasResponse:
        if not self._auth.allows_cluster(AclOperation.DESCRIBE_CONFIGS):
            return self._describe_error(
                ErrorCode.CLUSTER_AUTHORIZATION_FAILED,
                self._auth.refusal(AclOperation.DESCRIBE_CONFIGS, *_CLUSTER),
            )
        try:
            wanted = _filter(req.components)
        except _BadFilterError as exc:
            return self._describe_error(ErrorCode.INVALID_REQUEST, str(exc))
        entries = [
            m.DescribeClientQuotasEntry(
                entity=_wire_entity(entity),
                values=[m.ClientQuotaValue(key=k, value=v) for k, v in sorted(values.items())],
            )
            for entity, values in sorted(self._coordinator.client_quotas().items(), key=_by_entity)
            if _matches(entity, wanted, req.strict)
        ]
        return m.DescribeClientQuotasResponse(error_code=ErrorCode.NONE, entries=entries)

    def _describe_error(self, code: ErrorCode, message: str) -> m.DescribeClientQuotasResponse:
        self._metrics.errors.labels("DescribeClientQuotas", str(int(code))).inc()
        return m.DescribeClientQuotasResponse(error_code=code, error_message=message, entries=None)

    async def alter(
        self, header: RequestHeader, req: m.AlterClientQuotasRequest
    ) -> m.AlterClientQuotasResponse:
        allowed = self._auth.allows_cluster(AclOperation.ALTER_CONFIGS)
        results: list[m.AlterClientQuotasEntryResult] = []
        changes: dict[QuotaEntity, Mapping[str, float | None]] = {}
        for entry in req.entries:
            result = m.AlterClientQuotasEntryResult(error_code=ErrorCode.NONE, entity=entry.entity)
            results.append(result)
            if not allowed:
                result.error_code = ErrorCode.CLUSTER_AUTHORIZATION_FAILED
                result.error_message = self._auth.refusal(AclOperation.ALTER_CONFIGS, *_CLUSTER)
                continue
            try:
                entity = entity_from_parts((p.entity_type, p.entity_name) for p in entry.entity)
                if entity in changes:
                    raise _refused(f"the entity {entity.describe()} is listed twice")
                changes[entity] = _ops(entry.ops)
            except LogqError as exc:
                result.error_code, result.error_message = exc.code, str(exc)
        if changes and not req.validate_only:
            try:
                await self._coordinator.alter_client_quotas(changes)
            except LogqError as exc:  # not written: every entry that was to be applied failed
                for result in results:
                    if result.error_code == ErrorCode.NONE:
                        result.error_code, result.error_message = exc.code, str(exc)
        for result in results:
            if result.error_code:
                self._metrics.errors.labels("AlterClientQuotas", str(result.error_code)).inc()
        return m.AlterClientQuotasResponse(entries=results)


def _by_entity(item: tuple[QuotaEntity, Mapping[str, float]]) -> tuple[bool, str, bool, str]:
    return item[0].sort_key()


def _refused(message: str) -> LogqError:
    return LogqError(message, code=ErrorCode.INVALID_REQUEST)


def _ops(ops: list[m.AlterClientQuotasOp]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for op in ops:
        if op.key in out:
            raise _refused(f"quota key {op.key!r} is listed twice")
        if op.remove:
            validate_quota_value(op.key, 1.0)  # the key must be known, whatever the value says
            out[op.key] = None
        else:
            out[op.key] = validate_quota_value(op.key, op.value)
    return out


def _wire_entity(entity: QuotaEntity) -> list[m.ClientQuotaEntityPart]:
    return [m.ClientQuotaEntityPart(entity_type=t, entity_name=n) for t, n in entity_parts(entity)]


# A filter: per entity type, None (any name, or the default too) or the name wanted (DEFAULT: the default).
_Filter = dict[str, str | None]


def _filter(components: list[m.ClientQuotaFilterComponent]) -> _Filter:
    wanted: _Filter = {}
    for c in components:
        if c.entity_type not in (USER, CLIENT_ID):
            raise _BadFilterError(f"unsupported entity type {c.entity_type!r} (user, client-id)")
        if c.entity_type in wanted:
            raise _BadFilterError(f"entity type {c.entity_type!r} is filtered twice")
        if c.match_type == MATCH_EXACT:
            if c.match is None:
                raise _BadFilterError(f"an exact match of {c.entity_type} needs a name")
            wanted[c.entity_type] = c.match
        elif c.match_type in (MATCH_DEFAULT, MATCH_ANY):
            if c.match is not None:
                raise _BadFilterError(f"a default or any match of {c.entity_type} takes no name")
            wanted[c.entity_type] = DEFAULT if c.match_type == MATCH_DEFAULT else None
        else:
            raise _BadFilterError(f"unknown match type {c.match_type}")
    return wanted


def _matches(entity: QuotaEntity, wanted: _Filter, strict: bool) -> bool:
    names = {USER: entity.user, CLIENT_ID: entity.client_id}
    for kind, name in wanted.items():
        have = names[kind]
        if have is None or (name is not None and have != name):
            return False
    # strict: the entity has no part the filter does not name
    return not strict or all(names[k] is None for k in names if k not in wanted)
