"""ACLs in a three-broker cluster on a real ZooKeeper: a change made through one broker is in force on the
others within a second, and produce through the leader follows it.

The brokers run with ``allow.everyone.if.no.acl.found``: a resource without ACLs is open, so the
unauthenticated test client (User:ANONYMOUS) may manage ACLs and the followers may replicate (no ACL is
put on the cluster resource here).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from logq.error_codes import ErrorCode
from logq.protocol import messages as m
from logq.security.acl import AclOperation, AclPermissionType, PatternType, ResourceType
from logq.testing import make_batch
from tests.broker.test_broker_basic import produce
from tests.cluster.conftest import Cluster, wait_for
from tests.wire_client import WireClient

SETTINGS = {"authorizer.enable": True, "allow.everyone.if.no.acl.found": True}
DENY_WRITE = m.AclCreation(
    resource_type=ResourceType.TOPIC,
    resource_name="acl-q",
    resource_pattern_type=PatternType.LITERAL,
    principal="User:*",
    host="*",
    operation=AclOperation.WRITE,
    permission_type=AclPermissionType.DENY,
)


@pytest.fixture(scope="module")
def acl_cluster(tmp_path_factory: pytest.TempPathFactory, zookeeper: str) -> Iterator[Cluster]:
    chroot = tmp_path_factory.mktemp("acl-cluster").name
    c = Cluster(tmp_path_factory.mktemp("acl-brokers"), f"{zookeeper}/logq-{chroot}", settings=SETTINGS)
    try:
        yield c.start()
    finally:
        c.stop()


def may_write(client: WireClient) -> bool:
    request = m.MetadataRequest(
        topics=[m.MetadataRequestTopic(name="acl-q")],
        allow_auto_topic_creation=False,
        include_topic_authorized_operations=True,
    )
    ops = client.call(request, 8).topics[0].topic_authorized_operations
    return bool(ops >> AclOperation.WRITE & 1)


def seconds_until(clients: dict[int, WireClient], writable: bool, limit: float = 5.0) -> dict[int, float]:
    """Per broker, how long after now its answer became ``writable`` (polled every 10 ms)."""
    started = time.monotonic()
    took: dict[int, float] = {}
    while len(took) < len(clients) and time.monotonic() - started < limit:
        for broker_id, client in clients.items():
            if broker_id not in took and may_write(client) == writable:
                took[broker_id] = time.monotonic() - started
        time.sleep(0.01)
    return took


def test_an_acl_change_on_one_broker_is_in_force_on_the_others_within_a_second(acl_cluster: Cluster) -> None:
    clients = {i: WireClient(b.bootstrap) for i, b in acl_cluster.brokers.items()}
    try:
        # No ACL on the cluster: open to all, queue creation and the followers' CLUSTER_ACTION alike.
        queue = m.CreatableTopic(name="acl-q", num_partitions=1, replication_factor=3)
        created = clients[1].call(m.CreateTopicsRequest(topics=[queue], timeout_ms=10_000), 4)
        assert created.topics[0].error_code == ErrorCode.NONE
        leader = wait_for(lambda: max(acl_cluster.leaders(1, "acl-q")), "a leader for acl-q")

        def replicated() -> bool:  # acks=all: the followers fetched it (a new leader may need a moment)
            return produce(clients[leader], "acl-q", make_batch(1)).error_code == ErrorCode.NONE

        wait_for(replicated, "a first acks=all produce")
        assert all(may_write(c) for c in clients.values())

        created = clients[1].call(m.CreateAclsRequest(creations=[DENY_WRITE]), 1)
        assert created.results[0].error_code == ErrorCode.NONE
        took = seconds_until({i: c for i, c in clients.items() if i != 1}, writable=False)
        assert not may_write(clients[1])  # in force on the writer when CreateAcls answered
        assert set(took) == {2, 3}, f"not in force everywhere within 5 s: {took}"
        assert max(took.values()) < 1.0, took
        refused = produce(clients[leader], "acl-q", make_batch(1))
        assert refused.error_code == ErrorCode.TOPIC_AUTHORIZATION_FAILED

        # Deleted through another broker: the first one follows as fast.
        delete = m.DeleteAclsFilter(
            resource_type_filter=ResourceType.TOPIC, resource_name_filter="acl-q",
            pattern_type_filter=PatternType.LITERAL, operation=AclOperation.ANY,
            permission_type=AclPermissionType.ANY,
        )  # fmt: skip
        deleted = clients[3].call(m.DeleteAclsRequest(filters=[delete]), 1)
        assert len(deleted.filter_results[0].matching_acls) == 1
        took = seconds_until({i: c for i, c in clients.items() if i != 3}, writable=True)
        assert set(took) == {1, 2}, f"not in force everywhere within 5 s: {took}"
        assert max(took.values()) < 1.0, took
        assert produce(clients[leader], "acl-q", make_batch(1)).error_code == ErrorCode.NONE
        listed = clients[2].call(
            m.DescribeAclsRequest(
                resource_type_filter=1, pattern_type_filter=1, operation=1, permission_type=1
            ),
            1,
        )
        assert listed.resources == []
    finally:
        for client in clients.values():
            client.close()
