"""Hypothesis strategies derived from the message schemas: one value per field present in a version."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from logq.protocol.schema import ArrayOf, Kind, Primitive, Struct, fields_for


def examples(n: int) -> settings:
    """Per-test settings: the suite has ~150 (api, version, direction) cases, so each runs few examples."""
    return settings(
        max_examples=n,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


_TEXT = st.text(st.characters(codec="utf-8"), max_size=10)

_PRIMITIVES: dict[str, st.SearchStrategy[Any]] = {
    "int8": st.integers(-(2**7), 2**7 - 1),
    "int16": st.integers(-(2**15), 2**15 - 1),
    "int32": st.integers(-(2**31), 2**31 - 1),
    "int64": st.integers(-(2**63), 2**63 - 1),
    "uint32": st.integers(0, 2**32 - 1),
    "bool": st.booleans(),
    "float64": st.floats(allow_nan=False),  # NaN != NaN would fail the round trips
    "string": _TEXT,
    "bytes": st.binary(max_size=10),
    # Small blobs are inlined, large ones become separate chunks: exercise both paths.
    "records": st.one_of(st.binary(max_size=10), st.integers(1025, 1300).map(lambda n: b"\x5a" * n)),
}


def kind_strategy(kind: Kind, version: int, *, nullable: bool) -> st.SearchStrategy[Any]:
    if isinstance(kind, Primitive):
        base = _PRIMITIVES[kind.name]
    elif isinstance(kind, ArrayOf):
        base = st.lists(kind_strategy(kind.item, version, nullable=False), max_size=3)
    else:
        base = message_strategy(kind, version)
    return st.one_of(st.none(), base) if nullable else base


_CACHE: dict[tuple[type[Struct], int], st.SearchStrategy[Any]] = {}


def message_strategy(cls: type[Struct], version: int) -> st.SearchStrategy[Any]:
    """Instances of ``cls`` with every field present in ``version`` drawn; absent fields keep defaults."""
    key = (cls, version)
    if key not in _CACHE:
        fields = {
            name: kind_strategy(spec.kind, version, nullable=spec.nullable(version))
            for name, spec in fields_for(cls, version)
        }
        factory: Any = cls
        _CACHE[key] = st.fixed_dictionaries(fields).map(lambda kw: factory(**kw))
    return _CACHE[key]
