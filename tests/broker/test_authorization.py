"""Authorization on a real broker process, with exact requests: every API checks what Kafka checks, with
Kafka's error codes, before it looks at the resource; the ACL APIs; the bit fields of KIP-430.

Every client here is User:ANONYMOUS (no authentication yet). The module's broker was started once with
``super.users = User:ANONYMOUS`` to grant User:ANONYMOUS ALTER on the cluster (so the tests can manage
ACLs, and nothing else), then restarted without super users: the ACLs it stored decide from then on.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from logq.error_codes import ErrorCode
from logq.protocol import messages as m
from logq.protocol.primitives import INT32_MIN
from logq.security.acl import (
    CLUSTER_NAME,
    AclOperation,
    AclPermissionType,
    PatternType,
    ResourceType,
    operations_of_bitfield,
)
from logq.testing import make_batch
from tests.broker.test_broker_basic import create, fetch, produce
from tests.broker_process import BrokerProcess
from tests.wire_client import WireClient

OP = AclOperation
ALLOW, DENY = AclPermissionType.ALLOW, AclPermissionType.DENY
TOPIC, GROUP, CLUSTER = ResourceType.TOPIC, ResourceType.GROUP, ResourceType.CLUSTER
ME = "User:ANONYMOUS"
SETTINGS = {
    "authorizer.enable": True,
    "auto.create.queues": True,
    "delete.queue.enable": False,  # not consulted with an authorizer: DELETE on the queue decides
    "group.initial.rebalance.delay.ms": 0,
    "group.min.session.timeout.ms": 1000,
    "offsets.topic.num.partitions": 3,
}


def creation(
    rtype: ResourceType,
    name: str,
    op: AclOperation,
    permission: AclPermissionType = ALLOW,
    *,
    principal: str = ME,
    pattern: PatternType = PatternType.LITERAL,
    host: str = "*",
) -> m.AclCreation:
    return m.AclCreation(
        resource_type=rtype,
        resource_name=name,
        resource_pattern_type=pattern,
        principal=principal,
        host=host,
        operation=op,
        permission_type=permission,
    )


def grant(client: WireClient, *creations: m.AclCreation) -> None:
    response = client.call(m.CreateAclsRequest(creations=list(creations)), 1)
    assert [(r.error_code, r.error_message) for r in response.results] == [(0, None)] * len(creations)


def revoke(client: WireClient, *creations: m.AclCreation) -> None:
    filters = [
        m.DeleteAclsFilter(
            resource_type_filter=c.resource_type,
            resource_name_filter=c.resource_name,
            pattern_type_filter=c.resource_pattern_type,
            principal_filter=c.principal,
            host_filter=c.host,
            operation=c.operation,
            permission_type=c.permission_type,
        )
        for c in creations
    ]
    response = client.call(m.DeleteAclsRequest(filters=filters), 1)
    assert [len(r.matching_acls) for r in response.filter_results] == [1] * len(creations)


def start_with_admin_acl(data_dir: Path, **settings: Any) -> BrokerProcess:
    """A broker whose stored ACLs give User:ANONYMOUS ALTER on the cluster, and nothing else."""
    boot = BrokerProcess(data_dir, broker={**SETTINGS, **settings, "super.users": ME}).start()
    try:
        with WireClient(boot.bootstrap) as client:
            grant(client, creation(CLUSTER, CLUSTER_NAME, OP.ALTER))
    finally:
        assert boot.stop() == 0
    return BrokerProcess(data_dir, broker={**SETTINGS, **settings}).start()


@pytest.fixture(scope="module")
def acl_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    proc = start_with_admin_acl(tmp_path_factory.mktemp("acl") / "data")
    yield proc
    proc.kill()


@pytest.fixture
def client(acl_broker: BrokerProcess) -> Iterator[WireClient]:
    with WireClient(acl_broker.bootstrap) as c:
        yield c


def make_queue(client: WireClient, name: str, partitions: int = 1) -> None:
    """Create a queue with a CREATE ACL on it, taken back afterwards."""
    acl = creation(TOPIC, name, OP.CREATE)
    grant(client, acl)
    assert create(client, name, partitions) == ErrorCode.NONE
    revoke(client, acl)


def metadata(client: WireClient, names: Sequence[str] | None, *, version: int = 8, **flags: bool) -> Any:
    topics = None if names is None else [m.MetadataRequestTopic(name=n) for n in names]
    return client.call(m.MetadataRequest(topics=topics, allow_auto_topic_creation=False, **flags), version)


def topic_errors(response: Any) -> dict[str, int]:
    return {t.name: t.error_code for t in response.topics}


# --- Metadata ----------------------------------------------------------------------------------------


def test_metadata_lists_only_what_may_be_described_and_hides_existence(client: WireClient) -> None:
    make_queue(client, "md-visible")
    make_queue(client, "md-hidden")
    grant(client, creation(TOPIC, "md-visible", OP.READ))  # READ implies DESCRIBE
    listed = [t.name for t in metadata(client, None).topics]
    assert "md-visible" in listed
    assert "md-hidden" not in listed
    assert "__consumer_offsets" not in listed
    # Named: refused whether or not the queue exists, so a refusal says nothing of existence.
    assert topic_errors(metadata(client, ["md-visible", "md-hidden", "md-nothing"])) == {
        "md-visible": ErrorCode.NONE,
        "md-hidden": ErrorCode.TOPIC_AUTHORIZATION_FAILED,
        "md-nothing": ErrorCode.TOPIC_AUTHORIZATION_FAILED,
    }
    grant(client, creation(TOPIC, "md-n", OP.DESCRIBE, pattern=PatternType.PREFIXED))
    assert topic_errors(metadata(client, ["md-nothing"])) == {
        "md-nothing": ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    }


def test_auto_creation_needs_create(client: WireClient) -> None:
    grant(client, creation(TOPIC, "auto-", OP.DESCRIBE, pattern=PatternType.PREFIXED))
    asked = client.call(m.MetadataRequest(topics=[m.MetadataRequestTopic(name="auto-no")]), 8)
    assert topic_errors(asked) == {"auto-no": ErrorCode.TOPIC_AUTHORIZATION_FAILED}
    grant(client, creation(TOPIC, "auto-yes", OP.CREATE))
    asked = client.call(m.MetadataRequest(topics=[m.MetadataRequestTopic(name="auto-yes")]), 8)
    assert topic_errors(asked) == {"auto-yes": ErrorCode.NONE}
    assert len(asked.topics[0].partitions) == 1


def test_authorized_operations_are_the_real_bit_sets(client: WireClient) -> None:
    make_queue(client, "ops")
    grant(client, creation(TOPIC, "ops", OP.READ), creation(TOPIC, "ops", OP.DELETE))
    answer = metadata(
        client,
        ["ops", "ops-hidden"],
        include_topic_authorized_operations=True,
        include_cluster_authorized_operations=True,
    )
    by_name = {t.name: t for t in answer.topics}
    assert operations_of_bitfield(by_name["ops"].topic_authorized_operations) == {
        OP.READ,
        OP.DELETE,
        OP.DESCRIBE,
    }
    assert by_name["ops-hidden"].error_code == ErrorCode.TOPIC_AUTHORIZATION_FAILED
    assert by_name["ops-hidden"].topic_authorized_operations == 0
    # ALTER on the cluster (the fixture's ACL) implies DESCRIBE there.
    assert operations_of_bitfield(answer.cluster_authorized_operations) == {OP.ALTER, OP.DESCRIBE}
    unasked = metadata(client, ["ops"])
    assert unasked.topics[0].topic_authorized_operations == INT32_MIN
    assert unasked.cluster_authorized_operations == INT32_MIN


# --- Produce, Fetch, ListOffsets, InitProducerId -------------------------------------------------


def list_offsets(client: WireClient, queue: str) -> Any:
    request = m.ListOffsetsRequest(
        topics=[
            m.ListOffsetsTopic(
                name=queue, partitions=[m.ListOffsetsPartition(partition_index=0, timestamp=-1)]
            )
        ]
    )
    return client.call(request, 5).topics[0].partitions[0]


def test_produce_fetch_and_list_offsets_follow_the_acls(client: WireClient) -> None:
    make_queue(client, "data")
    assert produce(client, "data", make_batch(2)).error_code == ErrorCode.TOPIC_AUTHORIZATION_FAILED
    assert produce(client, "data-none", make_batch(2)).error_code == ErrorCode.TOPIC_AUTHORIZATION_FAILED
    assert fetch(client, "data", 0).error_code == ErrorCode.TOPIC_AUTHORIZATION_FAILED
    assert list_offsets(client, "data").error_code == ErrorCode.TOPIC_AUTHORIZATION_FAILED

    writes = creation(TOPIC, "data", OP.WRITE)
    grant(client, writes)
    assert produce(client, "data", make_batch(2)).error_code == ErrorCode.NONE
    assert list_offsets(client, "data").offset == 2  # WRITE implies DESCRIBE
    assert fetch(client, "data", 0).error_code == ErrorCode.TOPIC_AUTHORIZATION_FAILED  # not READ

    grant(client, creation(TOPIC, "data", OP.READ))
    got = fetch(client, "data", 0)
    assert (got.error_code, got.high_watermark) == (ErrorCode.NONE, 2)

    # A change is in force for the very next request (the cached decision is dropped).
    denied = creation(TOPIC, "data", OP.WRITE, DENY)
    grant(client, denied)
    assert produce(client, "data", make_batch(1)).error_code == ErrorCode.TOPIC_AUTHORIZATION_FAILED
    revoke(client, denied)
    assert produce(client, "data", make_batch(1)).base_offset == 2


def test_follower_fetch_needs_cluster_action(client: WireClient) -> None:
    make_queue(client, "replicated")
    grant(client, creation(TOPIC, "replicated", OP.READ))
    wanted = m.FetchPartition(partition=0, fetch_offset=0, partition_max_bytes=1 << 20)
    request = m.FetchRequest(
        replica_id=1, max_wait_ms=0, min_bytes=1, max_bytes=1 << 20,
        topics=[m.FetchTopic(topic="replicated", partitions=[wanted])],
    )  # fmt: skip
    answer = client.call(request, 11)
    assert answer.responses[0].partitions[0].error_code == ErrorCode.TOPIC_AUTHORIZATION_FAILED


def test_init_producer_id_needs_write_on_some_queue(tmp_path: Path) -> None:
    broker = start_with_admin_acl(tmp_path / "pid")
    try:
        with WireClient(broker.bootstrap) as c:
            request = m.InitProducerIdRequest(transactional_id=None, transaction_timeout_ms=1000)
            assert c.call(request, 1).error_code == ErrorCode.CLUSTER_AUTHORIZATION_FAILED
            grant(c, creation(TOPIC, "somewhere", OP.WRITE))  # KIP-679: any queue will do
            assert c.call(request, 1).error_code == ErrorCode.NONE
    finally:
        broker.kill()


# --- CreateTopics, DeleteTopics ----------------------------------------------------------------------


def test_create_needs_create_on_the_cluster_or_the_queue(client: WireClient) -> None:
    topic = m.CreatableTopic(name="made", num_partitions=1, replication_factor=1)
    refused = client.call(m.CreateTopicsRequest(topics=[topic], timeout_ms=5000), 4).topics[0]
    assert refused.error_code == ErrorCode.TOPIC_AUTHORIZATION_FAILED
    assert refused.error_message == (
        "User:ANONYMOUS may not create queue 'made' (needs CREATE on CLUSTER:kafka-cluster or on TOPIC:made)"
    )
    grant(client, creation(TOPIC, "mad", OP.CREATE, pattern=PatternType.PREFIXED))
    assert create(client, "made") == ErrorCode.NONE


def test_delete_needs_delete_on_the_queue_whatever_delete_queue_enable_says(client: WireClient) -> None:
    make_queue(client, "doomed")

    def delete(name: str) -> int:
        response = client.call(m.DeleteTopicsRequest(topic_names=[name], timeout_ms=5000), 3)
        return int(response.responses[0].error_code)

    assert delete("doomed") == ErrorCode.TOPIC_AUTHORIZATION_FAILED
    assert delete("never-was") == ErrorCode.TOPIC_AUTHORIZATION_FAILED
    grant(client, creation(TOPIC, "doomed", OP.DELETE), creation(TOPIC, "never-was", OP.DELETE))
    assert delete("never-was") == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    assert delete("doomed") == ErrorCode.NONE  # delete.queue.enable is false on this broker


# --- groups ----------------------------------------------------------------------------------------


def join(client: WireClient, group: str) -> Any:
    request = m.JoinGroupRequest(
        group_id=group, session_timeout_ms=6000, rebalance_timeout_ms=10_000, member_id="",
        protocol_type="consumer", protocols=[m.JoinGroupRequestProtocol(name="range", metadata=b"\x00\x00")],
    )  # fmt: skip
    return client.call(request, 5)


def commit(client: WireClient, group: str, queue: str) -> int:
    part = m.OffsetCommitRequestPartition(partition_index=0, committed_offset=1, committed_metadata="")
    request = m.OffsetCommitRequest(
        group_id=group, generation_id=-1, member_id="",
        topics=[m.OffsetCommitRequestTopic(name=queue, partitions=[part])],
    )  # fmt: skip
    return int(client.call(request, 7).topics[0].partitions[0].error_code)


def offset_fetch(client: WireClient, group: str, queue: str | None) -> Any:
    topics = None if queue is None else [m.OffsetFetchRequestTopic(name=queue, partition_indexes=[0])]
    return client.call(m.OffsetFetchRequest(group_id=group, topics=topics), 5)


def test_groups_need_read_on_the_group_and_commits_read_on_the_queue(client: WireClient) -> None:
    make_queue(client, "grouped")
    found = client.call(m.FindCoordinatorRequest(key="billing", key_type=0), 2)
    assert found.error_code == ErrorCode.GROUP_AUTHORIZATION_FAILED
    assert join(client, "billing").error_code == ErrorCode.GROUP_AUTHORIZATION_FAILED
    assert commit(client, "billing", "grouped") == ErrorCode.GROUP_AUTHORIZATION_FAILED
    assert offset_fetch(client, "billing", "grouped").error_code == ErrorCode.GROUP_AUTHORIZATION_FAILED

    grant(client, creation(GROUP, "billing", OP.READ))
    assert client.call(m.FindCoordinatorRequest(key="billing", key_type=0), 2).error_code == ErrorCode.NONE
    assert commit(client, "billing", "grouped") == ErrorCode.TOPIC_AUTHORIZATION_FAILED
    assert commit(client, "billing", "grouped-none") == ErrorCode.TOPIC_AUTHORIZATION_FAILED
    grant(client, creation(TOPIC, "grouped", OP.READ))
    assert commit(client, "billing", "grouped") == ErrorCode.NONE
    assert offset_fetch(client, "billing", "grouped").topics[0].partitions[0].committed_offset == 1

    # Without DESCRIBE on the queue, its committed offsets are hidden: refused when named, left out of
    # the all-queues answer.
    revoke(client, creation(TOPIC, "grouped", OP.READ))
    named = offset_fetch(client, "billing", "grouped").topics[0].partitions[0]
    assert (named.error_code, named.committed_offset) == (ErrorCode.TOPIC_AUTHORIZATION_FAILED, -1)
    assert offset_fetch(client, "billing", None).topics == []


def test_describe_groups_answers_its_authorized_operations(client: WireClient) -> None:
    grant(client, creation(GROUP, "described", OP.READ))
    answer = client.call(
        m.DescribeGroupsRequest(groups=["described", "secret"], include_authorized_operations=True), 4
    )
    by_id = {g.group_id: g for g in answer.groups}
    assert by_id["described"].error_code == ErrorCode.NONE
    assert operations_of_bitfield(by_id["described"].authorized_operations) == {OP.READ, OP.DESCRIBE}
    assert by_id["secret"].error_code == ErrorCode.GROUP_AUTHORIZATION_FAILED
    unasked = client.call(m.DescribeGroupsRequest(groups=["described"]), 4)
    assert unasked.groups[0].authorized_operations == INT32_MIN


def test_list_groups_without_describe_on_the_cluster_shows_only_describable_groups(tmp_path: Path) -> None:
    """With allow.everyone.if.no.acl.found, resources without ACLs are open: the client itself grants and
    denies, then loses DESCRIBE on the cluster (and with it ALTER: the cluster now has an ACL)."""
    broker = BrokerProcess(
        tmp_path / "open", broker={**SETTINGS, "allow.everyone.if.no.acl.found": True}
    ).start()
    try:
        with WireClient(broker.bootstrap) as c:
            assert create(c, "open") == ErrorCode.NONE
            for group in ("g-seen", "g-unseen"):
                assert commit(c, group, "open") == ErrorCode.NONE
            listed = c.call(m.ListGroupsRequest(), 2)
            assert {g.group_id for g in listed.groups} == {"g-seen", "g-unseen"}
            grant(
                c,
                creation(GROUP, "g-unseen", OP.DESCRIBE, DENY),
                creation(CLUSTER, CLUSTER_NAME, OP.DESCRIBE, DENY),
            )
            listed = c.call(m.ListGroupsRequest(), 2)
            assert [g.group_id for g in listed.groups] == ["g-seen"]
            refused = c.call(m.CreateAclsRequest(creations=[creation(TOPIC, "x", OP.READ)]), 1).results[0]
            assert refused.error_code == ErrorCode.CLUSTER_AUTHORIZATION_FAILED
    finally:
        broker.kill()


# --- DescribeConfigs, DescribeLogDirs ----------------------------------------------------------------


def test_describe_apis_need_their_operations(client: WireClient) -> None:
    make_queue(client, "configured")
    resources = [
        m.DescribeConfigsResource(resource_type=2, resource_name="configured"),
        m.DescribeConfigsResource(resource_type=4, resource_name="0"),
    ]
    answer = client.call(m.DescribeConfigsRequest(resources=resources), 3)
    assert [r.error_code for r in answer.results] == [
        ErrorCode.TOPIC_AUTHORIZATION_FAILED,
        ErrorCode.CLUSTER_AUTHORIZATION_FAILED,
    ]
    assert answer.results[1].error_message == "User:ANONYMOUS may not DESCRIBE_CONFIGS CLUSTER:kafka-cluster"
    grant(client, creation(TOPIC, "configured", OP.DESCRIBE_CONFIGS))
    answer = client.call(m.DescribeConfigsRequest(resources=resources[:1]), 3)
    assert answer.results[0].error_code == ErrorCode.NONE
    # DescribeLogDirs needs DESCRIBE on the cluster: ALTER (the fixture's) implies it.
    dirs = client.call(m.DescribeLogDirsRequest(topics=None), 1)
    assert [r.error_code for r in dirs.results] == [ErrorCode.NONE]


# --- CreatePartitions -------------------------------------------------------------------------------


def test_growing_a_queue_needs_alter_on_it(client: WireClient) -> None:
    make_queue(client, "growing")
    grow = m.CreatePartitionsRequest(
        topics=[m.CreatePartitionsTopic(name="growing", count=2, assignments=None)], timeout_ms=5000
    )
    refused = client.call(grow, 1).results[0]
    assert (refused.error_code, refused.error_message) == (
        ErrorCode.TOPIC_AUTHORIZATION_FAILED,
        "User:ANONYMOUS may not ALTER TOPIC:growing",
    )
    grant(client, creation(TOPIC, "growing", OP.ALTER))
    assert client.call(grow, 1).results[0].error_code == ErrorCode.NONE


def test_alter_configs_needs_alter_configs_on_the_queue_or_the_cluster(client: WireClient) -> None:
    make_queue(client, "alterable")

    def alter(version: int = 1) -> list[int]:
        resources = [
            m.AlterConfigsResource(
                resource_type=2,
                resource_name=name,
                configs=[m.AlterableConfig(name="retention.ms", value="1000")],
            )
            for name in ("alterable", "no-such-queue")
        ] + [m.AlterConfigsResource(resource_type=4, resource_name="", configs=[])]
        return [
            r.error_code for r in client.call(m.AlterConfigsRequest(resources=resources), version).responses
        ]

    def incremental() -> list[int]:
        resources = [
            m.IncrementalAlterConfigsResource(
                resource_type=2,
                resource_name="alterable",
                configs=[m.IncrementalAlterableConfig(name="retention.ms", config_operation=0, value="2000")],
            ),
            m.IncrementalAlterConfigsResource(resource_type=4, resource_name="0", configs=[]),
        ]
        request = m.IncrementalAlterConfigsRequest(resources=resources)
        return [r.error_code for r in client.call(request, 1).responses]

    # refused before the queue is looked up (an unknown one is refused the same); ALTER on the cluster
    # (the fixture's) does not imply ALTER_CONFIGS
    refused = [ErrorCode.TOPIC_AUTHORIZATION_FAILED, ErrorCode.TOPIC_AUTHORIZATION_FAILED]
    assert alter() == [*refused, ErrorCode.CLUSTER_AUTHORIZATION_FAILED]
    assert incremental() == [ErrorCode.TOPIC_AUTHORIZATION_FAILED, ErrorCode.CLUSTER_AUTHORIZATION_FAILED]
    queue_acl, cluster_acl = (
        creation(TOPIC, "alterable", OP.ALTER_CONFIGS),
        creation(CLUSTER, CLUSTER_NAME, OP.ALTER_CONFIGS),
    )
    grant(client, queue_acl, cluster_acl)
    try:
        assert alter(0) == [ErrorCode.NONE, ErrorCode.TOPIC_AUTHORIZATION_FAILED, ErrorCode.NONE]
        assert incremental() == [ErrorCode.NONE, ErrorCode.NONE]
    finally:
        revoke(client, queue_acl, cluster_acl)


# --- the ACL APIs ------------------------------------------------------------------------------------


def test_acl_apis_validate_and_describe_with_kafkas_filters(client: WireClient) -> None:
    bad = [
        creation(CLUSTER, "main", OP.ALTER),
        creation(TOPIC, "a/b", OP.READ),
        creation(TOPIC, "x", OP.ANY),
        creation(TOPIC, "x", OP.READ, principal="alice"),
        m.AclCreation(
            resource_type=99, resource_name="x", principal=ME, host="*", operation=3, permission_type=3
        ),
    ]
    results = client.call(m.CreateAclsRequest(creations=bad), 1).results
    assert [r.error_code for r in results] == [ErrorCode.INVALID_REQUEST] * len(bad)
    assert "kafka-cluster" in (results[0].error_message or "")
    assert "TYPE:NAME" in (results[3].error_message or "")

    grant(
        client,
        creation(TOPIC, "filt", OP.READ, principal="User:f1"),
        creation(TOPIC, "fi", OP.WRITE, principal="User:f2", pattern=PatternType.PREFIXED),
    )
    match = m.DescribeAclsRequest(
        resource_type_filter=TOPIC, resource_name_filter="filt", pattern_type_filter=PatternType.MATCH,
        operation=OP.ANY, permission_type=AclPermissionType.ANY,
    )  # fmt: skip
    described = client.call(match, 1)
    assert described.error_code == ErrorCode.NONE
    assert {(r.resource_name, r.pattern_type, r.acls[0].principal) for r in described.resources} == {
        ("filt", PatternType.LITERAL, "User:f1"),
        ("fi", PatternType.PREFIXED, "User:f2"),
    }
    v0 = m.DescribeAclsRequest(
        resource_type_filter=TOPIC,
        resource_name_filter="fi",
        operation=OP.ANY,
        permission_type=AclPermissionType.ANY,
    )
    assert client.call(v0, 0).resources == []  # v0 knows LITERAL patterns only
    unknown = m.DescribeAclsRequest(
        resource_type_filter=TOPIC, operation=0, permission_type=AclPermissionType.ANY
    )
    assert client.call(unknown, 1).error_code == ErrorCode.INVALID_REQUEST


def test_without_an_authorizer_the_acl_apis_answer_security_disabled(broker: BrokerProcess) -> None:
    with WireClient(broker.bootstrap) as c:
        created = c.call(m.CreateAclsRequest(creations=[creation(TOPIC, "x", OP.READ)]), 1).results[0]
        assert created.error_code == ErrorCode.SECURITY_DISABLED
        assert "authorizer.enable" in (created.error_message or "")
        listed = c.call(m.DescribeAclsRequest(resource_type_filter=1, operation=1, permission_type=1), 1)
        assert listed.error_code == ErrorCode.SECURITY_DISABLED
        deleted = c.call(m.DeleteAclsRequest(filters=[m.DeleteAclsFilter(resource_type_filter=1)]), 1)
        assert deleted.filter_results[0].error_code == ErrorCode.SECURITY_DISABLED
        # ... and everything else behaves as before: all operations in the bit fields.
        assert create(c, "free") == ErrorCode.NONE
        answer = metadata(c, ["free"], include_topic_authorized_operations=True)
        assert operations_of_bitfield(answer.topics[0].topic_authorized_operations) == {
            OP.READ, OP.WRITE, OP.CREATE, OP.DESCRIBE, OP.DELETE, OP.ALTER, OP.DESCRIBE_CONFIGS,
            OP.ALTER_CONFIGS,
        }  # fmt: skip


def test_without_alter_on_the_cluster_acls_cannot_be_managed(tmp_path: Path) -> None:
    broker = BrokerProcess(tmp_path / "closed", broker=SETTINGS).start()
    try:
        with WireClient(broker.bootstrap) as c:
            created = c.call(m.CreateAclsRequest(creations=[creation(CLUSTER, CLUSTER_NAME, OP.ALTER)]), 1)
            assert created.results[0].error_code == ErrorCode.CLUSTER_AUTHORIZATION_FAILED
            assert created.results[0].error_message == "User:ANONYMOUS may not ALTER CLUSTER:kafka-cluster"
            listed = c.call(m.DescribeAclsRequest(resource_type_filter=1, operation=1, permission_type=1), 1)
            assert listed.error_code == ErrorCode.CLUSTER_AUTHORIZATION_FAILED
            # DescribeLogDirs v0-1 has no error field: refused means an empty answer, as in Kafka.
            assert c.call(m.DescribeLogDirsRequest(topics=None), 1).results == []
    finally:
        broker.kill()


def test_super_users_bypass_even_a_deny(tmp_path: Path) -> None:
    broker = BrokerProcess(tmp_path / "super", broker={**SETTINGS, "super.users": f"User:admin;{ME}"}).start()
    try:
        with WireClient(broker.bootstrap) as c:
            grant(c, creation(TOPIC, "*", OP.ALL, DENY, principal="User:*"))
            assert create(c, "anything") == ErrorCode.NONE
            assert produce(c, "anything", make_batch(1)).error_code == ErrorCode.NONE
        assert "every unauthenticated client is a super user" in broker.log_text
    finally:
        broker.kill()
