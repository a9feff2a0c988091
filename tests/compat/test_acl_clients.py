"""ACLs with real Kafka clients: confluent-kafka's AdminClient manages them; produce, consume and groups are
refused with the error each client surfaces (confluent-kafka, kafka-python, kcat), then allowed once
granted. Every client is User:ANONYMOUS; the broker's stored ACLs give it ALTER on the cluster only
(tests/broker/test_authorization.py, ``start_with_admin_acl``)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicCollection, TopicPartition
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # not in its __all__
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer  # type: ignore[import-untyped]
from kafka.errors import (  # type: ignore[import-untyped]
    GroupAuthorizationFailedError,
    TopicAuthorizationFailedError,
)

from tests.broker.test_authorization import start_with_admin_acl
from tests.broker_process import BrokerProcess
from tests.compat.helpers import DEADLINE_S

ME = "User:ANONYMOUS"
ANY = AclBindingFilter(
    ResourceType.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY, AclPermissionType.ANY
)


@pytest.fixture(scope="module")
def acl_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    proc = start_with_admin_acl(tmp_path_factory.mktemp("acl-compat") / "data")
    yield proc
    proc.kill()


@pytest.fixture
def admin(acl_broker: BrokerProcess) -> AdminClient:
    return AdminClient({"bootstrap.servers": acl_broker.bootstrap})


def acl(
    rtype: ResourceType,
    name: str,
    op: AclOperation,
    permission: AclPermissionType = AclPermissionType.ALLOW,
    *,
    principal: str = ME,
    pattern: ResourcePatternType = ResourcePatternType.LITERAL,
) -> AclBinding:
    return AclBinding(rtype, name, pattern, principal, "*", op, permission)


def grant(admin: AdminClient, *bindings: AclBinding) -> None:
    for future in admin.create_acls(list(bindings), request_timeout=DEADLINE_S).values():
        assert future.result() is None


def make_queue(admin: AdminClient, name: str) -> None:
    grant(admin, acl(ResourceType.TOPIC, name, AclOperation.CREATE))
    admin.create_topics([NewTopic(name, 1, 1)])[name].result(DEADLINE_S)


def test_admin_client_creates_describes_and_deletes_acls(admin: AdminClient) -> None:
    literal = acl(ResourceType.TOPIC, "ck-orders", AclOperation.READ, principal="User:alice")
    prefixed = acl(
        ResourceType.GROUP, "ck-", AclOperation.ALL, AclPermissionType.DENY,
        principal="User:mallory", pattern=ResourcePatternType.PREFIXED,
    )  # fmt: skip
    grant(admin, literal, prefixed)
    everything = admin.describe_acls(ANY, request_timeout=DEADLINE_S).result()
    assert {literal, prefixed} <= set(everything)
    match = AclBindingFilter(
        ResourceType.GROUP, "ck-billing", ResourcePatternType.MATCH, None, None, AclOperation.ANY,
        AclPermissionType.ANY,
    )  # fmt: skip
    assert admin.describe_acls(match, request_timeout=DEADLINE_S).result() == [prefixed]

    bad = acl(ResourceType.BROKER, "main", AclOperation.ALTER, principal="User:alice")
    with pytest.raises(KafkaException) as refused:
        admin.create_acls([bad], request_timeout=DEADLINE_S)[bad].result()
    assert refused.value.args[0].code() == KafkaError.INVALID_REQUEST
    assert "kafka-cluster" in refused.value.args[0].str()

    by_principal = AclBindingFilter(
        ResourceType.ANY, None, ResourcePatternType.ANY, "User:alice", None, AclOperation.ANY,
        AclPermissionType.ANY,
    )  # fmt: skip
    deleted = admin.delete_acls([by_principal, match], request_timeout=DEADLINE_S)
    assert deleted[by_principal].result() == [literal]
    assert deleted[match].result() == [prefixed]
    assert not {literal, prefixed} & set(admin.describe_acls(ANY, request_timeout=DEADLINE_S).result())


def test_admin_client_create_and_delete_topics_need_their_acls(admin: AdminClient) -> None:
    with pytest.raises(KafkaException) as refused:
        admin.create_topics([NewTopic("ck-new", 1, 1)])["ck-new"].result(DEADLINE_S)
    assert refused.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    make_queue(admin, "ck-new")
    with pytest.raises(KafkaException) as refused:
        admin.delete_topics(["ck-new"])["ck-new"].result(DEADLINE_S)
    assert refused.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    grant(admin, acl(ResourceType.TOPIC, "ck-new", AclOperation.DELETE))
    admin.delete_topics(["ck-new"])["ck-new"].result(DEADLINE_S)


def confluent_poll(consumer: Consumer, seconds: float = 10) -> tuple[list[int], list[bytes]]:
    """Poll until a message or a fatal error comes (at most ``seconds``): the error codes and values."""
    errors: list[int] = []
    values: list[bytes] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        msg = consumer.poll(0.2)
        if msg is None:
            continue
        if msg.error() is None:
            values.append(msg.value())
            break
        errors.append(msg.error().code())
        if not msg.error().retriable():
            break
    return errors, values


def test_confluent_kafka_refused_per_acl_then_allowed(acl_broker: BrokerProcess, admin: AdminClient) -> None:
    make_queue(admin, "ck-data")
    delivered: list[Any] = []
    producer = Producer({"bootstrap.servers": acl_broker.bootstrap, "message.timeout.ms": 10_000})
    producer.produce("ck-data", b"refused", on_delivery=lambda err, _msg: delivered.append(err))
    producer.flush(DEADLINE_S)
    assert [e.code() for e in delivered] == [KafkaError.TOPIC_AUTHORIZATION_FAILED]

    grant(admin, acl(ResourceType.TOPIC, "ck-data", AclOperation.WRITE))
    producer = Producer({"bootstrap.servers": acl_broker.bootstrap})
    producer.produce("ck-data", b"accepted")
    assert producer.flush(DEADLINE_S) == 0

    settings = {
        "bootstrap.servers": acl_broker.bootstrap, "group.id": "ck-group", "auto.offset.reset": "earliest",
        "session.timeout.ms": 6000,
    }  # fmt: skip
    consumer = Consumer(settings)
    consumer.subscribe(["ck-data"])
    try:
        errors, _ = confluent_poll(consumer)
    finally:
        consumer.close()
    assert KafkaError.GROUP_AUTHORIZATION_FAILED in errors

    grant(admin, acl(ResourceType.GROUP, "ck-group", AclOperation.READ))
    consumer = Consumer(settings)
    consumer.subscribe(["ck-data"])
    try:
        errors, _ = confluent_poll(consumer)
    finally:
        consumer.close()
    assert KafkaError.TOPIC_AUTHORIZATION_FAILED in errors  # may WRITE, may not READ

    grant(admin, acl(ResourceType.TOPIC, "ck-data", AclOperation.READ))
    consumer = Consumer(settings)
    consumer.subscribe(["ck-data"])
    try:
        errors, values = confluent_poll(consumer, DEADLINE_S)
    finally:
        consumer.close()
    assert values == [b"accepted"]


def test_kafka_python_refused_per_acl_then_allowed(acl_broker: BrokerProcess, admin: AdminClient) -> None:
    make_queue(admin, "kp-data")
    # WRITE on another queue: the (idempotent) producer gets its id, this queue stays refused.
    grant(admin, acl(ResourceType.TOPIC, "kp-elsewhere", AclOperation.WRITE))
    producer = KafkaProducer(bootstrap_servers=acl_broker.bootstrap, max_block_ms=10_000)
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            producer.send("kp-data", b"refused").get(timeout=DEADLINE_S)
    finally:
        producer.close(timeout=5)
    grant(admin, acl(ResourceType.TOPIC, "kp-data", AclOperation.WRITE))
    producer = KafkaProducer(bootstrap_servers=acl_broker.bootstrap, max_block_ms=10_000)
    try:
        assert producer.send("kp-data", b"accepted").get(timeout=DEADLINE_S).offset == 0
    finally:
        producer.close(timeout=5)

    def consumer() -> Any:
        return KafkaConsumer(
            "kp-data", bootstrap_servers=acl_broker.bootstrap, group_id="kp-group",
            auto_offset_reset="earliest", session_timeout_ms=6000, heartbeat_interval_ms=1000,
        )  # fmt: skip

    refused = consumer()
    try:
        with pytest.raises(GroupAuthorizationFailedError):
            refused.poll(timeout_ms=10_000)
    finally:
        refused.close()
    grant(
        admin,
        acl(ResourceType.GROUP, "kp-group", AclOperation.READ),
        acl(ResourceType.TOPIC, "kp-data", AclOperation.READ),
    )
    allowed = consumer()
    try:
        values: list[bytes] = []
        deadline = time.monotonic() + DEADLINE_S
        while not values and time.monotonic() < deadline:
            for records in allowed.poll(timeout_ms=1000).values():
                values += [r.value for r in records]
        assert values == [b"accepted"]
    finally:
        allowed.close()


def test_kcat_refused_per_acl_then_allowed(acl_broker: BrokerProcess, admin: AdminClient, kcat: str) -> None:
    make_queue(admin, "kc-data")

    def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [kcat, "-b", acl_broker.bootstrap, "-t", "kc-data", "-X", "message.timeout.ms=10000", *args],
            check=False, input=stdin, capture_output=True, timeout=DEADLINE_S,
        )  # fmt: skip

    produced = run("-P", stdin=b"refused\n")
    assert produced.returncode != 0
    assert b"Topic authorization failed" in produced.stderr
    consumed = run("-C", "-o", "beginning", "-e")
    assert consumed.returncode != 0
    assert b"Topic authorization failed" in consumed.stderr

    grant(
        admin,
        acl(ResourceType.TOPIC, "kc-data", AclOperation.WRITE),
        acl(ResourceType.TOPIC, "kc-data", AclOperation.READ),
    )
    assert run("-P", stdin=b"accepted\n").returncode == 0
    consumed = run("-C", "-o", "beginning", "-e")
    assert consumed.returncode == 0, consumed.stderr
    assert consumed.stdout.split() == [b"accepted"]


def test_clients_see_the_filtered_listing_and_the_authorized_operations(
    acl_broker: BrokerProcess, admin: AdminClient
) -> None:
    make_queue(admin, "ops-visible")
    make_queue(admin, "ops-hidden")
    grant(
        admin,
        acl(ResourceType.TOPIC, "ops-visible", AclOperation.READ),
        acl(ResourceType.TOPIC, "ops-visible", AclOperation.WRITE),
        acl(ResourceType.GROUP, "ops-group", AclOperation.READ),
    )
    listed = admin.list_topics(timeout=DEADLINE_S).topics
    assert "ops-visible" in listed
    assert "ops-hidden" not in listed

    topic = admin.describe_topics(TopicCollection(["ops-visible"]), include_authorized_operations=True)
    operations = topic["ops-visible"].result(DEADLINE_S).authorized_operations
    assert set(operations) == {
        AclOperation.READ,
        AclOperation.WRITE,
        AclOperation.CREATE,
        AclOperation.DESCRIBE,
    }
    described = KafkaAdminClient(bootstrap_servers=acl_broker.bootstrap)
    try:
        (kp_topic,) = described.describe_topics(["ops-visible"])
        assert set(kp_topic["authorized_operations"]) == {"READ", "WRITE", "CREATE", "DESCRIBE"}
    finally:
        described.close()

    consumer = Consumer({"bootstrap.servers": acl_broker.bootstrap, "group.id": "ops-group"})
    try:
        consumer.commit(offsets=[TopicPartition("ops-visible", 0, 0)], asynchronous=False)
    finally:
        consumer.close()
    group = admin.describe_consumer_groups(["ops-group"], include_authorized_operations=True)
    assert set(group["ops-group"].result(DEADLINE_S).authorized_operations) == {
        AclOperation.READ,
        AclOperation.DESCRIBE,
    }
