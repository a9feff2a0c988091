"""DeleteGroups and OffsetDelete under ACLs, as Kafka checks them: DELETE on the group for both, READ on
each queue for OffsetDelete, before anything about the group or the queue is looked at."""

from __future__ import annotations

from pathlib import Path

from logq.error_codes import ErrorCode
from logq.protocol import messages as m
from tests.broker.test_authorization import GROUP, OP, TOPIC, commit, creation, grant, make_queue, revoke
from tests.broker.test_authorization import start_with_admin_acl as acl_broker
from tests.groups.test_group_deletion import codes_of, delete_groups, offset_delete
from tests.wire_client import WireClient


def test_deletions_need_delete_on_the_group_and_read_on_the_queue(tmp_path: Path) -> None:
    broker = acl_broker(tmp_path / "data")
    try:
        with WireClient(broker.bootstrap) as client:
            make_queue(client, "kept")
            grant(client, creation(GROUP, "old", OP.READ), creation(TOPIC, "kept", OP.READ))
            assert commit(client, "old", "kept") == ErrorCode.NONE
            # READ on the group is not enough; a group that does not exist is refused the same way
            assert delete_groups(client, "old", "never") == [
                ("old", ErrorCode.GROUP_AUTHORIZATION_FAILED),
                ("never", ErrorCode.GROUP_AUTHORIZATION_FAILED),
            ]
            refused = offset_delete(client, "old", {"kept": [0]})
            assert (refused.error_code, refused.topics) == (ErrorCode.GROUP_AUTHORIZATION_FAILED, [])

            grant(client, creation(GROUP, "old", OP.DELETE))
            revoke(client, creation(TOPIC, "kept", OP.READ))
            # without READ on a queue: refused whether or not the queue exists
            answer = offset_delete(client, "old", {"kept": [0], "secret": [0]})
            assert codes_of(answer) == {
                ("kept", 0): ErrorCode.TOPIC_AUTHORIZATION_FAILED,
                ("secret", 0): ErrorCode.TOPIC_AUTHORIZATION_FAILED,
            }
            grant(client, creation(TOPIC, "kept", OP.READ))
            assert codes_of(offset_delete(client, "old", {"kept": [0]})) == {("kept", 0): ErrorCode.NONE}
            # its only offset went, and a group of simple commits has nothing else stored: it is gone
            assert delete_groups(client, "old") == [("old", ErrorCode.GROUP_ID_NOT_FOUND)]
            assert commit(client, "old", "kept") == ErrorCode.NONE
            assert delete_groups(client, "old") == [("old", ErrorCode.NONE)]
            offsets = client.call(m.OffsetFetchRequest(group_id="old", topics=None), 5)
            assert offsets.topics == []
    finally:
        broker.kill()
