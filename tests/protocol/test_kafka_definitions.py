"""Every message class logq serves, checked against Apache Kafka's JSON message definitions.

The definitions are read from ``tests/protocol/kafka_messages/``, where a developer copies them from a
Kafka source checkout (see its README; they are Kafka's files, kept out of this repository). Without
them these tests skip, saying so. For every API in
``API_SPECS`` and every version in its range, the request and response classes must have, in wire order,
exactly the JSON's non-tagged fields of that version: the same names (CamelCase there, snake_case here),
types, nullability, nested structs and, for a field absent from some served version, the same default
(what a handler sees when an older client leaves it out). The versions that are flexible must be the
JSON's ``flexibleVersions``. Tagged fields may be left out: the codec skips unknown tags.
"""

from __future__ import annotations

import dataclasses
import json
import re
from functools import cache
from pathlib import Path
from typing import Any, ClassVar

import pytest

from logq.protocol.apis import API_SPECS, ApiKey
from logq.protocol.schema import (
    INT32,
    ArrayOf,
    FieldSpec,
    Primitive,
    Struct,
    fields_for,
    is_flexible,
    parse_versions,
    wire,
)

DEFINITIONS = Path(__file__).parent / "kafka_messages"

# JSON names whose attribute here is not simply their snake_case form, with the reason.
RENAMED = {
    # logq speaks only the classic group protocol, where this field is the generation id.
    "GenerationIdOrMemberEpoch": "generation_id",
}


def load_definition(path: Path) -> dict[str, Any]:
    """A Kafka message definition: JSON with whole-line ``//`` comments (the licence header, notes)."""
    lines = [line for line in path.read_text().splitlines() if not line.lstrip().startswith("//")]
    definition: dict[str, Any] = json.loads("\n".join(lines))
    return definition


@cache
def definitions() -> dict[tuple[int, str], dict[str, Any]]:
    """(api key, "request" | "response") -> its definition."""
    found = {}
    for path in sorted(DEFINITIONS.glob("*.json")):
        definition = load_definition(path)
        found[definition["apiKey"], definition["type"]] = definition
    return found


def in_versions(spec: str | None, version: int) -> bool:
    if spec is None or spec == "none":
        return False
    low, high = parse_versions(spec)
    return low <= version <= high


def snake_case(name: str) -> str:
    return RENAMED.get(name) or re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def json_default(field: dict[str, Any]) -> object:
    """The value Kafka's generated code gives ``field`` when a version does not carry it."""
    kind: str = field["type"]
    raw = field.get("default")
    if kind.startswith("[]") or kind not in _PRIMITIVE_DEFAULTS:
        return [] if kind.startswith("[]") else None  # arrays are empty; structs are not compared
    if raw is None:
        return _PRIMITIVE_DEFAULTS[kind]
    if raw == "null":
        return None
    if kind == "bool":
        return raw == "true"
    if kind.startswith(("int", "uint")):
        return raw if isinstance(raw, int) else int(raw, 0)
    return raw


_PRIMITIVE_DEFAULTS: dict[str, object] = {
    "bool": False, "int8": 0, "int16": 0, "int32": 0, "int64": 0, "uint16": 0, "uint32": 0,
    "string": "", "bytes": b"", "records": None, "uuid": None, "float64": 0.0,
}  # fmt: skip


def our_default(field: dataclasses.Field[Any]) -> object:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return dataclasses.MISSING


def compare_struct(
    cls: type[Struct], fields: list[dict[str, Any]], version: int, served: range, where: str
) -> list[str]:
    """Differences between ``cls`` at ``version`` and the JSON ``fields`` (empty when they agree)."""
    problems: list[str] = []
    theirs = [
        f
        for f in fields
        if in_versions(f["versions"], version) and not in_versions(f.get("taggedVersions"), version)
    ]
    ours = [(name, spec) for name, spec in fields_for(cls, version) if spec.tag is None]
    for name, spec in fields_for(cls, version):
        if spec.tag is not None:
            problems += compare_tagged(name, spec, fields, version, served=served, at=f"{where}.{name}")
    our_names = [name for name, _ in ours]
    their_names = [snake_case(f["name"]) for f in theirs]
    if our_names != their_names:
        return [*problems, f"{where} v{version}: fields {our_names}, Kafka has {their_names}"]
    declared = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for (name, spec), field in zip(ours, theirs, strict=True):
        at = f"{where}.{name}"
        problems += compare_kind(spec, field, version, served, at)
        if spec.nullable(version) != in_versions(field.get("nullableVersions"), version):
            nullable = field.get("nullableVersions")
            problems.append(f"{at} v{version}: nullable is {spec.nullable(version)}, Kafka's is {nullable}")
    # Fields that some served version leaves out: their default is what the handler sees then.
    for field in fields:
        name = snake_case(field["name"])
        if name not in declared or all(in_versions(field["versions"], v) for v in served):
            continue
        expected, actual = json_default(field), our_default(declared[name])
        # A nullable field without a default in the JSON is "" in Kafka's generated Java; None (absent)
        # says the same here.
        unset = actual is None and "default" not in field and field.get("nullableVersions") is not None
        compared = expected is not None or field["type"] in _PRIMITIVE_DEFAULTS
        if compared and not unset and actual != expected:
            problems.append(f"{where}.{name}: default {actual!r}, Kafka's is {expected!r}")
    return problems


def compare_tagged(
    name: str, spec: FieldSpec, fields: list[dict[str, Any]], version: int, *, served: range, at: str
) -> list[str]:
    """A tagged field here must be one in Kafka too, with the same tag, in this version."""
    theirs = [f for f in fields if snake_case(f["name"]) == name]
    if not theirs or not in_versions(theirs[0].get("taggedVersions"), version):
        return [f"{at} v{version}: tagged here, not a tagged field of Kafka's in this version"]
    if theirs[0].get("tag") != spec.tag:
        return [f"{at}: tag {spec.tag}, Kafka's is {theirs[0].get('tag')}"]
    return compare_kind(spec, theirs[0], version, served, at)


def compare_kind(spec: FieldSpec, field: dict[str, Any], version: int, served: range, at: str) -> list[str]:
    kind, theirs = spec.kind, field["type"]
    if theirs.startswith("[]"):
        if not isinstance(kind, ArrayOf):
            return [f"{at} v{version}: Kafka has an array {theirs}"]
        item = theirs[2:]
        if item in _PRIMITIVE_DEFAULTS:
            if not isinstance(kind.item, Primitive) or kind.item.name != item:
                return [f"{at} v{version}: array of {kind.item}, Kafka's items are {item}"]
            return []
        if isinstance(kind.item, Primitive):
            return [f"{at} v{version}: array of {kind.item.name}, Kafka's items are structs {item}"]
        return compare_struct(kind.item, field["fields"], version, served, at)
    if theirs in _PRIMITIVE_DEFAULTS:
        if not isinstance(kind, Primitive) or kind.name != theirs:
            return [f"{at} v{version}: {kind}, Kafka's type is {theirs}"]
        return []
    if isinstance(kind, (Primitive, ArrayOf)):
        return [f"{at} v{version}: {kind}, Kafka has a struct {theirs}"]
    return compare_struct(kind, field["fields"], version, served, at)


SERVED = [(key, side) for key in API_SPECS for side in ("request", "response")]


@pytest.mark.parametrize(("api_key", "side"), SERVED, ids=[f"{ApiKey(k).name}-{s}" for k, s in SERVED])
def test_message_classes_match_kafka_definitions(api_key: int, side: str) -> None:
    spec = API_SPECS[api_key]
    definition = definitions().get((api_key, side))
    if definition is None:
        pytest.skip(
            f"no Kafka definition of {ApiKey(api_key).name} {side}s in {DEFINITIONS.name}/ (its README)"
        )
    cls = spec.request_type if side == "request" else spec.response_type
    served = range(spec.min_version, spec.max_version + 1)
    low, high = parse_versions(definition["validVersions"])
    assert low <= spec.min_version, f"{definition['name']} starts at v{low}"
    assert spec.max_version <= high, f"{definition['name']} ends at v{high}"
    problems: list[str] = []
    for version in served:
        if is_flexible(cls, version) != in_versions(definition["flexibleVersions"], version):
            problems.append(
                f"{cls.__name__} v{version}: flexible here is {is_flexible(cls, version)}, Kafka's "
                f"flexibleVersions are {definition['flexibleVersions']}"
            )
        problems += compare_struct(cls, definition["fields"], version, served, cls.__name__)
    assert not problems, "\n".join(dict.fromkeys(problems))


def test_every_vendored_definition_loads() -> None:
    """The comment stripping leaves valid JSON in every file, and each says which API it defines."""
    files = sorted(DEFINITIONS.glob("*.json"))
    if not files:
        pytest.skip(f"no Kafka definitions in {DEFINITIONS.name}/ (its README says where to copy them from)")
    assert len(files) == len(definitions())
    for path in files:
        definition = load_definition(path)
        assert path.stem == definition["name"]


@dataclasses.dataclass(slots=True, kw_only=True)
class Tiny(Struct):
    FLEXIBLE_FROM: ClassVar[int | None] = 1
    id: int = wire(INT32)
    leader: int = wire(INT32, "1+", default=-1, tag=0)


def test_tagged_fields_declared_here_are_compared_too() -> None:
    fields: list[dict[str, Any]] = [
        {"name": "Id", "type": "int32", "versions": "0+"},
        {
            "name": "Leader",
            "type": "int32",
            "versions": "1+",
            "taggedVersions": "1+",
            "tag": 0,
            "default": -1,
        },
    ]
    assert compare_struct(Tiny, fields, 1, range(2), "Tiny") == []
    fields[1]["tag"] = 2
    assert compare_struct(Tiny, fields, 1, range(2), "Tiny") == ["Tiny.leader: tag 0, Kafka's is 2"]
    del fields[1]["taggedVersions"]
    assert "not a tagged field" in compare_struct(Tiny, fields, 1, range(2), "Tiny")[0]
