"""AlterConfigs (33) and IncrementalAlterConfigs (44): a queue's settings and the dynamic broker settings
changed after creation, as kafka-configs.sh --alter and the AdminClient do it.

A queue's new overrides are checked exactly as at creation (``logq.queues.validate_queue_settings``), the
broker's by ``logq.dynamic_settings.validate_broker_settings`` (a key that needs a restart is refused by
name); both are stored in the coordinator, whose listeners put them in force on every broker. AlterConfigs
replaces a resource's whole set of overrides (keys not listed go back to the next level down, as in
Kafka); IncrementalAlterConfigs changes the keys it names: SET, DELETE, and APPEND / SUBTRACT on list
settings (``cleanup.policy``). ``validate_only`` checks everything and writes nothing.

Errors are per resource, as Kafka's: ALTER_CONFIGS on the queue (TOPIC_AUTHORIZATION_FAILED) or on the
cluster for a broker (CLUSTER_AUTHORIZATION_FAILED) before anything is looked up; a resource listed twice,
a key listed twice, a null value, an unknown resource type or operation, another broker's id:
INVALID_REQUEST; an invalid queue name INVALID_TOPIC_EXCEPTION, an unknown queue
UNKNOWN_TOPIC_OR_PARTITION; a bad key or value INVALID_CONFIG with a message naming it.
"""

from __future__ import annotations

import enum
import logging
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from logq.broker.authorization import RequestAuthorizer
from logq.broker.config import BrokerConfig
from logq.broker.handlers import Handler
from logq.broker.metrics import BrokerMetrics
from logq.config import settings_of
from logq.coordinator import Coordinator
from logq.dynamic_settings import LIST_SETTINGS, broker_log_defaults, validate_broker_settings
from logq.error_codes import ErrorCode
from logq.errors import InvalidConfigError, LogqError, RequestRefusedError, UnknownQueueError
from logq.protocol import RequestHeader
from logq.protocol import messages as m
from logq.queues import validate_queue_name, validate_queue_settings
from logq.security.acl import CLUSTER_NAME, AclOperation
from logq.security.acl import ResourceType as AclResourceType

log = logging.getLogger(__name__)

TOPIC_RESOURCE = 2  # Kafka's ConfigResource.Type
BROKER_RESOURCE = 4


class Operation(enum.IntEnum):
    """Kafka's AlterConfigOp.OpType."""

    SET = 0
    DELETE = 1
    APPEND = 2
    SUBTRACT = 3


@dataclass(frozen=True, slots=True)
class _Change:
    """One key of a request: AlterConfigs' are all SET (the rest of the resource's keys go)."""

    key: str
    operation: int
    value: str | None


class ConfigHandlers:
    def __init__(
        self,
        config: BrokerConfig,
        coordinator: Coordinator,
        metrics: BrokerMetrics,
        auth: RequestAuthorizer | None = None,
    ) -> None:
        self._config = config
        self._coordinator = coordinator
        self._metrics = metrics
        self._auth = auth or RequestAuthorizer()
        self._static_keys = frozenset(BrokerConfig().settings())
        self.by_type: dict[type, Handler] = {
            m.AlterConfigsRequest: self.alter_configs,
            m.IncrementalAlterConfigsRequest: self.incremental_alter_configs,
        }

    async def alter_configs(
        self, header: RequestHeader, req: m.AlterConfigsRequest
    ) -> m.AlterConfigsResponse:
        resources = [
            (r.resource_type, r.resource_name, [_Change(c.name, Operation.SET, c.value) for c in r.configs])
            for r in req.resources
        ]
        responses = await self._alter_all(resources, req.validate_only, replace=True)
        self._count_errors("AlterConfigs", responses)
        return m.AlterConfigsResponse(responses=responses)

    async def incremental_alter_configs(
        self, header: RequestHeader, req: m.IncrementalAlterConfigsRequest
    ) -> m.IncrementalAlterConfigsResponse:
        resources = [
            (
                r.resource_type,
                r.resource_name,
                [_Change(c.name, c.config_operation, c.value) for c in r.configs],
            )
            for r in req.resources
        ]
        responses = await self._alter_all(resources, req.validate_only, replace=False)
        self._count_errors("IncrementalAlterConfigs", responses)
        return m.IncrementalAlterConfigsResponse(responses=responses)

    def _count_errors(self, api: str, responses: Iterable[m.AlterConfigsResourceResponse]) -> None:
        for response in responses:
            if response.error_code:
                self._metrics.errors.labels(api, str(response.error_code)).inc()

    async def _alter_all(
        self, resources: Sequence[tuple[int, str, list[_Change]]], validate_only: bool, *, replace: bool
    ) -> list[m.AlterConfigsResourceResponse]:
        listed = Counter((kind, name) for kind, name, _ in resources)
        out = []
        for kind, name, changes in resources:
            try:
                if listed[(kind, name)] > 1:  # as Kafka: every copy of it is refused
                    raise RequestRefusedError(
                        f"resource {name!r} (type {kind}) is listed more than once",
                        code=ErrorCode.INVALID_REQUEST,
                    )
                await self._alter(kind, name, changes, validate_only, replace=replace)
            except LogqError as exc:
                out.append(_response(kind, name, exc.code, str(exc)))
                continue
            out.append(_response(kind, name, ErrorCode.NONE, None))
        return out

    async def _alter(
        self, kind: int, name: str, changes: list[_Change], validate_only: bool, *, replace: bool
    ) -> None:
        self._check_allowed(kind, name)
        repeated = sorted(k for k, n in Counter(c.key for c in changes).items() if n > 1)
        if repeated:
            raise RequestRefusedError(
                f"setting {repeated[0]!r} is listed more than once", code=ErrorCode.INVALID_REQUEST
            )
        if kind == TOPIC_RESOURCE:
            validate_queue_name(name)
            meta = self._coordinator.queues().get(name)
            if meta is None:
                raise UnknownQueueError(f"queue {name!r} does not exist")
            wanted = validate_queue_settings(self._changed({} if replace else meta.settings, changes))
            if not validate_only:
                await self._coordinator.alter_queue_settings(name, wanted)
                log.info("queue %s: settings now %s", name, wanted or "the defaults")
        elif kind == BROKER_RESOURCE:
            broker_id = self._broker_id(name)
            dynamic = self._coordinator.broker_settings()
            current = dynamic.cluster_default if broker_id is None else dynamic.of_broker(broker_id)
            changed = self._changed({} if replace else current, changes)
            wanted = validate_broker_settings(changed, self._static_keys)
            if not validate_only:
                await self._coordinator.alter_broker_settings(broker_id, wanted)
                which = "cluster-wide" if broker_id is None else f"of broker {broker_id}"
                log.info("dynamic broker settings %s now %s", which, wanted or "none")
        else:
            raise RequestRefusedError(
                f"resource type {kind} cannot be altered (2 = topic, 4 = broker)",
                code=ErrorCode.INVALID_REQUEST,
            )

    def _check_allowed(self, kind: int, name: str) -> None:
        """ALTER_CONFIGS on the queue, or on the cluster for a broker (Kafka's rule)."""
        auth, op = self._auth, AclOperation.ALTER_CONFIGS
        if kind == TOPIC_RESOURCE and not auth.allows(op, AclResourceType.TOPIC, name):
            raise RequestRefusedError(
                auth.refusal(op, AclResourceType.TOPIC, name), code=ErrorCode.TOPIC_AUTHORIZATION_FAILED
            )
        if kind == BROKER_RESOURCE and not auth.allows_cluster(op):
            raise RequestRefusedError(
                auth.refusal(op, AclResourceType.CLUSTER, CLUSTER_NAME),
                code=ErrorCode.CLUSTER_AUTHORIZATION_FAILED,
            )

    def _broker_id(self, name: str) -> int | None:
        """ "" is the cluster-wide level; a broker's own level is altered through that broker, as in
        Kafka (its AdminClient sends the request there)."""
        if name == "":
            return None
        me = self._coordinator.broker_id
        if name != str(me):
            raise RequestRefusedError(
                f'unexpected broker id {name!r}: this is broker {me} (send it to that broker, or use "" '
                "for the cluster-wide settings)",
                code=ErrorCode.INVALID_REQUEST,
            )
        return me

    def _changed(self, current: Mapping[str, str], changes: list[_Change]) -> dict[str, str | None]:
        """``current`` with the changes applied (values checked afterwards, by the caller)."""
        out: dict[str, str | None] = dict(current)
        for change in changes:
            key, op = change.key, change.operation
            if op != Operation.DELETE and change.value is None:  # Kafka's answer to a null value
                raise RequestRefusedError(
                    f"setting {key!r}: a null value is not supported", code=ErrorCode.INVALID_REQUEST
                )
            if op == Operation.SET:
                out[key] = change.value
            elif op == Operation.DELETE:
                out.pop(key, None)
            elif op in (Operation.APPEND, Operation.SUBTRACT):
                if key not in LIST_SETTINGS:
                    raise InvalidConfigError(
                        f"setting {key!r} is not a list: APPEND and SUBTRACT apply only to "
                        f"{', '.join(sorted(LIST_SETTINGS))}"
                    )
                items = _items(out.get(key) or self._default_of(key))
                given = _items(change.value or "")
                if op == Operation.APPEND:
                    items += [g for g in given if g not in items]
                else:
                    items = [i for i in items if i not in given]
                out[key] = ",".join(items)
            else:
                raise RequestRefusedError(
                    f"unknown operation {op} on {key!r} (0 SET, 1 DELETE, 2 APPEND, 3 SUBTRACT)",
                    code=ErrorCode.INVALID_REQUEST,
                )
        return out

    def _default_of(self, key: str) -> str:
        """What a list setting is where nothing more specific sets it (APPEND starts from it)."""
        defaults = broker_log_defaults(
            self._config.log, self._coordinator.broker_settings(), self._coordinator.broker_id
        )
        return str(settings_of(defaults).get(key, ""))


def _items(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _response(kind: int, name: str, code: int, message: str | None) -> m.AlterConfigsResourceResponse:
    return m.AlterConfigsResourceResponse(
        error_code=code, error_message=message, resource_type=kind, resource_name=name
    )
