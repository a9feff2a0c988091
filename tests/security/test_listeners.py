"""Each client is told the addresses of the listener it came in on: Metadata and FindCoordinator on a
broker with several listeners, and advertised.listeners."""

from __future__ import annotations

from pathlib import Path

from logq.protocol import messages as m
from tests.broker_process import BrokerProcess
from tests.security.conftest import SecureBroker
from tests.security.helpers import scram_login
from tests.wire_client import WireClient


def addresses(client: WireClient) -> tuple[set[tuple[str, int]], tuple[str, int]]:
    brokers = client.call(m.MetadataRequest(topics=[]), 1).brokers
    coordinator = client.call(m.FindCoordinatorRequest(key="g", key_type=0), 1)
    assert coordinator.error_code == 0
    return {(b.host, b.port) for b in brokers}, (coordinator.host, coordinator.port)


def test_metadata_and_find_coordinator_name_the_listener_asked_on(secure_broker: SecureBroker) -> None:
    ports = secure_broker.process.ports
    with WireClient(secure_broker.address("PLAIN")) as client:
        assert addresses(client) == ({("127.0.0.1", ports["PLAIN"])}, ("127.0.0.1", ports["PLAIN"]))
    with WireClient(secure_broker.address("SASL")) as client:
        assert scram_login(client).error_code == 0
        assert addresses(client) == ({("127.0.0.1", ports["SASL"])}, ("127.0.0.1", ports["SASL"]))


def test_advertised_listeners_are_what_clients_are_told(tmp_path: Path) -> None:
    broker = BrokerProcess(
        tmp_path / "data",
        listeners={"INTERNAL": "PLAINTEXT", "EXTERNAL": "PLAINTEXT"},
        advertised={"EXTERNAL": "broker1.example:19093"},
    ).start()
    try:
        with WireClient(broker.address("EXTERNAL")) as client:
            assert addresses(client) == ({("broker1.example", 19093)}, ("broker1.example", 19093))
        with WireClient(broker.address("INTERNAL")) as client:  # not advertised: its bound address
            port = broker.ports["INTERNAL"]
            assert addresses(client) == ({("127.0.0.1", port)}, ("127.0.0.1", port))
        assert "listener EXTERNAL (PLAINTEXT) on 127.0.0.1:" in broker.log_text
    finally:
        broker.stop()
