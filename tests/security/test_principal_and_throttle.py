"""Kafka's ssl.principal.mapping.rules, and the failed-login delay (a delay per address, never a
lockout), both pure."""

from __future__ import annotations

import pytest

from logq.security.principal import PrincipalMapper
from logq.security.throttle import FailedLoginThrottle


def test_default_keeps_the_subject() -> None:
    assert PrincipalMapper().map("CN=alice,O=logq") == "CN=alice,O=logq"


def test_rules_apply_in_order_with_groups_case_and_escaped_slashes() -> None:
    mapper = PrincipalMapper(
        r"RULE:^CN=([^,]+),OU=ops,O=logq$/$1-admin/U, RULE:^CN=([^,]+),O=(.*)$/$1@$2/L,"
        r" RULE:^CN=a\/b$/slash/"
    )
    assert mapper.map("CN=bob,OU=ops,O=logq") == "BOB-ADMIN"
    assert mapper.map("CN=Alice,O=Logq") == "alice@logq"
    assert mapper.map("CN=a/b") == "slash"
    assert mapper.map("O=nobody") is None  # no rule and no DEFAULT: refused
    assert PrincipalMapper("RULE:^CN=([^,]+).*$/$1/, DEFAULT").map("O=x") == "O=x"


@pytest.mark.parametrize("rules", ["", "RULE:x", "RULE:([/y/", "SOMETHING"])
def test_rules_that_do_not_parse_are_refused(rules: str) -> None:
    with pytest.raises(ValueError, match=r"ssl\.principal\.mapping\.rules"):
        PrincipalMapper(rules)


def test_failures_from_one_address_slow_it_alone_and_a_success_clears_them() -> None:
    now = [0.0]
    throttle = FailedLoginThrottle(0.1, 0.8, window_s=60, now=lambda: now[0])
    assert throttle.before_attempt("10.0.0.1") == 0
    assert [throttle.failed("10.0.0.1") for _ in range(5)] == [0.1, 0.2, 0.4, 0.8, 0.8]
    assert throttle.before_attempt("10.0.0.1") == 0.8
    assert throttle.before_attempt("10.0.0.2") == 0  # another address is not slowed
    throttle.succeeded("10.0.0.1")
    assert throttle.before_attempt("10.0.0.1") == 0
    throttle.failed("10.0.0.3")
    now[0] = 61.0
    assert throttle.before_attempt("10.0.0.3") == 0  # forgotten after the window


def test_the_table_of_addresses_is_bounded() -> None:
    throttle = FailedLoginThrottle(0.1, max_addresses=3)
    for i in range(10):
        throttle.failed(f"10.0.0.{i}")
    assert throttle.before_attempt("10.0.0.0") == 0
    assert throttle.before_attempt("10.0.0.9") == 0.1
