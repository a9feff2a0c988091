"""Client quotas against a real broker process: DescribeClientQuotas (48) / AlterClientQuotas (49) v0
over the wire, stored in coordinator.json across a restart, and enforced (KIP-219): a client over its
producer_byte_rate or consumer_byte_rate gets throttle_time_ms at once and its connection is muted."""

from __future__ import annotations

import time

from logq.error_codes import ErrorCode
from logq.protocol import messages as m
from logq.protocol.client import decode_response_as
from logq.testing.batches import make_batch
from tests.broker_process import BrokerProcess
from tests.wire_client import WireClient

QUEUE = "quota-q"


def part(kind: str, name: str | None) -> m.ClientQuotaEntityPart:
    return m.ClientQuotaEntityPart(entity_type=kind, entity_name=name)


def alter(
    client: WireClient,
    entity: list[m.ClientQuotaEntityPart],
    ops: dict[str, float | None],
    validate_only: bool = False,
) -> m.AlterClientQuotasEntryResult:
    req = m.AlterClientQuotasRequest(
        entries=[
            m.AlterClientQuotasEntry(
                entity=entity,
                ops=[m.AlterClientQuotasOp(key=k, value=v or 0.0, remove=v is None) for k, v in ops.items()],
            )
        ],
        validate_only=validate_only,
    )
    resp = client.call(req, 0)
    assert len(resp.entries) == 1
    result: m.AlterClientQuotasEntryResult = resp.entries[0]
    return result


def describe(
    client: WireClient, components: list[m.ClientQuotaFilterComponent], strict: bool = False
) -> m.DescribeClientQuotasResponse:
    resp: m.DescribeClientQuotasResponse = client.call(
        m.DescribeClientQuotasRequest(components=components, strict=strict), 0
    )
    return resp


def listed(
    resp: m.DescribeClientQuotasResponse,
) -> dict[tuple[tuple[str, str | None], ...], dict[str, float]]:
    assert resp.error_code == ErrorCode.NONE, resp.error_message
    assert resp.entries is not None
    return {
        tuple((p.entity_type, p.entity_name) for p in e.entity): {v.key: v.value for v in e.values}
        for e in resp.entries
    }


ANY_USER = m.ClientQuotaFilterComponent(entity_type="user", match_type=2)


def test_quotas_are_altered_described_and_kept_across_a_restart(broker: BrokerProcess) -> None:
    with WireClient(broker.bootstrap) as c:
        ok = alter(c, [part("user", "alice"), part("client-id", "app")], {"producer_byte_rate": 1024})
        assert ok.error_code == ErrorCode.NONE, ok.error_message
        assert alter(c, [part("user", None)], {"consumer_byte_rate": 2048}).error_code == 0
        assert alter(c, [part("client-id", "cli")], {"request_percentage": 50.5}).error_code == 0
        # validate_only checks and writes nothing
        assert alter(c, [part("user", "bob")], {"producer_byte_rate": 5}, validate_only=True).error_code == 0

        everything = listed(describe(c, []))
        assert everything == {
            (("user", "alice"), ("client-id", "app")): {"producer_byte_rate": 1024.0},
            (("user", None),): {"consumer_byte_rate": 2048.0},
            (("client-id", "cli"),): {"request_percentage": 50.5},
        }
        # any user, not strict: both user entities; strict: only the entity that is a user alone
        assert set(listed(describe(c, [ANY_USER]))) == {
            (("user", "alice"), ("client-id", "app")),
            (("user", None),),
        }
        assert set(listed(describe(c, [ANY_USER], strict=True))) == {(("user", None),)}
        default_user = m.ClientQuotaFilterComponent(entity_type="user", match_type=1)
        assert set(listed(describe(c, [default_user]))) == {(("user", None),)}
        exact = m.ClientQuotaFilterComponent(entity_type="client-id", match_type=0, match="app")
        assert set(listed(describe(c, [exact]))) == {(("user", "alice"), ("client-id", "app"))}

        # removing the last key removes the entity
        assert alter(c, [part("client-id", "cli")], {"request_percentage": None}).error_code == 0
    broker.restart()
    with WireClient(broker.bootstrap) as c:
        assert set(listed(describe(c, []))) == {
            (("user", "alice"), ("client-id", "app")),
            (("user", None),),
        }


def test_bad_quota_entries_are_invalid_request_and_change_nothing(broker: BrokerProcess) -> None:
    with WireClient(broker.bootstrap) as c:
        bad = [
            ([part("user", "a")], {"no_such_key": 1.0}),
            ([part("user", "a")], {"producer_byte_rate": 0.0}),
            ([part("user", "a")], {"producer_byte_rate": 1.5}),
            ([part("ip", "127.0.0.1")], {"producer_byte_rate": 10.0}),
            ([part("user", "a"), part("user", "b")], {"producer_byte_rate": 10.0}),
            ([], {"producer_byte_rate": 10.0}),
            ([part("user", "")], {"producer_byte_rate": 10.0}),
        ]
        for entity, ops in bad:
            result = alter(c, entity, ops)
            assert result.error_code == ErrorCode.INVALID_REQUEST, (entity, ops)
            assert result.error_message
        assert listed(describe(c, [])) == {}
        # a bad filter fails the whole describe
        exact_without_name = m.ClientQuotaFilterComponent(entity_type="user", match_type=0)
        resp = describe(c, [exact_without_name])
        assert resp.error_code == ErrorCode.INVALID_REQUEST
        assert resp.entries is None


def produce_request(payload: int) -> m.ProduceRequest:
    batch = make_batch(1, value_size=payload)
    return m.ProduceRequest(
        acks=1,
        timeout_ms=5000,
        topic_data=[
            m.TopicProduceData(name=QUEUE, partition_data=[m.PartitionProduceData(index=0, records=batch)])
        ],
    )


def test_a_producer_over_its_byte_rate_is_throttled_and_muted(broker: BrokerProcess) -> None:
    with WireClient(broker.bootstrap) as c:
        created = c.call(
            m.CreateTopicsRequest(
                topics=[m.CreatableTopic(name=QUEUE, num_partitions=1, replication_factor=1)],
                timeout_ms=10000,
            ),
            4,
        )
        assert created.topics[0].error_code == 0
        # the wire client's client id; ANONYMOUS is the user on a PLAINTEXT listener
        entity = [part("user", "ANONYMOUS"), part("client-id", "wire-test")]
        assert alter(c, entity, {"producer_byte_rate": 10_000}).error_code == 0
        # 10,000 B/s measured over at least 10 s: 150 KB is well over it
        first = c.call(produce_request(150_000), 8)
        assert first.responses[0].partition_responses[0].error_code == 0
        throttle_ms = first.throttle_time_ms
        assert throttle_ms > 1000
        # muted: the next request is not read until the throttle time has passed
        started = time.monotonic()
        c.call(m.ApiVersionsRequest(), 0)
        assert time.monotonic() - started >= throttle_ms / 1000 * 0.9
    # another client id of the same user has no quota: not throttled
    with WireClient(broker.bootstrap) as other:
        other.send(produce_request(150_000), 8, client_id="unlimited")
        _, resp = decode_response_as(other.read_frame(), m.ProduceResponse, 8)
        assert resp.responses[0].partition_responses[0].error_code == 0
        assert resp.throttle_time_ms == 0


def test_a_client_over_its_request_percentage_is_throttled(broker: BrokerProcess) -> None:
    with WireClient(broker.bootstrap, timeout=30) as c:
        # 1% of one thread: 10 ms of handling a second, 100 ms over the first 10 s. Large enough that
        # one slow request on a busy machine cannot take the client far over it at once.
        assert alter(c, [part("client-id", "wire-test")], {"request_percentage": 1}).error_code == 0
        throttle_ms = 0
        for _ in range(20_000):  # Metadata takes a few hundred microseconds
            throttle_ms = c.call(m.MetadataRequest(topics=None), 8).throttle_time_ms
            if throttle_ms:
                break
        assert 0 < throttle_ms < 10_000
        # ApiVersions is never throttled for request time (a client must always be able to start);
        # it is answered once the mute of the last Metadata has passed
        started = time.monotonic()
        versions = c.call(m.ApiVersionsRequest(), 2)
        assert versions.throttle_time_ms == 0
        assert time.monotonic() - started >= throttle_ms / 1000 * 0.9
