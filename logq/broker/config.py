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

from logq.broker.connection_limits import ConnectionLimits
from logq.broker.listeners import HostPort, Listeners, parse_listeners
from logq.broker.log_format import LOG_FORMATS
from logq.config import LogConfig, settings_of
from logq.security.acl import principal_problem
from logq.security.principal import PrincipalMapper
from logq.security.sasl import parse_mechanisms
from logq.security.tls import CLIENT_AUTH

__all__ = ["BrokerConfig", "HostPort"]


@dataclass(frozen=True, slots=True)
class BrokerConfig:
    broker_id: int = 0
    # Where clients connect: Kafka's listeners, NAME://HOST:PORT[,...] (logq/broker/listeners.py).
    listeners: str = "PLAINTEXT://127.0.0.1:9092"
    # Shorthand for one PLAINTEXT listener (the --listen flag); replaces "listeners".
    listen: HostPort | None = None
    advertised_listener: HostPort | None = None  # the one listener's address for clients (default: bound)
    advertised_listeners: str | None = (
        None  # NAME://HOST:PORT[,...]: what Metadata tells each listener's clients
    )
    listener_security_protocol_map: str | None = (
        None  # NAME:PROTOCOL[,...]; default: each name is its protocol
    )
    inter_broker_listener_name: str | None = None  # the listener brokers use among themselves
    # How this broker logs in to the others on a SASL inter-broker listener (docs/security.md): the
    # password comes from a private file, or else $LOGQ_INTER_BROKER_PASSWORD, never from this file.
    sasl_mechanism_inter_broker_protocol: str = "SCRAM-SHA-256"
    inter_broker_sasl_username: str | None = None
    inter_broker_sasl_password_file: Path | None = None
    ssl_certificate_location: Path | None = None  # PEM certificate (chain) of the TLS listeners
    ssl_key_location: Path | None = None  # its PEM private key (mode 0600)
    ssl_ca_location: Path | None = None  # PEM CA(s) that sign client certificates
    ssl_client_auth: str = "none"  # none | requested | required
    ssl_principal_mapping_rules: str = "DEFAULT"  # client certificate subject -> user name
    sasl_enabled_mechanisms: str = "SCRAM-SHA-256,SCRAM-SHA-512"  # PLAIN too, if listed
    connection_failed_authentication_delay_ms: int = 100  # a failed login's answer waits at least this
    connection_failed_authentication_delay_max_ms: int = 3200  # ... doubling per failure up to this
    sasl_server_max_receive_size: int = 524_288  # the largest frame before authentication
    authentication_timeout_ms: int = 10_000  # TLS handshake and SASL login must end within this
    metrics_listen: HostPort | None = None  # Prometheus endpoint; off when None
    log_format: str = "text"  # how the broker logs on stderr: text lines, or json (one event a line)
    data_dir: Path = Path("./data")
    auto_create_queues: bool = (
        False  # create unknown queues on Metadata/Produce, as Kafka's auto.create.topics
    )
    delete_queue_enable: bool = False  # allow DeleteTopics (an admin's act until authentication exists)
    num_partitions: int = 1  # partitions of auto-created queues and of CreateTopics with -1
    socket_request_max_bytes: int = 100 * 1024 * 1024  # larger frames close the connection
    connections_max_idle_ms: int = 600_000  # close connections idle this long
    # Overload protection (docs/architecture.md, "Overload protection"). The connection limits default
    # to Kafka's (2147483647: none); the inter-broker listener of a cluster is never limited.
    max_connections: int = 2_147_483_647  # open connections, broker-wide
    max_connections_per_ip: int = 2_147_483_647  # open connections from one address
    max_connections_per_ip_overrides: str = ""  # "IP:COUNT,IP:COUNT": per-address exceptions
    max_connection_creation_rate: int = 2_147_483_647  # new connections per second, broker-wide
    # Bytes of requests read but not yet answered, broker-wide: past it the broker stops reading sockets
    # until answers free room. It delays, never refuses: one larger request is still let in alone.
    queued_max_request_bytes: int = 536_870_912
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
    # ZooKeeper ACLs on every znode this broker creates (Kafka's zookeeper.set.acl); the digest
    # credentials (user:password) come from a private file, or else $LOGQ_ZOOKEEPER_DIGEST.
    zookeeper_set_acl: bool = False
    zookeeper_digest_file: Path | None = None
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
        given = {k: v for k, v in (overrides or {}).items() if v is not None}
        if "listen" in given:  # the --listen flag: one PLAINTEXT listener instead of the file's
            broker.pop("listeners", None)
            broker.pop("advertised.listeners", None)
        elif "listen" in broker and "listeners" in broker:
            raise ValueError("give either 'listen' (one PLAINTEXT listener) or 'listeners', not both")
        broker.update(given)
        config = cls._from_keys(broker, LogConfig.from_mapping(log))
        config.check_security()
        return config

    @property
    def listener_set(self) -> Listeners:
        """The listeners, parsed (ValueError if they are inconsistent)."""
        return parse_listeners(
            self.listeners,
            listen=self.listen,
            advertised_listener=self.advertised_listener,
            advertised_listeners=self.advertised_listeners,
            protocol_map=self.listener_security_protocol_map,
            inter_broker_listener_name=self.inter_broker_listener_name,
        )

    @property
    def connection_limits(self) -> ConnectionLimits:
        """The connection limits, parsed (ValueError, one line, for a bad value)."""
        return ConnectionLimits.parse(
            self.max_connections,
            self.max_connections_per_ip,
            self.max_connections_per_ip_overrides,
            self.max_connection_creation_rate,
        )

    @property
    def sasl_mechanisms(self) -> tuple[str, ...]:
        return parse_mechanisms(self.sasl_enabled_mechanisms)

    def check_security(self) -> None:
        """ValueError (one line) for listener and security settings that cannot work together. Files
        are read (and their modes checked) when the broker starts."""
        listeners = self.listener_set
        self.sasl_mechanisms  # noqa: B018  (parsing is the check)
        PrincipalMapper(self.ssl_principal_mapping_rules)
        if self.ssl_client_auth not in CLIENT_AUTH:
            raise ValueError(
                f"ssl.client.auth must be one of {', '.join(CLIENT_AUTH)}, not {self.ssl_client_auth!r}"
            )
        if listeners.uses_tls and (self.ssl_certificate_location is None or self.ssl_key_location is None):
            raise ValueError("TLS listeners need ssl.certificate.location and ssl.key.location")
        if self.ssl_client_auth != "none" and self.ssl_ca_location is None:
            raise ValueError(
                f"ssl.client.auth = {self.ssl_client_auth} needs ssl.ca.location (the clients' CA)"
            )
        if self.cluster_mode:
            self._check_inter_broker(listeners)

    def _check_inter_broker(self, listeners: Listeners) -> None:
        """The inter-broker listener must let this broker prove who it is, as the other brokers ask."""
        inter = listeners.inter_broker
        if inter.protocol.sasl:
            mechanism = self.sasl_mechanism_inter_broker_protocol
            if mechanism not in self.sasl_mechanisms:
                raise ValueError(
                    f"sasl.mechanism.inter.broker.protocol {mechanism} is not in sasl.enabled.mechanisms "
                    f"({', '.join(self.sasl_mechanisms)})"
                )
            if self.inter_broker_sasl_username is None:
                raise ValueError(
                    f"inter-broker listener {inter.name} is {inter.protocol.value}: set "
                    "inter.broker.sasl.username (and its password, docs/security.md)"
                )
        elif inter.protocol.tls and self.ssl_client_auth == "none":
            raise ValueError(
                f"inter-broker listener {inter.name} is SSL: brokers prove who they are with their "
                "certificate there, so ssl.client.auth must be required (or requested)"
            )

    @classmethod
    def _from_keys(cls, keys: Mapping[str, Any], log: LogConfig) -> BrokerConfig:
        kwargs: dict[str, Any] = {"log": log}
        for key, value in keys.items():
            name = key.replace(".", "_").replace("-", "_")
            if name not in _FIELDS or name == "log":
                raise ValueError(f"unknown broker setting {key!r}")
            kwargs[name] = _convert(key, _FIELDS[name], value)
        config = cls(**kwargs)
        if config.log_format not in LOG_FORMATS:
            formats = ", ".join(LOG_FORMATS)
            raise ValueError(
                f"broker setting 'log.format' must be one of {formats}, not {config.log_format!r}"
            )
        config.connection_limits  # noqa: B018  (parsing is the check)
        if config.queued_max_request_bytes < 1:
            raise ValueError(
                f"queued.max.request.bytes must be at least 1, not {config.queued_max_request_bytes}"
            )
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
