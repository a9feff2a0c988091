"""confluent-kafka, kafka-python, aiokafka and kcat against one secured broker: over SSL (with and
without a client certificate), SASL_PLAINTEXT (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) and SASL_SSL each
produces to an auto-created queue and consumes it back in a consumer group; a wrong password and an
unknown user are refused by each with the same message, after the failed-login delay."""

from __future__ import annotations

import asyncio
import gc
import logging
import subprocess
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from tests.security.conftest import FAILED_LOGIN_DELAY_MS, SecureBroker

N = 20
DEADLINE_S = 30.0
REFUSAL = "Authentication failed during authentication due to invalid credentials with SASL mechanism"


@dataclass(frozen=True)
class Case:
    listener: str
    protocol: str
    mechanism: str | None = None
    client_cert: bool = False

    @property
    def tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")


CASES = {
    "ssl": Case("TLS", "SSL"),
    "ssl-client-cert": Case("TLS", "SSL", client_cert=True),
    "sasl-plain": Case("SASL", "SASL_PLAINTEXT", "PLAIN"),
    "sasl-scram-256": Case("SASL", "SASL_PLAINTEXT", "SCRAM-SHA-256"),
    "sasl-scram-512": Case("SASL", "SASL_PLAINTEXT", "SCRAM-SHA-512"),
    "sasl-ssl-scram-512": Case("SASL_TLS", "SASL_SSL", "SCRAM-SHA-512"),
    "sasl-ssl-plain": Case("SASL_TLS", "SASL_SSL", "PLAIN"),
}


def messages() -> list[bytes]:
    return [b"message-%03d" % i for i in range(N)]


# --- confluent-kafka (librdkafka 2.x) --------------------------------------------------------------


def confluent_config(broker: SecureBroker, case: Case, user: str, password: str) -> dict[str, object]:
    conf: dict[str, object] = {
        "bootstrap.servers": broker.address(case.listener),
        "security.protocol": case.protocol,
    }
    if case.tls:
        conf["ssl.ca.location"] = str(broker.certs.ca)
    if case.client_cert:
        cert, key = broker.certs.clients["alice"]
        conf["ssl.certificate.location"], conf["ssl.key.location"] = str(cert), str(key)
    if case.mechanism:
        conf.update({"sasl.mechanism": case.mechanism, "sasl.username": user, "sasl.password": password})
    return conf


def confluent_round_trip(broker: SecureBroker, case: Case, queue: str) -> list[bytes]:
    from confluent_kafka import Consumer, Producer

    conf = confluent_config(broker, case, "alice", "alice-secret")
    producer = Producer(conf)
    for value in messages():
        producer.produce(queue, value)
    assert producer.flush(DEADLINE_S) == 0
    consumer = Consumer({**conf, "group.id": f"g-{queue}", "auto.offset.reset": "earliest"})
    consumer.subscribe([queue])
    got: list[bytes] = []
    deadline = time.monotonic() + DEADLINE_S
    try:
        while len(got) < N and time.monotonic() < deadline:
            record = consumer.poll(1.0)
            if record is not None and record.error() is None:
                got.append(record.value())
        consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    return got


def confluent_refusal(broker: SecureBroker, case: Case, user: str, password: str) -> str:
    from confluent_kafka import Producer

    errors: list[str] = []
    producer = Producer(
        {**confluent_config(broker, case, user, password), "error_cb": lambda e: errors.append(str(e))}
    )
    deadline = time.monotonic() + DEADLINE_S
    while not errors and time.monotonic() < deadline:
        producer.poll(0.2)
    return errors[0] if errors else "no error"


# --- kafka-python -------------------------------------------------------------------------------------


def kafka_python_options(broker: SecureBroker, case: Case, user: str, password: str) -> dict[str, object]:
    options: dict[str, object] = {
        "bootstrap_servers": broker.address(case.listener),
        "security_protocol": case.protocol,
    }
    if case.tls:
        options["ssl_cafile"] = str(broker.certs.ca)
    if case.client_cert:
        cert, key = broker.certs.clients["alice"]
        options["ssl_certfile"], options["ssl_keyfile"] = str(cert), str(key)
    if case.mechanism:
        options.update(sasl_mechanism=case.mechanism, sasl_plain_username=user, sasl_plain_password=password)
    return options


def kafka_python_round_trip(broker: SecureBroker, case: Case, queue: str) -> list[bytes]:
    from kafka import KafkaConsumer, KafkaProducer

    options = kafka_python_options(broker, case, "alice", "alice-secret")
    producer = KafkaProducer(**options)
    futures = [producer.send(queue, value) for value in messages()]
    producer.flush(DEADLINE_S)
    for future in futures:
        future.get(DEADLINE_S)
    producer.close()
    consumer = KafkaConsumer(
        queue,
        group_id=f"g-{queue}",
        auto_offset_reset="earliest",
        consumer_timeout_ms=DEADLINE_S * 1000,
        **options,
    )
    got: list[bytes] = []
    try:
        for record in consumer:
            got.append(record.value)
            if len(got) == N:
                break
        consumer.commit()
    finally:
        consumer.close()
    return got


def kafka_python_refusal(broker: SecureBroker, case: Case, user: str, password: str) -> str:
    from kafka import KafkaProducer

    # kafka-python logs the refusal and retries until bootstrap_timeout_ms (30 s by default, 2 s here):
    # read what it logged.
    def attempt() -> None:
        options = kafka_python_options(broker, case, user, password)
        KafkaProducer(**options, max_block_ms=4000, bootstrap_timeout_ms=2000).close()

    return logged_refusal("kafka", attempt)


def logged_refusal(logger_name: str, attempt: Callable[[], None]) -> str:
    """The refusal a client logged (error 58), else what it raised: clients that retry logins log
    the broker's answer and raise only a generic bootstrap failure."""
    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger(logger_name)
    logger.addHandler(handler)
    try:
        attempt()
    except Exception as exc:
        seen.append(f"{type(exc).__name__}: {exc}")
    finally:
        logger.removeHandler(handler)
        # A client whose constructor failed leaves its wake-up socket pair to the garbage collector.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()
    return next((line for line in seen if "Error 58" in line), seen[-1] if seen else "no error")


# --- aiokafka -------------------------------------------------------------------------------------------


def aiokafka_options(broker: SecureBroker, case: Case, user: str, password: str) -> dict[str, object]:
    from aiokafka.helpers import create_ssl_context

    options: dict[str, object] = {
        "bootstrap_servers": broker.address(case.listener),
        "security_protocol": case.protocol,
    }
    if case.tls:  # aiokafka needs an ssl_context for SSL and SASL_SSL
        cert, key = broker.certs.clients["alice"] if case.client_cert else (None, None)
        options["ssl_context"] = create_ssl_context(
            cafile=str(broker.certs.ca),
            certfile=str(cert) if cert else None,
            keyfile=str(key) if key else None,
        )
    if case.mechanism:
        options.update(sasl_mechanism=case.mechanism, sasl_plain_username=user, sasl_plain_password=password)
    return options


def aiokafka_round_trip(broker: SecureBroker, case: Case, queue: str) -> list[bytes]:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    async def run() -> list[bytes]:
        options = aiokafka_options(broker, case, "alice", "alice-secret")
        producer = AIOKafkaProducer(**options)
        await producer.start()
        try:
            for value in messages():
                await producer.send_and_wait(queue, value)
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(queue, group_id=f"g-{queue}", auto_offset_reset="earliest", **options)
        await consumer.start()
        got: list[bytes] = []
        try:
            while len(got) < N:
                batch = await consumer.getmany(timeout_ms=1000)
                got += [r.value for records in batch.values() for r in records]
            await consumer.commit()
        finally:
            await consumer.stop()
        return got

    return asyncio.run(asyncio.wait_for(run(), DEADLINE_S))


def aiokafka_refusal(broker: SecureBroker, case: Case, user: str, password: str) -> str:
    from aiokafka import AIOKafkaProducer

    async def run() -> None:
        producer = AIOKafkaProducer(**aiokafka_options(broker, case, user, password))
        try:
            await producer.start()
        finally:
            await producer.stop()

    return logged_refusal("aiokafka", lambda: asyncio.run(asyncio.wait_for(run(), DEADLINE_S)))


# --- kcat (librdkafka 2.0.2: SaslAuthenticate v0, the doubled SCRAM nonce) -------------------------


def kcat_args(broker: SecureBroker, case: Case, user: str, password: str) -> list[str]:
    args = ["-b", broker.address(case.listener), "-X", f"security.protocol={case.protocol}"]
    if case.tls:
        args += ["-X", f"ssl.ca.location={broker.certs.ca}"]
    if case.client_cert:
        cert, key = broker.certs.clients["alice"]
        args += ["-X", f"ssl.certificate.location={cert}", "-X", f"ssl.key.location={key}"]
    if case.mechanism:
        args += ["-X", f"sasl.mechanisms={case.mechanism}", "-X", f"sasl.username={user}"]
        args += ["-X", f"sasl.password={password}"]
    return args


def run_kcat(kcat: str, args: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [kcat, *args], input=stdin, capture_output=True, text=True, timeout=DEADLINE_S, check=False
    )


def kcat_round_trip(kcat: str, broker: SecureBroker, case: Case, queue: str) -> list[bytes]:
    args = kcat_args(broker, case, "alice", "alice-secret")
    lines = "".join(v.decode() + "\n" for v in messages())
    produced = run_kcat(kcat, [*args, "-P", "-t", queue], lines)
    assert produced.returncode == 0, produced.stderr
    consumed = run_kcat(
        kcat,
        [
            *args,
            "-G",
            f"g-{queue}",
            "-X",
            "auto.offset.reset=earliest",
            "-c",
            str(N),
            "-q",
            "-f",
            "%s\n",
            queue,
        ],
    )
    assert consumed.returncode == 0, consumed.stderr
    return [line.encode() for line in consumed.stdout.splitlines()]


def kcat_refusal(kcat: str, broker: SecureBroker, case: Case, user: str, password: str) -> str:
    # -m 2: the refusal comes at once; kcat would otherwise wait 5 s for metadata that never comes
    result = run_kcat(kcat, [*kcat_args(broker, case, user, password), "-L", "-m", "2"])
    assert result.returncode != 0
    return result.stderr


CLIENTS = ["confluent-kafka", "kafka-python", "aiokafka", "kcat"]


def round_trip(
    client: str, kcat: Callable[[], str], broker: SecureBroker, case: Case, queue: str
) -> list[bytes]:
    if client == "kcat":
        return kcat_round_trip(kcat(), broker, case, queue)
    return {
        "confluent-kafka": confluent_round_trip,
        "kafka-python": kafka_python_round_trip,
        "aiokafka": aiokafka_round_trip,
    }[client](broker, case, queue)


def refusal(
    client: str, kcat: Callable[[], str], broker: SecureBroker, case: Case, *, user: str, pw: str
) -> str:
    if client == "kcat":
        return kcat_refusal(kcat(), broker, case, user, pw)
    return {
        "confluent-kafka": confluent_refusal,
        "kafka-python": kafka_python_refusal,
        "aiokafka": aiokafka_refusal,
    }[client](broker, case, user, pw)


@pytest.fixture
def kcat_path(request: pytest.FixtureRequest) -> Callable[[], str]:
    return lambda: request.getfixturevalue("kcat")


@pytest.mark.slow
@pytest.mark.parametrize("case_name", list(CASES))
@pytest.mark.parametrize("client", CLIENTS)
def test_produce_and_consume_in_a_group(
    secure_broker: SecureBroker, client: str, case_name: str, kcat_path: Callable[[], str]
) -> None:
    case = CASES[case_name]
    queue = f"{client}-{case_name}-{uuid.uuid4().hex[:6]}"
    got = round_trip(client, kcat_path, secure_broker, case, queue)
    assert sorted(got) == messages()
    if case.mechanism:
        assert (
            f"authenticated User:alice from 127.0.0.1 with {case.mechanism} on listener {case.listener}"
            in (secure_broker.process.log_text)
        )
    if case.client_cert:
        assert "TLS client User:alice from" in secure_broker.process.log_text


@pytest.mark.slow
@pytest.mark.parametrize("case_name", ["sasl-scram-256", "sasl-ssl-plain"])
@pytest.mark.parametrize("client", CLIENTS)
def test_wrong_password_and_unknown_user_get_the_same_refusal(
    secure_broker: SecureBroker, client: str, case_name: str, kcat_path: Callable[[], str]
) -> None:
    case = CASES[case_name]
    answers = []
    for user, password in (("alice", "not-her-password"), ("nobody", "alice-secret")):
        started = time.monotonic()
        answers.append(refusal(client, kcat_path, secure_broker, case, user=user, pw=password))
        assert time.monotonic() - started >= FAILED_LOGIN_DELAY_MS / 1000  # the failed-login delay
    for answer in answers:
        assert (
            f"{REFUSAL} {case.mechanism}" in answer or "58" in answer or "SaslAuthenticationFailed" in answer
        ), answer
    assert "nobody" not in answers[1]
    log = secure_broker.process.log_text
    assert "not-her-password" not in log
