"""How this broker connects to the other brokers of its cluster, and who they see it as.

Every broker-to-broker connection (the replica fetchers' Fetch and OffsetForLeaderEpoch; controlled
shutdown and metadata go through ZooKeeper, not over the wire) goes to the target's address on the
inter-broker listener, taken from the target's registration, which lists every endpoint, and proves
this broker's identity the way that listener asks, as Kafka's brokers do:

- SASL_PLAINTEXT, SASL_SSL: a login as ``inter.broker.sasl.username`` with
  ``sasl.mechanism.inter.broker.protocol``; the password from ``inter.broker.sasl.password.file`` (a
  private file) or else ``$LOGQ_INTER_BROKER_PASSWORD``. The principal is ``User:<username>``. On
  SASL_SSL with ``ssl.client.auth = required`` the broker certificate is shown too, as every client's.
- SSL: the broker's own certificate (``ssl.certificate.location``), whose subject the other brokers map
  to a principal with ``ssl.principal.mapping.rules``, as they would a client's.
- PLAINTEXT: nothing; the brokers are ``User:ANONYMOUS`` to each other.

TLS connections check the other broker's certificate against ``ssl.ca.location`` (the system's CAs
without it) and the host name it was reached at. With the authorizer on, the broker principal must be
a super user: a follower's Fetch needs CLUSTER_ACTION on the cluster, so a broker warns at start when
its own principal is not in ``super.users``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from logq.broker.config import BrokerConfig
from logq.client.security import SecuritySettings
from logq.errors import ConfigurationError
from logq.permissions import read_secret
from logq.security.acl import ANONYMOUS
from logq.security.certs import certificate_subject
from logq.security.principal import PrincipalMapper, user_principal

log = logging.getLogger(__name__)

PASSWORD_ENV: Final = "LOGQ_INTER_BROKER_PASSWORD"


@dataclass(frozen=True)
class InterBrokerClient:
    listener: str  # the listener whose address of each target broker is used
    security: SecuritySettings  # how connections to it are made
    principal: str  # who this broker is to the others


def inter_broker_client(config: BrokerConfig) -> InterBrokerClient:
    """Read this broker's credentials for the inter-broker listener; ConfigurationError (one line) when
    they are missing or unusable, so a broker that could not replicate does not start."""
    listener = config.listener_set.inter_broker
    protocol = listener.protocol
    security: SecuritySettings
    if protocol.sasl:
        user = config.inter_broker_sasl_username
        assert user is not None  # BrokerConfig.check_security
        password = read_secret(
            config.inter_broker_sasl_password_file, PASSWORD_ENV, "inter-broker password file"
        )
        if password is None:
            raise ConfigurationError(
                f"inter-broker listener {listener.name} is {protocol.value}: give the password of "
                f"{user!r} in inter.broker.sasl.password.file or ${PASSWORD_ENV}"
            )
        # The SASL user is who the broker is; its certificate goes along only where every TLS client
        # must show one (a certificate without clientAuth would fail a merely "requested" check).
        certificate = protocol.tls and config.ssl_client_auth == "required"
        security = SecuritySettings(
            security_protocol=protocol.value,
            sasl_mechanism=config.sasl_mechanism_inter_broker_protocol,
            sasl_username=user,
            sasl_password=password,
            ssl_cafile=_text(config.ssl_ca_location),
            ssl_certfile=_text(config.ssl_certificate_location) if certificate else None,
            ssl_keyfile=_text(config.ssl_key_location) if certificate else None,
        )
        principal = user_principal(user)
    elif protocol.tls:
        assert config.ssl_certificate_location is not None  # BrokerConfig.check_security
        security = SecuritySettings(
            security_protocol=protocol.value,
            ssl_cafile=_text(config.ssl_ca_location),
            ssl_certfile=_text(config.ssl_certificate_location),
            ssl_keyfile=_text(config.ssl_key_location),
        )
        principal = _certificate_principal(
            config.ssl_certificate_location, config.ssl_principal_mapping_rules
        )
    else:
        security, principal = SecuritySettings(), ANONYMOUS
    return InterBrokerClient(listener.name, security, principal)


def warn_unless_super_user(client: InterBrokerClient, config: BrokerConfig) -> None:
    """With the authorizer on, the other brokers' replica fetches as this principal need CLUSTER_ACTION:
    Kafka's rule is that the broker principal is a super user."""
    if not config.authorizer_enable or client.principal in config.super_user_set:
        return
    log.warning(
        "this broker's principal %s (inter-broker listener %s) is not in super.users: other brokers "
        "fetching as it are refused unless an ACL grants it CLUSTER_ACTION on the cluster; list it in "
        "super.users",
        client.principal, client.listener,
    )  # fmt: skip


def _certificate_principal(certificate: Path, rules: str) -> str:
    try:
        subject = certificate_subject(certificate)
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None
    name = PrincipalMapper(rules).map(subject)
    if name is None:
        raise ConfigurationError(
            f"no ssl.principal.mapping.rules rule applies to this broker's certificate subject {subject!r}"
        )
    return user_principal(name)


def _text(path: Path | None) -> str | None:
    return None if path is None else str(path)
