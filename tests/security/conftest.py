"""One secured broker per module, with every kind of listener, the users below, and development
certificates (plus a second, unrelated CA for a client certificate the broker must refuse)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from logq.coordinator.credentials import write_user_offline
from logq.permissions import make_private_dir
from logq.security.certs import DevCertificates, write_dev_certificates
from logq.security.scram import MECHANISMS, make_credential
from tests.broker_process import BrokerProcess
from tests.compat.conftest import kcat  # noqa: F401  (the kcat fixture, for these tests too)

USERS = {"alice": "alice-secret", "admin": "admin-secret"}
LISTENERS = {
    "PLAIN": "PLAINTEXT",
    "TLS": "SSL",
    "SASL": "SASL_PLAINTEXT",
    "SASL_TLS": "SASL_SSL",
}
FAILED_LOGIN_DELAY_MS = 300
AUTH_TIMEOUT_MS = 2000


@dataclass
class SecureBroker:
    process: BrokerProcess
    certs: DevCertificates
    other_ca: DevCertificates  # a CA the broker does not trust, with a client certificate "mallory"

    def address(self, listener: str) -> str:
        return self.process.address(listener)


@pytest.fixture(scope="module")
def secure_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBroker]:
    root = tmp_path_factory.mktemp("secure")
    certs = write_dev_certificates(root / "certs", ["alice"])
    other = write_dev_certificates(root / "other-ca", ["mallory"], ca_name="not the broker's CA")
    data = root / "data"
    make_private_dir(data)
    for user, password in USERS.items():
        write_user_offline(data, user, [make_credential(m, password) for m in MECHANISMS])
    process = BrokerProcess(
        data,
        listeners=LISTENERS,
        broker={
            "ssl.certificate.location": str(certs.broker_cert),
            "ssl.key.location": str(certs.broker_key),
            "ssl.ca.location": str(certs.ca),
            "ssl.client.auth": "requested",
            "ssl.principal.mapping.rules": "RULE:^CN=([^,]+),.*$/$1/, DEFAULT",
            "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
            "connection.failed.authentication.delay.ms": FAILED_LOGIN_DELAY_MS,
            "connection.failed.authentication.delay.max.ms": 2 * FAILED_LOGIN_DELAY_MS,
            "authentication.timeout.ms": AUTH_TIMEOUT_MS,
            "auto.create.queues": True,
            "group.initial.rebalance.delay.ms": 0,
        },
    ).start()
    yield SecureBroker(process, certs, other)
    process.kill()


def ca_path(broker: SecureBroker) -> Path:
    return broker.certs.ca
