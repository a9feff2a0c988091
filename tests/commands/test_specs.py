from __future__ import annotations

import pytest

from logq_cli.specs import (
    OffsetSpec,
    parse_datetime,
    parse_duration_ms,
    parse_key_values,
    parse_offset_spec,
    parse_partitions,
    parse_queue_scope,
    parse_timestamp,
)


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("beginning", OffsetSpec("beginning")),
        ("earliest", OffsetSpec("beginning")),
        ("end", OffsetSpec("end")),
        ("latest", OffsetSpec("end")),
        ("stored", OffsetSpec("stored")),
        ("42", OffsetSpec("offset", 42)),
        ("-10", OffsetSpec("from_end", 10)),
        ("@1700000000000", OffsetSpec("timestamp", 1_700_000_000_000)),
        ("@1700000000", OffsetSpec("timestamp", 1_700_000_000_000)),
        ("s@1700000000000", OffsetSpec("timestamp", 1_700_000_000_000)),
        ("@2023-11-14T22:13:20Z", OffsetSpec("timestamp", 1_700_000_000_000)),
    ],
)
def test_offset_specs(text: str, spec: OffsetSpec) -> None:
    assert parse_offset_spec(text) == spec


@pytest.mark.parametrize("text", ["", "soon", "+5", "@", "@yesterday", "1.5"])
def test_bad_offset_specs_say_what_is_accepted(text: str) -> None:
    with pytest.raises(ValueError, match="bad"):
        parse_offset_spec(text)


def test_timestamps_and_datetimes() -> None:
    assert parse_timestamp("1700000000123") == 1_700_000_000_123
    assert parse_timestamp("2023-11-14") == parse_datetime("2023-11-14T00:00:00+00:00")
    assert parse_datetime("2023-11-14T23:13:20+01:00") == 1_700_000_000_000


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("PT30M", 1_800_000),
        ("P1DT12H", 129_600_000),
        ("PT1.5S", 1500),
        ("P2D", 172_800_000),
        ("pt1h", 3_600_000),
    ],
)
def test_iso_durations(text: str, ms: int) -> None:
    assert parse_duration_ms(text) == ms


@pytest.mark.parametrize("text", ["", "P", "PT", "30M", "P1H", "PT1D", "P1DT"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="bad duration"):
        parse_duration_ms(text)


def test_scopes_partitions_and_pairs() -> None:
    assert parse_queue_scope("orders") == ("orders", None)
    assert parse_queue_scope("orders:2,0,1-3") == ("orders", [0, 1, 2, 3])
    assert parse_key_values(("a=1", "b=x=y"), "header") == {"a": "1", "b": "x=y"}
    for bad in ("", ",", "a", "3-1"):
        with pytest.raises(ValueError, match="partition"):
            parse_partitions(bad)
    with pytest.raises(ValueError, match="key=value"):
        parse_key_values(("novalue",), "header")
    with pytest.raises(ValueError, match="bad queue"):
        parse_queue_scope(":1")
