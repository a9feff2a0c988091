"""How a cluster member proves who it is to the other brokers (logq/broker/inter_broker.py), with real
files: the SASL password from a private file or the environment, never from the configuration file;
on an SSL inter-broker listener, the broker certificate's mapped subject."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from logq.broker.config import BrokerConfig
from logq.broker.inter_broker import PASSWORD_ENV, inter_broker_client
from logq.errors import ConfigurationError, UnsafePermissionsError
from logq.permissions import write_private
from logq.security.certs import write_dev_certificates

SASL_CLUSTER = {
    "listeners": "CLIENTS://127.0.0.1:9093,INTERNAL://127.0.0.1:9094",
    "listener.security.protocol.map": "CLIENTS:SASL_SSL,INTERNAL:SASL_SSL",
    "inter.broker.listener.name": "INTERNAL",
    "zookeeper.connect": "127.0.0.1:2181/logq",
    "inter.broker.sasl.username": "broker",
    "sasl.mechanism.inter.broker.protocol": "SCRAM-SHA-512",
    "ssl.certificate.location": "broker.pem",
    "ssl.key.location": "broker-key.pem",
    "ssl.ca.location": "ca.pem",
}


def test_the_inter_broker_password_comes_from_a_private_file(tmp_path: Path) -> None:
    password_file = tmp_path / "broker.password"
    write_private(password_file, b"s3cret:with colons\n")
    config = BrokerConfig.load(None, {**SASL_CLUSTER, "inter.broker.sasl.password.file": str(password_file)})
    client = inter_broker_client(config)
    assert (client.listener, client.principal) == ("INTERNAL", "User:broker")
    security = client.security
    assert (security.security_protocol, security.sasl_mechanism) == ("SASL_SSL", "SCRAM-SHA-512")
    assert (security.sasl_username, security.sasl_password) == ("broker", "s3cret:with colons")
    assert security.ssl_cafile == "ca.pem"
    assert security.ssl_certfile is None  # the SASL user is who it is
    assert "s3cret" not in repr(security) + repr(client)
    assert "s3cret" not in str(config.settings())  # DescribeConfigs shows the file's path only
    required = BrokerConfig.load(
        None,
        {
            **SASL_CLUSTER,
            "inter.broker.sasl.password.file": str(password_file),
            "ssl.client.auth": "required",
        },
    )
    assert inter_broker_client(required).security.ssl_certfile == "broker.pem"  # every TLS client shows one
    os.chmod(password_file, 0o644)
    with pytest.raises(UnsafePermissionsError, match="accessible by group or others"):
        inter_broker_client(config)
    write_private(password_file, b"\n")
    with pytest.raises(ConfigurationError, match="is empty"):
        inter_broker_client(config)


def test_without_a_file_the_password_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    config = BrokerConfig.load(None, SASL_CLUSTER)
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    with pytest.raises(ConfigurationError, match=r"give the password of 'broker' in inter\.broker\.sasl"):
        inter_broker_client(config)
    monkeypatch.setenv(PASSWORD_ENV, "from-env")
    assert inter_broker_client(config).security.sasl_password == "from-env"


def test_on_an_ssl_listener_the_broker_is_its_certificates_mapped_subject(tmp_path: Path) -> None:
    certs = write_dev_certificates(tmp_path / "certs", [])
    keys = {
        "listeners": "INTERNAL://127.0.0.1:9094",
        "listener.security.protocol.map": "INTERNAL:SSL",
        "zookeeper.connect": "127.0.0.1:2181/logq",
        "ssl.certificate.location": str(certs.broker_cert),
        "ssl.key.location": str(certs.broker_key),
        "ssl.ca.location": str(certs.ca),
        "ssl.client.auth": "required",
    }
    config = BrokerConfig.load(None, {**keys, "ssl.principal.mapping.rules": "RULE:^CN=([^,]+),.*$/$1/L"})
    client = inter_broker_client(config)
    assert client.principal == "User:logq broker"
    assert client.security.ssl_certfile == str(certs.broker_cert)  # presented to the other brokers
    unmapped = BrokerConfig.load(None, {**keys, "ssl.principal.mapping.rules": "RULE:^CN=alice,.*$/alice/"})
    with pytest.raises(
        ConfigurationError, match=r"no ssl\.principal\.mapping\.rules rule applies to this broker"
    ):
        inter_broker_client(unmapped)


def test_on_a_plaintext_listener_brokers_are_anonymous() -> None:
    config = BrokerConfig.load(None, {"zookeeper.connect": "127.0.0.1:2181/logq"})
    client = inter_broker_client(config)
    assert (client.listener, client.principal) == ("PLAINTEXT", "User:ANONYMOUS")
    assert client.security.security_protocol == "PLAINTEXT"
