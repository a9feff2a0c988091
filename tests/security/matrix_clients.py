"""One user of a secured broker (SASL_SSL, SCRAM-SHA-256) through each client: confluent-kafka,
kafka-python, aiokafka, kcat, logq's client and logq's command line. Each does the four things the ACL
matrix refuses and then allows: produce, consume in a group (and commit), create a queue, delete a queue.

An ACL refusal is raised as ``RefusedError(code, shown)``: the Kafka error code and what the client showed
(its exception, its delivery error, its stderr line). Each client is asked only for the refusal forms it
really has (its error class or code, kcat's and the CLI's text); anything else escapes as it is, so a
wrong error fails the test instead of passing as "refused"."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from logq import Admin, Consumer, Producer
from logq.error_codes import ErrorCode
from logq.errors import AuthorizationError
from logq_cli.main import main

TOPIC_REFUSED = int(ErrorCode.TOPIC_AUTHORIZATION_FAILED)
GROUP_REFUSED = int(ErrorCode.GROUP_AUTHORIZATION_FAILED)
# Every wait is bounded by this (seconds); refusals come far sooner (the clients' retries are cut short).
DEADLINE_S = 30.0
# kafka-python and aiokafka retry some refusals until a timeout: these keep it short.
SHORT_MS = 5_000


class RefusedError(Exception):
    def __init__(self, code: int, shown: str) -> None:
        super().__init__(f"{code}: {shown}")
        self.code = code
        self.shown = shown


@dataclass(frozen=True)
class Login:
    """Where and as whom: the SASL_SSL listener, its CA, the user and the password."""

    address: str
    ca: Path
    user: str
    password: str
    password_file: Path


class MatrixClient(ABC):
    def __init__(self, login: Login) -> None:
        self.login = login

    @abstractmethod
    def produce(self, queue: str, value: bytes) -> None: ...

    @abstractmethod
    def consume(self, queue: str, group: str) -> list[bytes]:
        """Join ``group``, read ``queue`` from the beginning until a record comes, commit: the values."""

    @abstractmethod
    def create(self, queue: str) -> None: ...

    @abstractmethod
    def delete(self, queue: str) -> None: ...


# --- confluent-kafka (librdkafka 2.x) -----------------------------------------------------------------------


class ConfluentKafka(MatrixClient):
    def conf(self) -> dict[str, Any]:
        return {
            "bootstrap.servers": self.login.address,
            "security.protocol": "SASL_SSL",
            "ssl.ca.location": str(self.login.ca),
            "sasl.mechanism": "SCRAM-SHA-256",
            "sasl.username": self.login.user,
            "sasl.password": self.login.password,
        }

    # RefusedError is raised once the client is gone: pytest keeps the exception (and the frames its
    # traceback holds) until the test ends, and a librdkafka handle kept alive goes on logging.

    def produce(self, queue: str, value: bytes) -> None:
        error = self._delivery_error(queue, value)
        if error is not None:
            raise RefusedError(error.code(), error.str())

    def _delivery_error(self, queue: str, value: bytes) -> Any:
        from confluent_kafka import Producer as CkProducer

        errors: list[Any] = []
        producer = CkProducer({**self.conf(), "message.timeout.ms": SHORT_MS})
        producer.produce(queue, value, on_delivery=lambda err, _msg: errors.append(err))
        producer.flush(DEADLINE_S)
        assert len(errors) == 1, errors
        return errors[0]

    def consume(self, queue: str, group: str) -> list[bytes]:
        from confluent_kafka import Consumer as CkConsumer

        consumer = CkConsumer(
            {**self.conf(), "group.id": group, "auto.offset.reset": "earliest", "session.timeout.ms": 6000}
        )
        consumer.subscribe([queue])
        try:
            deadline = time.monotonic() + DEADLINE_S
            while time.monotonic() < deadline:
                msg = consumer.poll(0.2)
                if msg is None:
                    continue
                error = msg.error()
                if error is None:
                    consumer.commit(asynchronous=False)
                    return [msg.value()]
                if error.code() in (TOPIC_REFUSED, GROUP_REFUSED):
                    raise RefusedError(error.code(), error.str())
            raise AssertionError(f"no record and no refusal from {queue} within {DEADLINE_S} s")
        finally:
            consumer.close()

    def _admin_error(self, method: str, queue: str) -> Any:
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient(self.conf())
        argument = [NewTopic(queue, 1, 1)] if method == "create_topics" else [queue]
        try:
            getattr(admin, method)(argument)[queue].result(DEADLINE_S)
        except KafkaException as exc:
            if exc.args[0].code() == TOPIC_REFUSED:
                return exc.args[0]
            raise
        return None

    def create(self, queue: str) -> None:
        error = self._admin_error("create_topics", queue)
        if error is not None:
            raise RefusedError(error.code(), error.str())

    def delete(self, queue: str) -> None:
        error = self._admin_error("delete_topics", queue)
        if error is not None:
            raise RefusedError(error.code(), error.str())


# --- kafka-python -------------------------------------------------------------------------------------------


@contextmanager
def logged(logger_name: str) -> Iterator[list[str]]:
    """The messages a client logs meanwhile."""
    lines: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger(logger_name)
    logger.addHandler(handler)
    try:
        yield lines
    finally:
        logger.removeHandler(handler)


@contextmanager
def kafka_python_refusals() -> Iterator[None]:
    from kafka.errors import (  # type: ignore[import-untyped]
        GroupAuthorizationFailedError,
        TopicAuthorizationFailedError,
    )

    try:
        yield
    except (TopicAuthorizationFailedError, GroupAuthorizationFailedError) as exc:
        raise RefusedError(exc.errno, type(exc).__name__) from None


class KafkaPython(MatrixClient):
    def options(self) -> dict[str, Any]:
        return {
            "bootstrap_servers": self.login.address,
            "security_protocol": "SASL_SSL",
            "ssl_cafile": str(self.login.ca),
            "sasl_mechanism": "SCRAM-SHA-256",
            "sasl_plain_username": self.login.user,
            "sasl_plain_password": self.login.password,
            "request_timeout_ms": SHORT_MS,
        }

    def produce(self, queue: str, value: bytes) -> None:
        from kafka import KafkaProducer  # type: ignore[import-untyped]

        producer = KafkaProducer(**self.options(), max_block_ms=SHORT_MS)
        try:
            with kafka_python_refusals():
                producer.send(queue, value).get(timeout=DEADLINE_S)
        finally:
            producer.close(timeout=5)

    def consume(self, queue: str, group: str) -> list[bytes]:
        from kafka import KafkaConsumer

        consumer = KafkaConsumer(
            queue, group_id=group, auto_offset_reset="earliest", session_timeout_ms=6000,
            heartbeat_interval_ms=1000, **self.options(),
        )  # fmt: skip
        # A refused queue is not raised by poll: kafka-python logs Metadata's error 29 and assigns nothing.
        unauthorized = f"Topic {queue} is not authorized for this client"
        try:
            with logged("kafka") as lines:
                deadline = time.monotonic() + DEADLINE_S
                while time.monotonic() < deadline:
                    with kafka_python_refusals():
                        polled = consumer.poll(timeout_ms=1000)
                    values = [r.value for records in polled.values() for r in records]
                    if values:
                        consumer.commit()
                        return values
                    if unauthorized in lines:
                        raise RefusedError(TOPIC_REFUSED, unauthorized)
            raise AssertionError(f"no record and no refusal from {queue} within {DEADLINE_S} s")
        finally:
            consumer.close()

    def _admin(self) -> Any:
        from kafka import KafkaAdminClient

        return KafkaAdminClient(**self.options())

    def create(self, queue: str) -> None:
        from kafka.admin import NewTopic  # type: ignore[import-untyped]

        admin = self._admin()
        try:
            with kafka_python_refusals():
                admin.create_topics([NewTopic(queue, 1, 1)])
        finally:
            admin.close()

    def delete(self, queue: str) -> None:
        admin = self._admin()
        try:
            with kafka_python_refusals():
                admin.delete_topics([queue])
        finally:
            admin.close()


# --- aiokafka -----------------------------------------------------------------------------------------------


class AioKafka(MatrixClient):
    def options(self) -> dict[str, Any]:
        from aiokafka.helpers import create_ssl_context

        return {
            "bootstrap_servers": self.login.address,
            "security_protocol": "SASL_SSL",
            "ssl_context": create_ssl_context(cafile=str(self.login.ca)),
            "sasl_mechanism": "SCRAM-SHA-256",
            "sasl_plain_username": self.login.user,
            "sasl_plain_password": self.login.password,
            "request_timeout_ms": SHORT_MS,
        }

    @staticmethod
    def run(coroutine: Any) -> Any:
        from aiokafka.errors import GroupAuthorizationFailedError, TopicAuthorizationFailedError

        try:
            return asyncio.run(asyncio.wait_for(coroutine, DEADLINE_S))
        except (TopicAuthorizationFailedError, GroupAuthorizationFailedError) as exc:
            raise RefusedError(exc.errno, type(exc).__name__) from None

    def produce(self, queue: str, value: bytes) -> None:
        from aiokafka import AIOKafkaProducer

        async def run() -> None:
            producer = AIOKafkaProducer(**self.options())
            try:
                await producer.start()
                await producer.send_and_wait(queue, value)
            finally:
                await producer.stop()

        self.run(run())

    def consume(self, queue: str, group: str) -> list[bytes]:
        from aiokafka import AIOKafkaConsumer

        async def run() -> list[bytes]:
            consumer = AIOKafkaConsumer(
                queue, group_id=group, auto_offset_reset="earliest", session_timeout_ms=6000,
                heartbeat_interval_ms=1000, **self.options(),
            )  # fmt: skip
            try:
                await consumer.start()
                while True:
                    batch = await consumer.getmany(timeout_ms=1000)
                    values = [r.value for records in batch.values() for r in records if r.value is not None]
                    if values:
                        await consumer.commit()
                        return values
            finally:
                await consumer.stop()

        result: list[bytes] = self.run(run())
        return result

    def _admin_call(self, creating: bool, queue: str) -> None:
        from aiokafka.admin import AIOKafkaAdminClient, NewTopic

        async def run() -> list[tuple[Any, ...]]:
            admin = AIOKafkaAdminClient(**self.options())
            try:
                await admin.start()
                if creating:
                    created = await admin.create_topics([NewTopic(queue, 1, 1)])
                    return list(created.topic_errors)
                deleted = await admin.delete_topics([queue])
                return list(deleted.topic_error_codes)
            finally:
                await admin.close()

        # aiokafka's admin client returns the broker's answer: (queue, code[, message]) per queue.
        (result,) = self.run(run())
        assert result[0] == queue
        if result[1] == TOPIC_REFUSED:
            raise RefusedError(result[1], repr(result))
        assert result[1] == 0, result

    def create(self, queue: str) -> None:
        self._admin_call(True, queue)

    def delete(self, queue: str) -> None:
        self._admin_call(False, queue)


# --- kcat (librdkafka 2.0.2) --------------------------------------------------------------------------------

KCAT_REFUSALS = {
    "Topic authorization failed": TOPIC_REFUSED,
    "Group authorization failed": GROUP_REFUSED,
    # librdkafka shows FindCoordinator's error message when the broker gives one (logq does)
    "may not DESCRIBE GROUP:": GROUP_REFUSED,
}


class Kcat(MatrixClient):
    def __init__(self, login: Login, kcat: str) -> None:
        super().__init__(login)
        self.kcat = kcat

    def run(self, *args: str, stdin: str | None = None) -> str:
        login = self.login
        result = subprocess.run(
            [
                self.kcat, "-b", login.address, "-X", "security.protocol=SASL_SSL",
                "-X", f"ssl.ca.location={login.ca}", "-X", "sasl.mechanisms=SCRAM-SHA-256",
                "-X", f"sasl.username={login.user}", "-X", f"sasl.password={login.password}", *args,
            ],
            input=stdin, capture_output=True, text=True, timeout=DEADLINE_S, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            for phrase, code in KCAT_REFUSALS.items():
                if phrase in result.stderr:
                    raise RefusedError(code, result.stderr.strip())
            raise AssertionError(f"kcat failed without a refusal: {result.stderr}")
        return result.stdout

    def produce(self, queue: str, value: bytes) -> None:
        self.run("-P", "-t", queue, "-X", f"message.timeout.ms={SHORT_MS}", stdin=value.decode() + "\n")

    def consume(self, queue: str, group: str) -> list[bytes]:
        # -G: a balanced consumer in the group, which commits what it read (auto-commit at close)
        out = self.run(
            "-G", group, "-X", "auto.offset.reset=earliest", "-X", "enable.auto.commit=true", "-c", "1",
            "-q", "-f", "%s\n", queue,
        )  # fmt: skip
        return [line.encode() for line in out.splitlines()]

    def create(self, queue: str) -> None:
        """kcat has no admin API: it creates a queue by producing to it (auto-creation, which needs CREATE
        on the queue or the cluster)."""
        self.produce(queue, b"first")

    def delete(self, queue: str) -> None:
        raise NotImplementedError("kcat cannot delete a queue")


# --- logq's client ------------------------------------------------------------------------------------------


@contextmanager
def logq_refusals() -> Iterator[None]:
    try:
        yield
    except AuthorizationError as exc:
        raise RefusedError(int(exc.code), str(exc)) from None


class LogqClient(MatrixClient):
    def settings(self) -> dict[str, Any]:
        return {
            "security_protocol": "SASL_SSL",
            "ssl_cafile": str(self.login.ca),
            "sasl_mechanism": "SCRAM-SHA-256",
            "sasl_username": self.login.user,
            "sasl_password": self.login.password,
        }

    def produce(self, queue: str, value: bytes) -> None:
        with logq_refusals(), Producer(self.login.address, **self.settings()) as producer:
            producer.send(queue, value).result(timeout=DEADLINE_S)

    def consume(self, queue: str, group: str) -> list[bytes]:
        consumer = Consumer(
            self.login.address, group_id=group, auto_offset_reset="earliest", enable_auto_commit=False,
            **self.settings(),
        )  # fmt: skip
        try:
            with logq_refusals():
                consumer.subscribe([queue])
                deadline = time.monotonic() + DEADLINE_S
                while time.monotonic() < deadline:
                    values = [r.value for r in consumer.poll(timeout=1.0) if r.value is not None]
                    if values:
                        consumer.commit()
                        return values
            raise AssertionError(f"no record and no refusal from {queue} within {DEADLINE_S} s")
        finally:
            consumer.close()

    def create(self, queue: str) -> None:
        with logq_refusals(), Admin(self.login.address, **self.settings()) as admin:
            admin.create_queue(queue)

    def delete(self, queue: str) -> None:
        refusal: AuthorizationError | None = None
        with Admin(self.login.address, **self.settings()) as admin:
            allowed, reason = admin.may_delete_queue(queue)  # what the command line asks first
            try:
                admin.delete_queue(queue)
            except AuthorizationError as exc:
                refusal = exc
        assert allowed == (refusal is None), (
            f"may_delete_queue said {allowed} ({reason}), the broker {refusal}"
        )
        if refusal is not None:
            assert reason == str(refusal)  # the same line, whichever said it
            raise RefusedError(int(refusal.code), str(refusal))


# --- logq's command line ------------------------------------------------------------------------------------

CLI_REFUSALS = {
    "(TOPIC_AUTHORIZATION_FAILED)": TOPIC_REFUSED,
    "may not create queue": TOPIC_REFUSED,
    "may not delete queue": TOPIC_REFUSED,
    "may not DESCRIBE GROUP:": GROUP_REFUSED,
    "may not READ GROUP:": GROUP_REFUSED,
}


class LogqCli(MatrixClient):
    """``logq`` with the global security options (all of them spelt out), the password read from
    ``--password-file``."""

    last_output = ""

    def run(self, *args: str, stdin: str | None = None) -> str:
        login = self.login
        result = CliRunner().invoke(
            main,
            [
                "-b", login.address, "--security-protocol", "SASL_SSL", "--sasl-mechanism", "SCRAM-SHA-256",
                "--ca-file", str(login.ca), "--user", login.user, "--password-file", str(login.password_file),
                *args,
            ],
            input=stdin,
        )  # fmt: skip
        self.last_output = result.output
        if result.exit_code == 0:
            return result.stdout
        lines = result.output.strip().splitlines()
        assert lines, result.output
        assert lines[-1].startswith("Error: "), result.output  # one line, never a traceback
        assert "Traceback" not in result.output, result.output
        for phrase, code in CLI_REFUSALS.items():
            if phrase in lines[-1]:
                raise RefusedError(code, lines[-1])
        raise AssertionError(f"logq failed without a refusal: {result.output}")

    def produce(self, queue: str, value: bytes) -> None:
        self.run("produce", queue, stdin=value.decode() + "\n")

    def consume(self, queue: str, group: str) -> list[bytes]:
        out = self.run("consume", queue, "-g", group, "-e")
        return [line.encode() for line in out.splitlines()]

    def create(self, queue: str) -> None:
        self.run("queue", "create", queue)

    def delete(self, queue: str) -> None:
        self.run("admin", "delete-queue", queue, stdin="y\n")
