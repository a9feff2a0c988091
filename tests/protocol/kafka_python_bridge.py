"""Conversion between logq messages and kafka-python 3.0.12 message objects, for cross-checks only.

Fields are matched by name (kafka-python uses the snake_case names of Kafka's current JSON files), with the
few renames listed in ``ALIASES``; a field present on one side but not the other fails the test.
"""

from __future__ import annotations

from typing import Any

import kafka.protocol.admin as kp_admin
import kafka.protocol.consumer as kp_consumer
import kafka.protocol.metadata as kp_metadata
import kafka.protocol.producer as kp_producer
import kafka.protocol.sasl as kp_sasl

from logq.protocol import messages as m
from logq.protocol.primitives import INT32_MIN
from logq.protocol.schema import ArrayOf, Struct, fields_for

# (logq class, kafka-python field name) -> logq field name
ALIASES: dict[tuple[type[Struct], str], str] = {
    (m.OffsetCommitRequest, "generation_id_or_member_epoch"): "generation_id",
    (m.MetadataResponse, "authorized_operations"): "cluster_authorized_operations",
    (m.MetadataResponseTopic, "authorized_operations"): "topic_authorized_operations",
}


def _their_classes() -> dict[tuple[int, str], Any]:
    found: dict[tuple[int, str], Any] = {}
    for module in (kp_admin, kp_consumer, kp_metadata, kp_producer, kp_sasl):
        names = getattr(module, "__all__", None) or [n for n in dir(module) if n.startswith("Sasl")]
        for name in names:
            cls = getattr(module, name)
            api_key = getattr(cls, "API_KEY", None)
            if isinstance(api_key, int) and name.endswith(("Request", "Response")):
                found[(api_key, cls.type)] = cls
    return found


THEIR_CLASSES = _their_classes()


def their_class(api_key: int, direction: str) -> Any:
    return THEIR_CLASSES[(api_key, direction)]


def their_fields(their_struct: Any, version: int) -> list[Any]:
    return list(their_struct.untagged_fields(version))


def _bits(value: int) -> set[int] | None:
    # kafka-python models *AuthorizedOperations as a set of bit positions; {31} (INT32_MIN) is None.
    if value == INT32_MIN:
        return None
    return {i for i in range(32) if (value & 0xFFFFFFFF) >> i & 1}


def _unbits(value: set[int] | None) -> int:
    raw = (1 << 31) if value is None else sum(1 << i for i in value)
    return raw - (1 << 32) if raw & (1 << 31) else raw


def _our_name(cls: type[Struct], their_name: str) -> str:
    return ALIASES.get((cls, their_name), their_name)


def _check_names(cls: type[Struct], version: int, their: list[Any]) -> None:
    ours = [name for name, _ in fields_for(cls, version)]
    assert ours == [_our_name(cls, f.name) for f in their], (cls.__name__, version)


def to_theirs(value: Struct, their_struct: Any, version: int, data_class: Any) -> Any:
    """Build the kafka-python object equal to ``value`` (``data_class`` is their class for it)."""
    cls = type(value)
    fields = their_fields(their_struct, version)
    _check_names(cls, version, fields)
    kwargs: dict[str, Any] = {}
    for f in fields:
        item = getattr(value, _our_name(cls, f.name))
        if f.is_struct_array() and item is not None:
            item = [to_theirs(x, f, version, f.data_class) for x in item]
        elif f.type_str == "bitfield":
            item = _bits(item)
        elif isinstance(item, memoryview):
            item = bytes(item)
        kwargs[f.name] = item
    return data_class(version=version, **kwargs)


def from_theirs(obj: Any, cls: type[Struct], their_struct: Any, version: int) -> Struct:
    """Build the logq object equal to a kafka-python object."""
    fields = their_fields(their_struct, version)
    _check_names(cls, version, fields)
    ours = dict(fields_for(cls, version))
    kwargs: dict[str, Any] = {}
    for f in fields:
        name = _our_name(cls, f.name)
        item = getattr(obj, f.name)
        kind = ours[name].kind
        if isinstance(kind, ArrayOf) and isinstance(kind.item, type) and item is not None:
            item = [from_theirs(x, kind.item, f, version) for x in item]
        elif f.type_str == "bitfield":
            item = _unbits(item)
        kwargs[name] = item
    return cls(**kwargs)
