"""Client quotas' pure parts: Kafka's precedence of matching entities and who shares the quota found
(logq/quotas.py), and the rate and throttle time (logq/broker/quota_manager.py)."""

from __future__ import annotations

import pytest

from logq.broker.quota_manager import ClientQuotaManager, RateSensor, throttle_ms
from logq.error_codes import ErrorCode
from logq.errors import LogqError
from logq.quotas import (
    DEFAULT,
    PRODUCER_BYTE_RATE,
    QuotaEntity,
    entity_from_parts,
    quota_for,
    validate_quota_value,
)

RATE = PRODUCER_BYTE_RATE


def quotas(*entities: tuple[QuotaEntity, float]) -> dict[QuotaEntity, dict[str, float]]:
    return {e: {RATE: v} for e, v in entities}


LEVELS = [
    QuotaEntity("alice", "app"),
    QuotaEntity("alice", DEFAULT),
    QuotaEntity("alice", None),
    QuotaEntity(DEFAULT, "app"),
    QuotaEntity(DEFAULT, DEFAULT),
    QuotaEntity(DEFAULT, None),
    QuotaEntity(None, "app"),
    QuotaEntity(None, DEFAULT),
]


@pytest.mark.parametrize("first", range(len(LEVELS)))
def test_the_most_specific_entity_wins_in_kafkas_order(first: int) -> None:
    # every level from ``first`` down is set, each to its own value: ``first`` must be the one found
    configured = quotas(*((e, float(i + 1)) for i, e in enumerate(LEVELS) if i >= first))
    found = quota_for(configured, RATE, "alice", "app")
    assert found is not None
    assert found.limit == first + 1


def test_who_shares_a_quota_follows_the_matching_entity() -> None:
    per_user = quotas((QuotaEntity("alice", None), 10.0))
    assert quota_for(per_user, RATE, "alice", "a").shared_by == ("alice", "")  # type: ignore[union-attr]
    assert quota_for(per_user, RATE, "bob", "a") is None
    each_client = quotas((QuotaEntity(None, DEFAULT), 10.0))
    assert quota_for(each_client, RATE, "u", "c1").shared_by == ("", "c1")  # type: ignore[union-attr]


def test_entities_and_values_are_checked() -> None:
    assert entity_from_parts([("user", None), ("client-id", "x")]) == QuotaEntity(DEFAULT, "x")
    for parts in ([], [("ip", "1.2.3.4")], [("user", "a"), ("user", "b")], [("user", "")]):
        with pytest.raises(LogqError) as caught:
            entity_from_parts(parts)
        assert caught.value.code == ErrorCode.INVALID_REQUEST
    with pytest.raises(LogqError):
        validate_quota_value("unknown", 1.0)
    with pytest.raises(LogqError):
        validate_quota_value(RATE, -1.0)
    assert validate_quota_value("request_percentage", 12.5) == 12.5


def test_entity_paths_are_kafkas_and_round_trip() -> None:
    entity = QuotaEntity("a/b", DEFAULT)
    assert entity.path() == "users/a%2Fb/clients/<default>"
    assert QuotaEntity.from_path(entity.path()) == entity
    assert QuotaEntity.from_path("clients/app") == QuotaEntity(None, "app")


def test_a_new_client_is_measured_over_ten_seconds_and_throttled_by_kafkas_formula() -> None:
    sensor = RateSensor()
    sensor.record(20_000, 0)
    assert sensor.span_ms(0) == 10_000
    assert sensor.rate(0) == 2_000
    # 2,000 B/s against a quota of 1,000 B/s over a 10 s window: 10 s to get back to the quota
    assert throttle_ms(sensor.rate(0), 1_000, sensor.span_ms(0)) == 10_000
    # samples older than the window are forgotten
    assert sensor.rate(12_000) == 0


def test_the_manager_throttles_only_over_the_quota() -> None:
    now = [0]
    manager = ClientQuotaManager(RATE, lambda: now[0])
    manager.update(quotas((QuotaEntity(None, "app"), 1_000.0)))
    assert manager.record("User:u", "app", 5_000) == 0  # 500 B/s over 10 s
    assert manager.record("User:u", "app", 10_000) == 5_000  # 1,500 B/s: half again the quota
    assert manager.record("User:u", "other", 1_000_000) == 0  # no quota for this client id
