"""Broker settings: a TOML file (``configs/standalone.toml``) with command-line overrides on top.

The ``[broker]`` section holds broker-wide settings, ``[log]`` the storage defaults of every queue
(see ``logq.config.LogConfig``). Unknown keys are refused by name, so a typo never silently falls back
to a default.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from logq.config import LogConfig, settings_of
from logq.security.acl import principal_problem


@dataclass(frozen=True, slots=True)
class HostPort:
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> HostPort:
        host, sep, port = text.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError(f"expected HOST:PORT, got {text!r}")
        return cls(host.strip("[]"), int(port))

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class BrokerConfig:
    broker_id: int = 0
    listen: HostPort = field(default_factory=lambda: HostPort("127.0.0.1", 9092))
    advertised_listener: HostPort | None = None  # what clients are told to connect to (default: listen)
    metrics_listen: HostPort | None = None  # Prometheus endpoint; off when None
    data_dir: Path = Path("./data")
    auto_create_queues: bool = (
        False  # create unknown queues on Metadata/Produce, as Kafka's auto.create.topics
    )
    delete_queue_enable: bool = False  # allow DeleteTopics (an admin's act until authentication exists)
    num_partitions: int = 1  # partitions of auto-created queues and of CreateTopics with -1
    socket_request_max_bytes: int = 100 * 1024 * 1024  # larger frames close the connection
    connections_max_idle_ms: int = 600_000  # close connections idle this long
    fetch_max_bytes: int = 57_671_680  # the most record bytes one Fetch response carries (Kafka's 55 MiB)
    offsets_topic_num_partitions: int = 50  # partitions of __consumer_offsets (fixed once created)
    offsets_retention_ms: int = 7 * 24 * 3600 * 1000  # keep a group's offsets this long after it emptied
    group_initial_rebalance_delay_ms: int = 3000  # a group that was empty waits this long for more members
    group_min_session_timeout_ms: int = 6000
    group_max_session_timeout_ms: int = 1_800_000
    group_stalled_owner_ms: int = 60_000  # an owner with lag, no fetch and no commit this long is stalled
    # Cluster mode: ZooKeeper's HOST:PORT[,HOST:PORT...][/chroot]; None runs a standalone broker.
    zookeeper_connect: str | None = None
    zookeeper_session_timeout_ms: int = 6000  # how long a crashed broker keeps its registration
    default_replication_factor: int = 1  # CreateTopics with -1 and auto-created queues (cluster mode)
    offsets_topic_replication_factor: int = 3  # __consumer_offsets (at most the live brokers at creation)
    replica_lag_time_max_ms: int = 30_000  # an ISR follower not caught up this long leaves the ISR
    replica_fetch_wait_max_ms: int = 500  # a follower's fetch waits this long on the leader for data
    replica_fetch_max_bytes: int = 1 << 20  # a follower fetches at most this much per partition and round
    controlled_shutdown_timeout_ms: int = 10_000  # SIGTERM: how long to wait for leaderships to move away
    auto_leader_rebalance_enable: bool = True  # the controller moves leaderships back to preferred replicas
    leader_imbalance_check_interval_ms: int = 300_000  # ... this often
    # Authorization (docs/security.md). Off: every client may do everything, as before.
    authorizer_enable: bool = False  # decide every request by the ACLs (Kafka's authorizer.class.name)
    super_users: str = ""  # "User:admin;User:ops": principals that bypass the ACLs
    allow_everyone_if_no_acl_found: bool = False  # a resource without any ACL: allowed to all, or to none
    log: LogConfig = field(default_factory=LogConfig)

    @property
    def cluster_mode(self) -> bool:
        return self.zookeeper_connect is not None

    @property
    def advertised(self) -> HostPort:
        return self.advertised_listener or self.listen

    @property
    def super_user_set(self) -> frozenset[str]:
        return frozenset(u.strip() for u in self.super_users.split(";") if u.strip())

    def settings(self) -> dict[str, str | None]:
        """Every setting by its configuration-file key, as a string (None when unset): the ``[broker]``
        keys, then the ``[log]`` keys."""
        out: dict[str, str | None] = {}
        for f in dataclasses.fields(self):
            if f.name != "log":
                value = getattr(self, f.name)
                out[f.name.replace("_", ".")] = None if value is None else _setting_text(value)
        out.update((key, _setting_text(value)) for key, value in settings_of(self.log).items())
        return out

    @classmethod
    def load(cls, path: Path | None = None, overrides: Mapping[str, Any] | None = None) -> BrokerConfig:
        """Read ``path`` (if given), then apply ``overrides`` (``[broker]`` keys, e.g. from flags)."""
        broker: dict[str, Any] = {}
        log: dict[str, Any] = {}
        if path is not None:
            data = tomllib.loads(path.read_text())
            unknown = set(data) - {"broker", "log"}
            if unknown:
                raise ValueError(f"{path}: unknown section(s) {', '.join(sorted(unknown))}")
            broker = dict(data.get("broker", {}))
            log = dict(data.get("log", {}))
        broker.update({k: v for k, v in (overrides or {}).items() if v is not None})
        return cls._from_keys(broker, LogConfig.from_mapping(log))

    @classmethod
    def _from_keys(cls, keys: Mapping[str, Any], log: LogConfig) -> BrokerConfig:
        kwargs: dict[str, Any] = {"log": log}
        for key, value in keys.items():
            name = key.replace(".", "_").replace("-", "_")
            if name not in _FIELDS or name == "log":
                raise ValueError(f"unknown broker setting {key!r}")
            kwargs[name] = _convert(key, _FIELDS[name], value)
        config = cls(**kwargs)
        for user in sorted(config.super_user_set):
            problem = principal_problem(user)
            if problem is not None:
                raise ValueError(f"broker setting 'super.users': {problem}")
        return config


_FIELDS = {f.name: f.type for f in dataclasses.fields(BrokerConfig)}


def _convert(key: str, type_name: Any, value: Any) -> Any:
    kind = str(type_name)
    if "HostPort" in kind:
        return value if isinstance(value, HostPort) else HostPort.parse(str(value))
    if "Path" in kind:
        return Path(value)
    if kind == "str":
        if not isinstance(value, str):
            raise ValueError(f"broker setting {key!r} must be a string, not {value!r}")
        return value
    if kind == "str | None":
        if not isinstance(value, str) or not value:
            raise ValueError(f"broker setting {key!r} must be a non-empty string, not {value!r}")
        return value
    if kind == "bool":
        if isinstance(value, bool):
            return value
        raise ValueError(f"broker setting {key!r} must be true or false, not {value!r}")
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"broker setting {key!r} must be an integer, not {value!r}")
        return value
    raise ValueError(f"broker setting {key!r} has an unsupported type")


def _setting_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"  # as written in the configuration file
    return str(value)
