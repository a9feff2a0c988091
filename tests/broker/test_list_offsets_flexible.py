"""ListOffsets v6 (the first flexible version) and v7 (MAX_TIMESTAMP, KIP-734) over the wire."""

from __future__ import annotations

from logq import batch as rb
from logq.error_codes import ErrorCode
from logq.protocol import messages as m
from tests.broker.test_broker_basic import create, produce
from tests.broker_process import BrokerProcess
from tests.wire_client import WireClient

MAX_TIMESTAMP = -3


def batch_of(timestamps: list[int]) -> bytes:
    records = [rb.Record(value=b"v%d" % t, timestamp=t) for t in timestamps]
    return rb.build_batch(records, base_timestamp=timestamps[0])


def lookup(
    client: WireClient, queue: str, spec: int, version: int, partition: int = 0
) -> tuple[int, int, int]:
    wanted = m.ListOffsetsPartition(partition_index=partition, timestamp=spec)
    request = m.ListOffsetsRequest(
        isolation_level=1, topics=[m.ListOffsetsTopic(name=queue, partitions=[wanted])]
    )
    response = client.call(request, version)
    (topic,) = response.topics
    (found,) = topic.partitions
    return found.error_code, found.offset, found.timestamp


def test_max_timestamp_is_the_exact_record(broker: BrokerProcess) -> None:
    with WireClient(broker.bootstrap) as client:
        assert create(client, "times", 2) == 0
        assert lookup(client, "times", MAX_TIMESTAMP, 7) == (0, -1, -1)  # empty
        produce(client, "times", batch_of([1_000, 5_000, 9_000, 3_000]))  # 0-3: the max is offset 2
        produce(client, "times", batch_of([8_000, 2_000]))  # 4-5: newer, smaller
        assert lookup(client, "times", MAX_TIMESTAMP, 7) == (0, 2, 9_000)
        assert lookup(client, "times", MAX_TIMESTAMP, 7, partition=1) == (0, -1, -1)
        # the other specs at the flexible versions
        for version in (6, 7):
            assert lookup(client, "times", -2, version)[:2] == (0, 0)
            assert lookup(client, "times", -1, version)[:2] == (0, 6)
            assert lookup(client, "times", 6_000, version) == (0, 2, 9_000)
            assert lookup(client, "times", 9_001, version) == (0, -1, -1)
        # -3 is defined from v7: an older version asking for it is a bad request, as are -4 and -5
        assert lookup(client, "times", MAX_TIMESTAMP, 6)[0] == ErrorCode.INVALID_REQUEST
        assert lookup(client, "times", MAX_TIMESTAMP, 5)[0] == ErrorCode.INVALID_REQUEST
        assert lookup(client, "times", -4, 7)[0] == ErrorCode.INVALID_REQUEST
        assert (
            lookup(client, "times", MAX_TIMESTAMP, 7, partition=5)[0] == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        )


def test_api_versions_advertises_list_offsets_up_to_v7(broker: BrokerProcess) -> None:
    with WireClient(broker.bootstrap) as client:
        response = client.call(m.ApiVersionsRequest(), 2)
    (entry,) = [k for k in response.api_keys if k.api_key == 2]
    assert (entry.min_version, entry.max_version) == (1, 7)
