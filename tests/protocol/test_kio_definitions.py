"""Every message class logq serves, checked against ``kio``: Python types generated from Apache Kafka's
JSON message definitions (a test dependency, so the check runs everywhere, CI included).

kio covers the versions a recent Kafka still defines (4.0 dropped some old ones, e.g. Produce v0-2);
those versions of every served API are compared here: in wire order, the same untagged fields (names,
types, nullability, nested structs, arrays) and the same flexible versions. The fuller check against the
JSON files themselves, defaults included, is ``test_kafka_definitions.py`` (where a developer has copied
them in). kio names duration and time fields without their unit (``timeout`` for ``TimeoutMs``) and
decodes error codes to an enum: those are mapped back to the wire type here.
"""

from __future__ import annotations

import dataclasses
import importlib
import types
import typing
from typing import Any

import pytest

from logq.protocol.apis import API_SPECS, ApiKey
from logq.protocol.schema import ArrayOf, Primitive, Struct, fields_for, is_flexible

# kio's semantic types -> the wire type, and the unit its name dropped.
_WIRE = {"error_code": ("int16", ""), "timedelta_i32": ("int32", "_ms"), "timedelta_i64": ("int64", "_ms")}
_WIRE["datetime_i64"] = ("int64", "_ms")  # kio reads -1 as None: not wire nullability
# Names that differ from kio's beyond the dropped unit, with the reason.
RENAMED = {
    "generation_id_or_member_epoch": "generation_id",  # logq speaks only the classic group protocol
}
_RENAMES_USED: set[str] = set()


def module_name(api: ApiKey) -> str:
    return api.name.lower()


def kio_class(api: ApiKey, version: int, side: str) -> type | None:
    try:
        module = importlib.import_module(f"kio.schema.{module_name(api)}.v{version}.{side}")
    except ModuleNotFoundError:
        return None
    top = [v for v in vars(module).values() if isinstance(v, type) and getattr(v, "__type__", None)]
    found = [c for c in top if str(c.__type__).endswith(side)]
    return found[0] if found else None


def kio_fields(cls: type) -> list[tuple[str, str, bool, Any]]:
    """(name, wire type, nullable, nested struct or None) of ``cls``'s untagged fields, in wire order."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        if "tag" in f.metadata:
            continue
        hint = hints[f.name]
        nullable = isinstance(hint, types.UnionType) and type(None) in typing.get_args(hint)
        if nullable:
            hint = next(a for a in typing.get_args(hint) if a is not type(None))
        kind = f.metadata.get("kafka_type")
        name = f.name
        if kind in _WIRE:
            kind, unit = _WIRE[kind]
            name += unit
            if f.metadata["kafka_type"] == "datetime_i64":
                nullable = False
        nested = None
        if typing.get_origin(hint) is tuple:
            item = typing.get_args(hint)[0]
            kind = f"[]{kind}" if kind else "[]"
            nested = None if kind != "[]" else item
        elif kind is None:
            nested = hint
        if name in RENAMED:
            _RENAMES_USED.add(name)
        out.append((RENAMED.get(name, name), kind or "", nullable, nested))
    return out


def compare(ours: type[Struct], theirs: type, version: int, where: str) -> list[str]:
    mine = [(n, s) for n, s in fields_for(ours, version) if s.tag is None]
    kio = kio_fields(theirs)
    if [n for n, _ in mine] != [n for n, *_ in kio]:
        return [f"{where} v{version}: fields {[n for n, _ in mine]}, kio has {[n for n, *_ in kio]}"]
    problems = []
    for (name, spec), (_, kind, nullable, nested) in zip(mine, kio, strict=True):
        at = f"{where}.{name} v{version}"
        if spec.nullable(version) != nullable:
            problems.append(f"{at}: nullable {spec.nullable(version)}, kio's {nullable}")
        ours_kind = spec.kind
        if kind.startswith("[]"):
            if not isinstance(ours_kind, ArrayOf):
                problems.append(f"{at}: kio has an array")
            elif nested is not None:
                if isinstance(ours_kind.item, Primitive):
                    problems.append(f"{at}: array of {ours_kind.item.name}, kio's items are structs")
                else:
                    problems += compare(ours_kind.item, nested, version, at)
            elif not isinstance(ours_kind.item, Primitive) or ours_kind.item.name != kind[2:]:
                problems.append(f"{at}: array of {ours_kind.item}, kio's items are {kind[2:]}")
        elif nested is not None:
            if isinstance(ours_kind, (Primitive, ArrayOf)):
                problems.append(f"{at}: {ours_kind}, kio has a struct")
            else:
                problems += compare(ours_kind, nested, version, at)
        elif not isinstance(ours_kind, Primitive) or ours_kind.name != kind:
            problems.append(f"{at}: {ours_kind}, kio's type is {kind}")
    return problems


SERVED = [(key, side) for key in API_SPECS for side in ("request", "response")]


@pytest.mark.parametrize(("api_key", "side"), SERVED, ids=[f"{ApiKey(k).name}-{s}" for k, s in SERVED])
def test_message_classes_match_kio(api_key: int, side: str) -> None:
    spec = API_SPECS[api_key]
    ours = spec.request_type if side == "request" else spec.response_type
    compared, problems = 0, []
    for version in range(spec.min_version, spec.max_version + 1):
        theirs = kio_class(ApiKey(api_key), version, side)
        if theirs is None:
            continue  # a version recent Kafka no longer defines
        compared += 1
        if is_flexible(ours, version) != theirs.__flexible__:  # type: ignore[attr-defined]
            problems.append(f"{ours.__name__} v{version}: flexible {is_flexible(ours, version)}")
        problems += compare(ours, theirs, version, ours.__name__)
    assert compared, f"kio defines no served version of {ApiKey(api_key).name}"
    assert not problems, "\n".join(dict.fromkeys(problems))


def test_every_rename_is_still_needed() -> None:
    for key, side in SERVED:
        spec = API_SPECS[key]
        for version in range(spec.min_version, spec.max_version + 1):
            if (theirs := kio_class(ApiKey(key), version, side)) is not None:
                kio_fields(theirs)
    assert set(RENAMED) == _RENAMES_USED
