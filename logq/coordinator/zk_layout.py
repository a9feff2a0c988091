"""The ZooKeeper layout of a logq cluster: znode paths, the JSON each one holds, and the records the
coordinator and the store (``zk_store``, the only kazoo user) exchange. Pure: no kazoo, no I/O.

The paths and most formats are Kafka's (pre-KRaft), so anyone who knows Kafka's tree can read logq's:

    /cluster/id                                {"version":"1","id":"<22 chars>"}
    /controller                    ephemeral   {"version":1,"brokerid":1,"timestamp":"<ms>"}
    /controller_epoch                          "7"
    /brokers/ids/<id>              ephemeral   {"version":1,"host":..,"port":..,"rack":..,"timestamp":..,
                                                "endpoints":["CLIENT://h:9093",..],
                                                "listener_security_protocol_map":{"CLIENT":"SASL_SSL",..}}
    /brokers/topics/<queue>                    {"version":1,"partitions":{"0":[1,2]},"settings":{..},
                                                "topic_id":"<32 hex digits>"}
    /brokers/topics/<queue>/partitions/<p>/state
                                  {"version":1,"leader":1,"leader_epoch":0,"isr":[1,2],"controller_epoch":7}
    /admin/delete_topics/<queue>               (empty: a deletion request the controller carries out)
    /admin/controlled_shutdown/<id>  ephemeral (empty: broker <id> is shutting down; move its leaderships)
    /latest_producer_id_block                  {"version":1,"broker":1,"block_start":"0","block_end":"999"}
    /kafka-acl/<Type>/<name>                   {"version":1,"acls":[{"principal":"User:alice",
                                                "permissionType":"Allow","operation":"Read","host":"*"}]}
    /kafka-acl-extended/prefixed/<Type>/<name> the same, for PREFIXED patterns
    /kafka-acl-changes/acl_changes_<seq>       "Topic:orders": a literal resource's ACLs changed
    /kafka-acl-extended-changes/acl_changes_<seq>
                          {"version":1,"resourceType":"Topic","name":"orders-","patternType":"PREFIXED"}
    /config/users/<url-encoded user>           {"version":1,"config":{"SCRAM-SHA-256":"salt=..,stored_key=..,
                                                server_key=..,iterations=4096"}}
    /logq/sasl_secret                          (random bytes: unknown users' fake SCRAM salts derive from it)
    /config/brokers/<default>                  {"version":1,"config":{"retention.ms":"3600000",..}}
    /config/brokers/<id>                       the same, for one broker (dynamic broker settings)
    /config/users/<user>                       client quotas of a user ("producer_byte_rate":"1024",..)
                                                next to its SCRAM credentials; <default>: every user
    /config/users/<user>/clients/<client-id>   client quotas of a user's client id (<default> for either)
    /config/clients/<client-id>                client quotas of a client id (<default>: every one)

Unlike Kafka, a queue's settings live in its assignment znode (Kafka: /config/topics/<queue>), so a
queue and its settings appear in one write. The ACL znodes and their change notifications are exactly
Kafka's (``<Type>`` is Topic, Group, Cluster or TransactionalId). Users and dynamic broker settings are
Kafka's entity znodes, but brokers watch them directly (a child watch on /config/users and
/config/brokers, a data watch on each entity) instead of /config/changes. A queue's settings changed
after creation are rewritten in its assignment znode, conditional on the version read.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.parse
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from logq.coordinator.assignment import LeaderAndIsr
from logq.coordinator.credentials import decode_user, encode_user
from logq.coordinator.interface import BrokerInfo, Endpoint
from logq.errors import CoordinationError
from logq.quotas import QUOTA_KEYS, QuotaEntity
from logq.security.acl import (
    BINDABLE_RESOURCE_TYPES,
    AccessControlEntry,
    AclBinding,
    AclOperation,
    AclPermissionType,
    PatternType,
    ResourcePattern,
    ResourceType,
    display_name,
    parse_name,
)
from logq.security.scram import ScramCredential

CLUSTER_ID = "/cluster/id"
CONTROLLER = "/controller"
CONTROLLER_EPOCH = "/controller_epoch"
BROKER_IDS = "/brokers/ids"
TOPICS = "/brokers/topics"
DELETE_TOPICS = "/admin/delete_topics"
CONTROLLED_SHUTDOWN = "/admin/controlled_shutdown"
PRODUCER_ID_BLOCK = "/latest_producer_id_block"
LITERAL_ACLS = "/kafka-acl"
PREFIXED_ACLS = "/kafka-acl-extended/prefixed"
LITERAL_ACL_CHANGES = "/kafka-acl-changes"
PREFIXED_ACL_CHANGES = "/kafka-acl-extended-changes"
ACL_CHANGE_NODE = "acl_changes_"  # + the sequence number ZooKeeper appends
ACL_CHANGE_ROOTS = (LITERAL_ACL_CHANGES, PREFIXED_ACL_CHANGES)
ACL_CHANGE_EXPIRY_MS = 15 * 60 * 1000  # notifications older than this are purged (Kafka's default)

USERS = "/config/users"
CLIENTS = "/config/clients"  # client-id quota entities
BROKER_CONFIGS = "/config/brokers"
DEFAULT_BROKER_ENTITY = "<default>"  # the cluster-wide dynamic broker settings
SASL_SECRET = "/logq/sasl_secret"

# With ZooKeeper ACLs on (``zookeeper.set.acl``), every znode logq creates is writable by logq's digest
# user only, and world-readable (as in Kafka) except under these roots: the SCRAM credentials (and the
# user names their znode names give away), the cluster's SASL secret, and the ACLs with their change
# notifications (they name principals and hosts). Nothing of a client's traffic depends on them.
SECRET_ROOTS = (
    USERS,
    SASL_SECRET,
    LITERAL_ACLS,
    "/kafka-acl-extended",
    *ACL_CHANGE_ROOTS,
)

# Created by whichever broker starts first; never deleted.
PERSISTENT_PATHS = (
    BROKER_IDS,
    TOPICS,
    DELETE_TOPICS,
    CONTROLLED_SHUTDOWN,
    "/cluster",
    LITERAL_ACLS,
    PREFIXED_ACLS,
    *ACL_CHANGE_ROOTS,
    USERS,
    BROKER_CONFIGS,
    CLIENTS,
    "/logq",
)

# Where logq's znodes start, when there is no chroot (ZooKeeper ACLs are applied below these only).
TOP_LEVEL_PATHS = tuple(
    sorted(
        {"/" + p.split("/")[1] for p in (*PERSISTENT_PATHS, CONTROLLER, CONTROLLER_EPOCH, PRODUCER_ID_BLOCK)}
    )
)


class BrokerIdInUseError(CoordinationError):
    """Another live ZooKeeper session holds this broker id's registration."""


class ControllerFencedError(CoordinationError):
    """A controller write failed its /controller_epoch check: another broker became controller."""


class ZooKeeperUnavailableError(CoordinationError):
    """ZooKeeper could not be reached (or the session was lost) while doing a cluster-metadata write."""


class ZooKeeperAccessError(CoordinationError):
    """ZooKeeper refused an operation (NOAUTH): the znodes' ACLs do not grant it to our credentials."""


class StaleVersionError(CoordinationError):
    """A conditional write met a newer znode version than the caller read: re-read and decide again."""

    def __init__(self, message: str, path: str) -> None:
        super().__init__(message)
        self.path = path


def broker_path(broker_id: int) -> str:
    return f"{BROKER_IDS}/{broker_id}"


def shutdown_path(broker_id: int) -> str:
    return f"{CONTROLLED_SHUTDOWN}/{broker_id}"


def topic_path(name: str) -> str:
    return f"{TOPICS}/{name}"


def partitions_path(name: str) -> str:
    return f"{TOPICS}/{name}/partitions"


def partition_path(name: str, partition: int) -> str:
    return f"{TOPICS}/{name}/partitions/{partition}"


def state_path(name: str, partition: int) -> str:
    return f"{TOPICS}/{name}/partitions/{partition}/state"


def delete_request_path(name: str) -> str:
    return f"{DELETE_TOPICS}/{name}"


def user_path(user: str) -> str:
    """Kafka's sanitized entity name: the user name URL-encoded."""
    return f"{USERS}/{urllib.parse.quote(user, safe='')}"


def user_of(child: str) -> str:
    return urllib.parse.unquote(child)


def broker_config_path(entity: str) -> str:
    """``entity``: DEFAULT_BROKER_ENTITY or a broker id."""
    return f"{BROKER_CONFIGS}/{entity}"


def is_secret(path: str) -> bool:
    """Whether the znode at ``path`` (relative to the chroot) is readable by logq's digest user only."""
    return any(path == root or path.startswith(root + "/") for root in SECRET_ROOTS)


def ancestors(path: str) -> list[str]:
    """``/a/b/c`` -> ``["/a", "/a/b", "/a/b/c"]``: each znode that must exist for ``path`` to."""
    parts = [p for p in path.split("/") if p]
    return ["/" + "/".join(parts[: i + 1]) for i in range(len(parts))]


def split_connect(connect: str) -> tuple[str, str]:
    """``HOST:PORT[,HOST:PORT...][/chroot]`` -> (hosts, chroot); chroot is "" or "/a/b" (no trailing /)."""
    hosts, slash, chroot = connect.partition("/")
    if not hosts:
        raise ValueError(f"ZooKeeper connect string {connect!r} names no server")
    chroot = ("/" + chroot).rstrip("/") if slash else ""
    if "//" in chroot:
        raise ValueError(f"ZooKeeper chroot {chroot!r} has an empty path element")
    return hosts, chroot


# --- what a watch event is about -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Watched:
    """What changed, from a watch event's path. kind: brokers, controller, topics, topic, state,
    deletes, shutdowns, acl_changes, users, user, broker_configs, broker_config, quotas, other."""

    kind: str
    queue: str = ""
    partition: int = -1
    user: str = ""
    entity: str = ""  # a /config/brokers child


def classify(path: str) -> Watched:
    if path in ACL_CHANGE_ROOTS:
        return Watched("acl_changes")
    if path in (BROKER_IDS, CONTROLLER, CONTROLLER_EPOCH, TOPICS, DELETE_TOPICS, CONTROLLED_SHUTDOWN):
        kind = {
            BROKER_IDS: "brokers",
            CONTROLLER: "controller",
            CONTROLLER_EPOCH: "controller",
            TOPICS: "topics",
            DELETE_TOPICS: "deletes",
            CONTROLLED_SHUTDOWN: "shutdowns",
        }[path]
        return Watched(kind)
    if (
        path == CLIENTS
        or path.startswith(CLIENTS + "/")
        or (path.startswith(USERS + "/") and "/clients" in path[len(USERS) + 1 :])
    ):
        return Watched("quotas")
    if path == USERS:
        return Watched("users")
    if path.startswith(USERS + "/"):
        return Watched("user", user=user_of(path[len(USERS) + 1 :]))
    if path == BROKER_CONFIGS:
        return Watched("broker_configs")
    if path.startswith(BROKER_CONFIGS + "/"):
        return Watched("broker_config", entity=path[len(BROKER_CONFIGS) + 1 :])
    if path.startswith(BROKER_IDS + "/"):
        return Watched("brokers")
    if path.startswith(TOPICS + "/"):
        parts = path[len(TOPICS) + 1 :].split("/")
        if len(parts) == 1:
            return Watched("topic", parts[0])
        if len(parts) == 4 and parts[1] == "partitions" and parts[3] == "state" and parts[2].isdigit():
            return Watched("state", parts[0], int(parts[2]))
        return Watched("topic", parts[0])
    return Watched("other")


# --- records and codecs --------------------------------------------------------------------------


def _now_ms() -> str:
    return str(int(time.time() * 1000))


def _loads(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except ValueError as exc:
        raise CoordinationError(f"{what}: not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise CoordinationError(f"{what}: expected a JSON object")
    return value


def _dumps(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()


@dataclass(frozen=True, slots=True)
class BrokerRecord:
    """A live broker's registration; ``epoch`` is the znode's czxid (KIP-380 broker epoch)."""

    info: BrokerInfo
    epoch: int
    owner: int  # the session (ephemeralOwner) holding it


def encode_broker(info: BrokerInfo) -> bytes:
    record: dict[str, Any] = {
        "version": 1,
        "host": info.host,
        "port": info.port,
        "rack": info.rack,
        "timestamp": _now_ms(),
    }
    if info.endpoints:  # Kafka's form: every listener's advertised address, and each one's protocol
        record["endpoints"] = [f"{e.listener}://{e.host}:{e.port}" for e in info.endpoints]
        record["listener_security_protocol_map"] = {e.listener: e.protocol for e in info.endpoints}
    return _dumps(record)


def decode_broker(broker_id: int, data: bytes) -> BrokerInfo:
    d = _loads(data, f"{broker_path(broker_id)}")
    rack = d.get("rack")
    protocols = d.get("listener_security_protocol_map") or {}
    endpoints = []
    for text in d.get("endpoints") or []:
        name, _, address = str(text).partition("://")
        host, _, port = address.rpartition(":")
        endpoints.append(Endpoint(name, host.strip("[]"), int(port), str(protocols.get(name, name))))
    return BrokerInfo(
        broker_id, str(d["host"]), int(d["port"]), None if rack is None else str(rack), tuple(endpoints)
    )


def encode_controller(broker_id: int) -> bytes:
    return _dumps({"version": 1, "brokerid": broker_id, "timestamp": _now_ms()})


def decode_controller(data: bytes) -> int:
    return int(_loads(data, CONTROLLER)["brokerid"])


def encode_epoch(epoch: int) -> bytes:
    return str(epoch).encode()


def decode_epoch(data: bytes) -> int:
    return int(data.decode().strip() or "0")


@dataclass(frozen=True, slots=True)
class TopicRecord:
    """A queue's assignment znode: the replicas of each partition (first = preferred leader)."""

    name: str
    replicas: tuple[tuple[int, ...], ...]
    settings: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    queue_id: str = ""  # "topic_id" in the znode, as Kafka names it
    # When the znode was last written (0: unknown). A partition whose state is older than that write
    # existed before the queue last grew: it is served while the new partitions' states are created.
    mzxid: int = 0


def encode_topic(replicas: Sequence[Sequence[int]], settings: Mapping[str, str], queue_id: str) -> bytes:
    return _dumps(
        {
            "version": 1,
            "partitions": {str(p): list(r) for p, r in enumerate(replicas)},
            "settings": dict(settings),
            "topic_id": queue_id,
        }
    )


def decode_topic(name: str, data: bytes, mzxid: int = 0) -> TopicRecord:
    d = _loads(data, topic_path(name))
    parts = {int(p): tuple(int(b) for b in r) for p, r in d.get("partitions", {}).items()}
    if sorted(parts) != list(range(len(parts))):
        raise CoordinationError(f"{topic_path(name)}: partitions are not numbered 0..n-1")
    settings = {str(k): str(v) for k, v in d.get("settings", {}).items()}
    replicas = tuple(parts[p] for p in range(len(parts)))
    return TopicRecord(name, replicas, MappingProxyType(settings), str(d.get("topic_id", "")), mzxid)


def with_added_partitions(name: str, data: bytes, added: Sequence[Sequence[int]]) -> bytes:
    """The assignment znode ``data`` with ``added`` partitions after its last one; every other key is
    kept as read (settings, and anything a newer broker wrote)."""
    d = _loads(data, topic_path(name))
    partitions = dict(d.get("partitions", {}))
    for replicas in added:
        partitions[str(len(partitions))] = list(replicas)
    return _dumps({**d, "partitions": partitions})


@dataclass(frozen=True, slots=True)
class StateRecord:
    """A partition's state znode and its version (every change is conditional on it)."""

    leader_and_isr: LeaderAndIsr
    controller_epoch: int
    version: int
    mzxid: int  # when it was last written: a broker registered later (higher czxid) restarted since
    czxid: int = 0  # when it was created (0: unknown); see TopicRecord.mzxid


def encode_state(state: LeaderAndIsr, controller_epoch: int) -> bytes:
    return _dumps(
        {
            "version": 1,
            "leader": state.leader,
            "leader_epoch": state.leader_epoch,
            "isr": list(state.isr),
            "controller_epoch": controller_epoch,
        }
    )


def decode_state(path: str, data: bytes, version: int, mzxid: int, czxid: int = 0) -> StateRecord:
    d = _loads(data, path)
    state = LeaderAndIsr(int(d["leader"]), int(d["leader_epoch"]), tuple(int(b) for b in d["isr"]))
    return StateRecord(state, int(d.get("controller_epoch", 0)), version, mzxid, czxid)


def encode_user_config(mechanisms: Mapping[str, ScramCredential]) -> bytes:
    return _dumps({"version": 1, "config": encode_user(mechanisms)})


def decode_user_config(user: str, data: bytes) -> dict[str, ScramCredential]:
    if not data:
        return {}  # made empty as the parent of the user's client-id quotas
    d = _loads(data, user_path(user))
    try:
        return decode_user(d.get("config") or {})
    except ValueError as exc:
        raise CoordinationError(f"{user_path(user)}: {exc}") from None


def encode_entity_config(settings: Mapping[str, str]) -> bytes:
    """Kafka's entity config znode (/config/brokers/<entity>)."""
    return _dumps({"version": 1, "config": dict(settings)})


def decode_entity_config(path: str, data: bytes) -> dict[str, str]:
    if not data:
        return {}  # an entity znode made as the parent of others (/config/users/<user>/clients/..)
    config = _loads(data, path).get("config") or {}
    return {str(k): str(v) for k, v in config.items()}


def quota_config_path(entity: QuotaEntity) -> str:
    return f"/config/{entity.path()}"


def quota_values(config: Mapping[str, str]) -> dict[str, float]:
    """The quota keys of an entity znode's config (a user's also holds its SCRAM credentials)."""
    out = {}
    for key, text in config.items():
        if key in QUOTA_KEYS:
            try:
                out[key] = float(text)
            except ValueError:
                continue  # not ours to repair; Kafka would not have written it
    return out


def quota_text(value: float) -> str:
    """As Kafka writes them: byte rates as longs, the others as doubles."""
    return str(int(value)) if value == int(value) else repr(value)


def with_topic_settings(name: str, data: bytes, settings: Mapping[str, str]) -> bytes:
    """An assignment znode's content with its settings replaced, every other field kept."""
    record = _loads(data, topic_path(name))
    record["settings"] = dict(settings)
    return _dumps(record)


def new_cluster_id() -> str:
    """Kafka's format: a random UUID in URL-safe base64 without padding (22 characters)."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def encode_cluster_id(cluster_id: str) -> bytes:
    return _dumps({"version": "1", "id": cluster_id})


def decode_cluster_id(data: bytes) -> str:
    return str(_loads(data, CLUSTER_ID)["id"])


def encode_producer_block(broker_id: int, start: int, end: int) -> bytes:
    return _dumps({"version": 1, "broker": broker_id, "block_start": str(start), "block_end": str(end)})


def decode_producer_block_end(data: bytes) -> int:
    """The last id of the latest block handed out (-1 for an empty znode)."""
    if not data.strip():
        return -1
    return int(_loads(data, PRODUCER_ID_BLOCK)["block_end"])


# --- ACLs (Kafka's ZkAclStore and ZkAclChangeStore formats) ----------------------------------------


def acl_root(pattern_type: PatternType) -> str:
    return PREFIXED_ACLS if pattern_type == PatternType.PREFIXED else LITERAL_ACLS


def acl_change_root(pattern_type: PatternType) -> str:
    return PREFIXED_ACL_CHANGES if pattern_type == PatternType.PREFIXED else LITERAL_ACL_CHANGES


def acl_type_path(pattern_type: PatternType, resource_type: ResourceType) -> str:
    return f"{acl_root(pattern_type)}/{display_name(resource_type)}"


def acl_path(pattern: ResourcePattern) -> str:
    return f"{acl_type_path(pattern.pattern_type, pattern.resource_type)}/{pattern.name}"


def acl_resource_type(type_name: str) -> ResourceType | None:
    """The resource type of a ``<Type>`` znode name (``Topic``), None for one logq does not bind."""
    try:
        resource_type = parse_name(ResourceType, type_name)
    except ValueError:
        return None
    return resource_type if resource_type in BINDABLE_RESOURCE_TYPES else None


def encode_acls(entries: Iterable[AccessControlEntry]) -> bytes:
    acls = [
        {
            "principal": e.principal,
            "permissionType": display_name(e.permission),
            "operation": display_name(e.operation),
            "host": e.host,
        }
        for e in sorted(entries)
    ]
    return _dumps({"version": 1, "acls": acls})


def decode_acls(pattern: ResourcePattern, data: bytes) -> frozenset[AclBinding]:
    """The bindings of one ACL znode; an entry whose names logq does not know is left out."""
    bindings = set()
    for item in _loads(data, acl_path(pattern)).get("acls", []):
        try:
            entry = AccessControlEntry(
                str(item["principal"]),
                str(item["host"]),
                parse_name(AclOperation, str(item["operation"])),
                parse_name(AclPermissionType, str(item["permissionType"])),
            )
        except (KeyError, TypeError, ValueError):
            continue
        bindings.add(AclBinding(pattern, entry))
    return frozenset(bindings)


def encode_acl_change(pattern: ResourcePattern) -> bytes:
    if pattern.pattern_type == PatternType.PREFIXED:
        return _dumps(
            {
                "version": 1,
                "resourceType": display_name(pattern.resource_type),
                "name": pattern.name,
                "patternType": "PREFIXED",
            }
        )
    return f"{display_name(pattern.resource_type)}:{pattern.name}".encode()


def decode_acl_change(root: str, data: bytes) -> ResourcePattern | None:
    """The resource a change notification names, None if it names none logq knows."""
    try:
        if root == PREFIXED_ACL_CHANGES:
            d = _loads(data, root)
            type_name, name = str(d["resourceType"]), str(d["name"])
            pattern_type = parse_name(PatternType, str(d.get("patternType", "PREFIXED")))
        else:
            type_name, _, name = data.decode().partition(":")
            pattern_type = PatternType.LITERAL
    except (CoordinationError, KeyError, UnicodeDecodeError, ValueError):
        return None
    resource_type = acl_resource_type(type_name)
    if resource_type is None or not name:
        return None
    return ResourcePattern(resource_type, name, pattern_type)


def acl_change_sequence(child: str) -> int:
    """The sequence number of a change notification's name (``acl_changes_0000000007``), or -1."""
    digits = child.removeprefix(ACL_CHANGE_NODE)
    return int(digits) if child.startswith(ACL_CHANGE_NODE) and digits.isdigit() else -1


# --- what the coordinator and the store exchange --------------------------------------------------


@dataclass
class ControllerContext:
    """This broker's term as controller: valid while /controller_epoch still has ``epoch_version``."""

    epoch: int
    epoch_version: int
    session_id: int

    def holds(self, view: ControllerView) -> bool:
        """Whether ``view`` (a read of /controller) still shows this term."""
        return (view.owner, view.epoch) == (self.session_id, self.epoch)


@dataclass(frozen=True, slots=True)
class ControllerView:
    broker_id: int  # -1: none
    owner: int  # the session holding /controller (0 if none)
    epoch: int  # /controller_epoch's value (0 if absent)


@dataclass
class ReadRequest:
    everything: bool = False
    brokers: bool = False
    controller: bool = False
    topic_names: bool = False
    deletes: bool = False
    shutdowns: bool = False
    topics: set[str] = field(default_factory=set)
    states: set[tuple[str, int]] = field(default_factory=set)
    acl_changes: bool = False  # new change notifications: re-read the resources they name
    acl_patterns: set[ResourcePattern] = field(default_factory=set)
    user_names: bool = False  # the list of users
    users: set[str] = field(default_factory=set)
    broker_config_names: bool = False  # the list of /config/brokers entities
    broker_configs: set[str] = field(default_factory=set)
    quotas: bool = False  # every client quota entity (a change anywhere re-reads them all)

    def merge(self, other: ReadRequest) -> None:
        self.quotas |= other.quotas
        self.broker_config_names |= other.broker_config_names
        self.broker_configs |= other.broker_configs
        self.everything |= other.everything
        self.acl_changes |= other.acl_changes
        self.acl_patterns |= other.acl_patterns
        self.user_names |= other.user_names
        self.users |= other.users
        self.shutdowns |= other.shutdowns
        self.brokers |= other.brokers
        self.controller |= other.controller
        self.topic_names |= other.topic_names
        self.deletes |= other.deletes
        self.topics |= other.topics
        self.states |= other.states

    def __bool__(self) -> bool:
        return bool(
            self.everything
            or self.brokers
            or self.controller
            or self.topic_names
            or self.deletes
            or self.shutdowns
            or self.topics
            or self.states
            or self.acl_changes
            or self.acl_patterns
            or self.user_names
            or self.users
            or self.broker_config_names
            or self.broker_configs
            or self.quotas
        )


@dataclass
class ReadResult:
    """What was read (None / absent keys: not read). A topic or state mapped to None is gone."""

    everything: bool = False
    brokers: dict[int, BrokerRecord] | None = None
    controller: ControllerView | None = None
    topic_names: set[str] | None = None
    deletes: set[str] | None = None
    shutdowns: set[int] | None = None
    topics: dict[str, TopicRecord | None] = field(default_factory=dict)
    states: dict[tuple[str, int], StateRecord | None] = field(default_factory=dict)
    # ACLs: every resource's (``everything``), or the resources re-read (an empty set: none left).
    all_acls: dict[ResourcePattern, frozenset[AclBinding]] | None = None
    acls: dict[ResourcePattern, frozenset[AclBinding]] = field(default_factory=dict)
    acl_change_seen: dict[str, int] | None = None  # per change root, the newest notification read
    user_names: set[str] | None = None
    users: dict[str, dict[str, ScramCredential] | None] = field(default_factory=dict)  # None: gone
    broker_config_names: set[str] | None = None
    broker_configs: dict[str, dict[str, str] | None] = field(default_factory=dict)  # None: gone
    quotas: dict[QuotaEntity, dict[str, float]] | None = None  # every entity with a quota, when read


@dataclass(frozen=True, slots=True)
class Op:
    """One write of a controller transaction: ``create`` (persistent), ``set`` or ``delete``."""

    kind: str
    path: str
    data: bytes = b""
    version: int = -1
