"""Connection limits against real broker processes (logq/broker/connection_limits.py): a connection
over max.connections, max.connections.per.ip (or its override) or max.connection.creation.rate is
closed right after accept and counted by reason, while the clients already connected carry on."""

from __future__ import annotations

import contextlib
import resource
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from logq.broker.config import BrokerConfig
from logq.broker.connection_limits import ConnectionGate, ConnectionLimits, parse_overrides
from logq.protocol import messages as m
from tests.broker.overload import MeteredBroker, MiB, closed_by_peer, connect, create_queue, wait_for
from tests.wire_client import WireClient

FLOOD_SOURCE = "127.0.0.2"  # the flood's address; the well-behaved clients use 127.0.0.1
PER_IP_LIMIT = 100
FLOOD_WANTED = 2000


def refused(broker: MeteredBroker, reason: str) -> float:
    return broker.metric("logq_connections_refused_total", reason=reason)


def served(bootstrap: str, source: str = "127.0.0.1") -> bool:
    """Whether a new connection from ``source`` gets an ApiVersions answer."""
    try:
        with WireClient(bootstrap, timeout=5, source=source) as client:
            return client.call(m.ApiVersionsRequest(), 2).error_code == 0
    except OSError:
        return False


def is_open(sock: socket.socket) -> bool:
    """Non-blocking: False once the broker closed or reset the connection."""
    sock.setblocking(False)
    try:
        return sock.recv(1) != b""
    except BlockingIOError:
        return True
    except ConnectionResetError:
        return False


# --- the flood -------------------------------------------------------------------------------------


@pytest.fixture
def flood_broker(tmp_path: Path) -> Iterator[MeteredBroker]:
    broker = MeteredBroker(tmp_path / "data", {"max.connections.per.ip": PER_IP_LIMIT}).start()
    yield broker
    broker.kill()


def flood_size() -> int:
    """FLOOD_WANTED sockets, or fewer if this process may not open that many files (with room to spare
    for the clients and pytest's own)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    size = min(FLOOD_WANTED, soft - 300)
    if size < 2 * PER_IP_LIMIT:
        pytest.skip(f"the open files limit ({soft}) is too low for a connection flood")
    return size


def test_a_flood_from_one_address_is_refused_while_clients_carry_on(flood_broker: MeteredBroker) -> None:
    broker = flood_broker
    queue = "flooded"
    create_queue(broker.bootstrap, queue)
    producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all", "linger.ms": 0})
    consumer = Consumer(
        {"bootstrap.servers": broker.bootstrap, "group.id": "flood", "enable.auto.commit": False}
    )
    delivered: list[int] = []
    failures: list[KafkaError] = []

    def on_delivery(error: KafkaError | None, message: Message) -> None:
        if error is not None:
            failures.append(error)
        else:
            delivered.append(int(message.value()))

    # Connected before the flood: the flood must not disturb them.
    producer.produce(queue, b"0", on_delivery=on_delivery)
    assert producer.flush(10) == 0
    consumer.assign([TopicPartition(queue, 0, 0)])
    first = consumer.poll(10)
    assert first is not None
    assert first.error() is None
    rss_before = broker.rss_bytes()

    stop = threading.Event()

    def produce_steadily() -> None:
        number = 1
        while not stop.is_set():
            producer.produce(queue, str(number).encode(), on_delivery=on_delivery)
            producer.poll(0)
            number += 1
            time.sleep(0.005)
        producer.flush(15)

    steady = threading.Thread(target=produce_steadily)
    steady.start()
    flood: list[socket.socket] = []
    size = flood_size()
    try:
        for _ in range(size):
            flood.append(connect(broker.bootstrap, FLOOD_SOURCE, timeout=10))
        wait_for(
            lambda: refused(broker, "max-connections-per-ip") >= size - PER_IP_LIMIT,
            30,
            "the excess connections to be refused",
        )
        time.sleep(0.5)  # any further (wrong) refusal would show by now
        assert refused(broker, "max-connections-per-ip") == size - PER_IP_LIMIT
        still_open = sum(is_open(sock) for sock in flood)
        assert still_open == PER_IP_LIMIT
        assert not served(broker.bootstrap, FLOOD_SOURCE)  # the address is at its limit
        assert served(broker.bootstrap)  # others are not
        # Refused connections leave nothing behind: the broker grew by little more than the admitted ones.
        assert broker.rss_bytes() - rss_before < 64 * MiB
    finally:
        stop.set()
        steady.join(30)
        for sock in flood:
            sock.close()
    assert not failures
    assert len(delivered) > 1
    # The consumer, connected before the flood, reads everything that was produced during it.
    wanted = set(delivered)
    seen = {0}
    deadline = time.monotonic() + 30
    while not wanted <= seen and time.monotonic() < deadline:
        message = consumer.poll(1)
        if message is not None and message.error() is None:
            seen.add(int(message.value()))
    consumer.close()
    assert wanted <= seen
    # The flood's slots are given back as its connections close.
    wait_for(lambda: served(broker.bootstrap, FLOOD_SOURCE), 10, "the flood's address to be served again")
    assert "Traceback" not in broker.log_text


# --- each limit alone --------------------------------------------------------------------------------


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[MeteredBroker]:
    broker = MeteredBroker(
        tmp_path / "data",
        {
            "max.connections": 4,
            "max.connections.per.ip": 3,
            "max.connections.per.ip.overrides": "127.0.0.3:0,127.0.0.4:4",
        },
    ).start()
    yield broker
    broker.kill()


def test_max_connections_per_ip_and_its_overrides(limited: MeteredBroker) -> None:
    with contextlib.ExitStack() as held:
        first = [held.enter_context(connect(limited.bootstrap)) for _ in range(3)]
        fourth = held.enter_context(connect(limited.bootstrap))
        assert closed_by_peer(fourth, 5)
        assert not any(closed_by_peer(sock, 0.2) for sock in first)
        assert refused(limited, "max-connections-per-ip") == 1
        # An override of 0 refuses the address altogether.
        banned = held.enter_context(connect(limited.bootstrap, "127.0.0.3"))
        assert closed_by_peer(banned, 5)
        assert refused(limited, "max-connections-per-ip") == 2
    # Closed connections give their slots back.
    wait_for(lambda: served(limited.bootstrap), 10, "127.0.0.1 to be served again")


def test_max_connections_counts_every_address(limited: MeteredBroker) -> None:
    with contextlib.ExitStack() as held:
        for source in ("127.0.0.1", "127.0.0.1", "127.0.0.4", "127.0.0.4"):
            held.enter_context(connect(limited.bootstrap, source))
        fifth = held.enter_context(connect(limited.bootstrap, "127.0.0.5"))
        assert closed_by_peer(fifth, 5)
        assert refused(limited, "max-connections") == 1
        assert limited.metric("logq_connections") == 4
    wait_for(lambda: served(limited.bootstrap, "127.0.0.5"), 10, "a fifth address to be served")


def test_connection_creation_rate(tmp_path: Path) -> None:
    broker = MeteredBroker(tmp_path / "data", {"max.connection.creation.rate": 5}).start()
    try:
        with contextlib.ExitStack() as held:
            started = time.monotonic()
            burst = [held.enter_context(connect(broker.bootstrap)) for _ in range(20)]
            took = time.monotonic() - started
            wait_for(lambda: refused(broker, "creation-rate") >= 20 - 5 - 5 * took - 1, 5, "the refusals")
            time.sleep(0.3)  # any further refusal would show by now
            admitted = sum(is_open(sock) for sock in burst)
        # A second's worth (5) is let in at once, then the rate refills the bucket while the burst lasts
        # (longer on a loaded machine): the rest are refused.
        assert 5 <= admitted <= 5 + 5 * took + 1
        assert refused(broker, "creation-rate") == 20 - admitted
        time.sleep(1.2)  # the bucket refills
        assert served(broker.bootstrap)
    finally:
        broker.kill()


# --- settings ------------------------------------------------------------------------------------------


def test_overrides_are_addresses_with_counts() -> None:
    assert parse_overrides(" 127.0.0.1:5, [::1]:0 ,") == {"127.0.0.1": 5, "::1": 0}
    for bad in ("localhost:5", "127.0.0.1", "127.0.0.1:-1", "127.0.0.1:x"):
        with pytest.raises(ValueError, match=r"expected IP:COUNT"):
            parse_overrides(bad)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("max.connections", 0, "max.connections must be at least 1, not 0"),
        ("max.connections.per.ip", -1, "max.connections.per.ip must be at least 1, not -1"),
        ("max.connection.creation.rate", 0, "max.connection.creation.rate must be at least 1, not 0"),
        ("max.connections.per.ip.overrides", "a:1", "max.connections.per.ip.overrides: expected IP:COUNT"),
        ("queued.max.request.bytes", 0, "queued.max.request.bytes must be at least 1, not 0"),
    ],
)
def test_bad_limits_are_refused_in_one_line(key: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BrokerConfig.load(None, {key: value})


def test_the_gate_counts_ipv4_mapped_addresses_as_ipv4() -> None:
    gate = ConnectionGate(ConnectionLimits(max_per_ip=1))
    assert gate.admit("127.0.0.1") is None
    assert gate.admit("::ffff:127.0.0.1") == "max-connections-per-ip"
    gate.release("::ffff:127.0.0.1")
    assert gate.count_for("127.0.0.1") == 0
