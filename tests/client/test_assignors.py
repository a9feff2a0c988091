"""Assignors (range and roundrobin exactly as Kafka's; cooperative-sticky balanced, sticky and incremental)
and the consumer-protocol codec. No broker needed."""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logq.client.assignors import (
    GroupMember,
    cooperative_sticky_assign,
    member_generation,
    range_assign,
    roundrobin_assign,
    user_data_for,
)
from logq.client.cluster import QueuePartition
from logq.client.consumer_protocol import (
    Assignment,
    Subscription,
    decode_assignment,
    decode_subscription,
    encode_assignment,
    encode_subscription,
)
from logq.errors import ConsumerProtocolError


def tp(queue: str, partition: int) -> QueuePartition:
    return QueuePartition(queue, partition)


def member(
    member_id: str, queues: Sequence[str], owned: Sequence[QueuePartition] = (), **kw: Any
) -> GroupMember:
    return GroupMember(member_id, Subscription(tuple(queues), owned_partitions=tuple(owned)), **kw)


# --- range and roundrobin: Kafka's documented examples ----------------------------------------------


def test_range_is_kafkas_example() -> None:
    # RangeAssignor's javadoc: C0, C1; t0 and t1 with 3 partitions each
    got = range_assign({"t0": 3, "t1": 3}, [member("C1", ["t0", "t1"]), member("C0", ["t0", "t1"])])
    assert got == {
        "C0": [tp("t0", 0), tp("t0", 1), tp("t1", 0), tp("t1", 1)],
        "C1": [tp("t0", 2), tp("t1", 2)],
    }


def test_range_gives_the_extra_partitions_to_the_first_members() -> None:
    members = [member(m, ["q"]) for m in ("b", "c", "a")]
    got = range_assign({"q": 7}, members)
    assert got == {
        "a": [tp("q", p) for p in (0, 1, 2)],
        "b": [tp("q", 3), tp("q", 4)],
        "c": [tp("q", 5), tp("q", 6)],
    }


def test_roundrobin_is_kafkas_examples() -> None:
    same = [member("C0", ["t0", "t1"]), member("C1", ["t0", "t1"])]
    assert roundrobin_assign({"t0": 3, "t1": 3}, same) == {
        "C0": [tp("t0", 0), tp("t0", 2), tp("t1", 1)],
        "C1": [tp("t0", 1), tp("t1", 0), tp("t1", 2)],
    }
    different = [member("C0", ["t0"]), member("C1", ["t0", "t1"]), member("C2", ["t0", "t1", "t2"])]
    assert roundrobin_assign({"t0": 1, "t1": 2, "t2": 3}, different) == {
        "C0": [tp("t0", 0)],
        "C1": [tp("t1", 0)],
        "C2": [tp("t1", 1), tp("t2", 0), tp("t2", 1), tp("t2", 2)],
    }


def test_static_members_come_first_by_instance_id() -> None:
    members = [
        member("a-dynamic", ["q"]),
        member("z", ["q"], instance_id="i2"),
        member("y", ["q"], instance_id="i1"),
    ]
    assert range_assign({"q": 3}, members) == {
        "y": [tp("q", 0)],
        "z": [tp("q", 1)],
        "a-dynamic": [tp("q", 2)],
    }


def test_unknown_queues_and_no_members() -> None:
    assert range_assign({}, [member("a", ["gone"])]) == {"a": []}
    assert roundrobin_assign({"q": 2}, []) == {}


# --- range and roundrobin against kafka-python's (a port of Kafka's Java assignors) ------------------


class _Cluster:
    def __init__(self, counts: Mapping[str, int]) -> None:
        self.counts = counts

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return set(range(self.counts[topic])) if topic in self.counts else None


def _kafka_python(
    name: str, counts: Mapping[str, int], members: Sequence[GroupMember]
) -> dict[str, list[QueuePartition]]:
    from kafka.coordinator.assignors.range import RangePartitionAssignor  # type: ignore[import-untyped]
    from kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor  # type: ignore[import-untyped]

    assignor = RangePartitionAssignor if name == "range" else RoundRobinPartitionAssignor

    class Meta:
        def __init__(self, m: GroupMember) -> None:
            self.member_id = m.member_id
            self.group_instance_id = m.instance_id
            self.metadata = assignor.metadata(m.subscription.queues)

    result = assignor.assign(_Cluster(counts), [Meta(m) for m in members])
    return {mid: sorted(tp(q, p) for q, ps in a.assigned_partitions for p in ps) for mid, a in result.items()}


queues_st = st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=1, max_size=4, unique=True)
member_st = st.tuples(st.text("xyz0123", min_size=1, max_size=6), queues_st)
members_st = st.lists(member_st, min_size=1, max_size=7, unique_by=lambda m: m[0])
counts_st = st.fixed_dictionaries({q: st.integers(0, 9) for q in "abcd"})


@settings(max_examples=200, deadline=None)
@given(members=members_st, counts=counts_st)
def test_range_and_roundrobin_equal_kafkas(
    members: list[tuple[str, list[str]]], counts: dict[str, int]
) -> None:
    group = [member(mid, qs) for mid, qs in members]
    assert {k: sorted(v) for k, v in range_assign(counts, group).items()} == _kafka_python(
        "range", counts, group
    )
    # kafka-python's roundrobin fails on differing subscriptions (it compares a tuple with member ids);
    # Kafka's own examples above cover that case
    same = [member(mid, members[0][1]) for mid, _ in members]
    assert {k: sorted(v) for k, v in roundrobin_assign(counts, same).items()} == _kafka_python(
        "roundrobin", counts, same
    )


# --- cooperative-sticky ---------------------------------------------------------------------------


def _run_rounds(
    counts: Mapping[str, int], subscriptions: Mapping[str, list[str]], owned: dict[str, list[QueuePartition]]
) -> tuple[dict[str, list[QueuePartition]], int]:
    """Rebalance rounds as members would run them (each revokes what it lost) until nothing moves."""
    for rounds in range(1, 5):
        group = [member(mid, qs, owned.get(mid, ())) for mid, qs in subscriptions.items()]
        got = cooperative_sticky_assign(counts, group)
        everything = [p for parts in got.values() for p in parts]
        assert len(everything) == len(set(everything)), "a partition was given twice"
        for mid, parts in got.items():  # a member only gains partitions nobody else owned
            others = {p for o, ps in owned.items() if o != mid for p in ps}
            assert not set(parts) & others
        revoked = any(set(owned.get(mid, ())) - set(parts) for mid, parts in got.items())
        owned = {mid: list(parts) for mid, parts in got.items()}
        if not revoked:
            return owned, rounds
    raise AssertionError("the assignment did not settle")


def test_cooperative_sticky_balances_and_keeps_what_stays() -> None:
    counts = {"q": 6}
    first, rounds = _run_rounds(counts, {"m1": ["q"]}, {})
    assert first == {"m1": [tp("q", p) for p in range(6)]}
    assert rounds == 1
    # a second member joins: m1 keeps three partitions, gives up three, which m2 gets in round two
    group = [member("m1", ["q"], first["m1"]), member("m2", ["q"])]
    round_one = cooperative_sticky_assign(counts, group)
    assert len(round_one["m1"]) == 3
    assert round_one["m2"] == []
    second, rounds = _run_rounds(counts, {"m1": ["q"], "m2": ["q"]}, first)
    assert rounds == 2
    assert set(second["m1"]) < set(first["m1"])
    assert len(second["m1"]) == len(second["m2"]) == 3
    # a third member takes one partition from each; nothing else moves
    third, _ = _run_rounds(counts, {"m1": ["q"], "m2": ["q"], "m3": ["q"]}, second)
    assert set(third["m1"]) <= set(second["m1"])
    assert set(third["m2"]) <= set(second["m2"])
    assert sorted(len(v) for v in third.values()) == [2, 2, 2]
    # m2 leaves: its partitions go to the others at once, and theirs stay
    fourth = cooperative_sticky_assign(
        counts, [member("m1", ["q"], third["m1"]), member("m3", ["q"], third["m3"])]
    )
    assert set(third["m1"]) <= set(fourth["m1"])
    assert set(third["m3"]) <= set(fourth["m3"])
    assert sorted(fourth["m1"] + fourth["m3"]) == [tp("q", p) for p in range(6)]


def test_cooperative_sticky_ignores_bad_claims_and_prefers_the_newer_generation() -> None:
    claims = (tp("q", 0), tp("q", 1), tp("gone", 0), tp("other", 0))
    stale = GroupMember("a", Subscription(("q",), user_data_for("cooperative-sticky", 3), claims))
    fresh = GroupMember("b", Subscription(("q",), user_data_for("cooperative-sticky", 4), (tp("q", 0),)))
    got = cooperative_sticky_assign({"q": 2, "other": 1}, [stale, fresh])
    assert got == {"a": [tp("q", 1)], "b": [tp("q", 0)]}


@settings(max_examples=100, deadline=None)
@given(members=members_st, counts=counts_st)
def test_cooperative_sticky_converges_to_a_balanced_assignment(
    members: list[tuple[str, list[str]]], counts: dict[str, int]
) -> None:
    subscriptions = {mid: ["a", "b"] for mid, _ in members}  # same subscription: balance is exact
    final, _ = _run_rounds(counts, subscriptions, {})
    sizes = [len(v) for v in final.values()]
    assert max(sizes) - min(sizes) <= 1
    assert sorted(p for v in final.values() for p in v) == sorted(
        tp(q, p) for q in ("a", "b") for p in range(counts[q])
    )


def test_member_generation_from_user_data() -> None:
    assert member_generation(Subscription(("q",), struct.pack(">i", 7))) == 7
    librdkafka_sticky = struct.pack(">ih1si", 1, 1, b"q", 1) + struct.pack(">i", 0) + struct.pack(">i", 9)
    assert member_generation(Subscription(("q",), librdkafka_sticky)) == 9
    assert member_generation(Subscription(("q",), None, (), 5, None, 2)) == 5
    assert member_generation(Subscription(("q",), b"junk!")) == -1


# --- the consumer-protocol codec ------------------------------------------------------------------


def test_subscription_round_trip_and_other_clients_versions() -> None:
    sub = Subscription(("a", "b"), b"ud", (tp("a", 1), tp("b", 0), tp("a", 0)))
    back = decode_subscription(encode_subscription(sub))
    assert back.queues == ("a", "b")
    assert back.user_data == b"ud"
    assert sorted(back.owned_partitions) == [tp("a", 0), tp("a", 1), tp("b", 0)]
    v0 = encode_subscription(Subscription(("a",), None, version=0))
    assert v0 == struct.pack(">hih1si", 0, 1, 1, b"a", -1)
    assert decode_subscription(v0) == Subscription(("a",), None, (), -1, None, 0)
    # v3 as librdkafka writes it: owned partitions, generation, rack
    v3 = struct.pack(">hih1si", 3, 1, 1, b"a", -1) + struct.pack(">ih1sii", 1, 1, b"a", 1, 2)
    v3 += struct.pack(">ih4s", 12, 4, b"rack")
    assert decode_subscription(v3) == Subscription(("a",), None, (tp("a", 2),), 12, "rack", 3)


def test_assignment_round_trip_and_the_brokers_empty_one() -> None:
    assignment = Assignment((tp("q", 2), tp("q", 0), tp("r", 1)), None)
    assert sorted(decode_assignment(encode_assignment(assignment)).partitions) == sorted(
        assignment.partitions
    )
    assert decode_assignment(struct.pack(">hii", 0, 0, -1)).partitions == ()
    assert decode_assignment(b"").partitions == ()


def test_kafka_python_reads_what_logq_writes_and_back() -> None:
    from kafka.protocol.consumer.metadata import (  # type: ignore[import-untyped]
        ConsumerProtocolAssignment,
        ConsumerProtocolSubscription,
    )

    assignment = encode_assignment(Assignment((tp("q", 2), tp("q", 0), tp("r", 1)), None))
    decoded = ConsumerProtocolAssignment.decode(assignment, version=1)
    assert sorted((t.topic, p) for t in decoded.assigned_partitions for p in t.partitions) == [
        ("q", 0), ("q", 2), ("r", 1),
    ]  # fmt: skip
    theirs = ConsumerProtocolSubscription(
        version=1, topics=["a", "b"], user_data=b"x", owned_partitions=[("a", [1, 2])]
    )
    assert decode_subscription(theirs.encode(version=1)) == Subscription(
        ("a", "b"), b"x", (tp("a", 1), tp("a", 2)), -1, None, 1
    )


@pytest.mark.parametrize("data", [b"\x00", b"\x00\x00\x00\x00\x00\x05\x00", b"\xff\xff"])
def test_malformed_metadata_raises(data: bytes) -> None:
    with pytest.raises(ConsumerProtocolError):
        decode_subscription(data)
