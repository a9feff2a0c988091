"""Table-driven message schemas and the generic codec that walks them.

A message is a dataclass deriving from :class:`Struct` whose fields are declared with :func:`wire`, which
records the wire type and the versions in which the field exists (the ``versions`` /
``nullableVersions`` strings of Kafka's JSON definitions). The dataclass is the single description of the
message: its defaults are the values of fields absent from a version. For each (class, version) the codec
compiles a list of field readers and writers once and caches it.

A top-level message whose ``FLEXIBLE_FROM`` is set uses Kafka's flexible encoding from that version on
(compact strings, bytes, records and arrays, and a tagged-field section closing every struct). A field
declared with ``wire(..., tag=N)`` is a tagged field: it travels in that section, only when its value
is not the default, and exists only in flexible versions. Tags received that a struct does not declare
are skipped, never an error (KIP-482).
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Callable
from typing import Any, ClassVar, Final, TypeVar

from logq.protocol.errors import ProtocolEncodeError
from logq.protocol.primitives import Buffer, Reader, Writer

VERSION_MAX: Final = 0x7FFF

ReadFn = Callable[[Reader], Any]
WriteFn = Callable[[Writer, Any], None]


class Struct:
    """Base of every message and nested struct dataclass."""

    __slots__ = ()
    FLEXIBLE_FROM: ClassVar[int | None] = None  # top-level messages: the first flexible version


def is_flexible(cls: type[Struct], version: int) -> bool:
    first = cls.FLEXIBLE_FROM
    return first is not None and version >= first


S = TypeVar("S", bound=Struct)


@dataclasses.dataclass(frozen=True, slots=True)
class Primitive:
    """A scalar wire type; ``read_null``/``write_null`` are the nullable variants where one exists."""

    name: str
    min_size: int
    read: ReadFn
    write: WriteFn
    default: object
    read_null: ReadFn | None = None
    write_null: WriteFn | None = None
    compact: tuple[ReadFn, WriteFn, ReadFn, WriteFn] | None = None  # flexible: read, write, nullable ones


INT8: Final = Primitive("int8", 1, Reader.read_int8, Writer.write_int8, 0)
INT16: Final = Primitive("int16", 2, Reader.read_int16, Writer.write_int16, 0)
INT32: Final = Primitive("int32", 4, Reader.read_int32, Writer.write_int32, 0)
INT64: Final = Primitive("int64", 8, Reader.read_int64, Writer.write_int64, 0)
UINT32: Final = Primitive("uint32", 4, Reader.read_uint32, Writer.write_uint32, 0)
BOOL: Final = Primitive("bool", 1, Reader.read_bool, Writer.write_bool, False)
FLOAT64: Final = Primitive("float64", 8, Reader.read_float64, Writer.write_float64, 0.0)
STRING: Final = Primitive(
    "string", 2, Reader.read_string, Writer.write_string, "",
    Reader.read_nullable_string, Writer.write_nullable_string,
    (Reader.read_compact_string, Writer.write_compact_string,
     Reader.read_compact_nullable_string, Writer.write_compact_nullable_string),
)  # fmt: skip
BYTES: Final = Primitive(
    "bytes", 4, Reader.read_bytes, Writer.write_bytes, b"",
    Reader.read_nullable_bytes, Writer.write_nullable_bytes,
    (Reader.read_compact_bytes, Writer.write_compact_bytes,
     Reader.read_compact_nullable_bytes, Writer.write_compact_nullable_bytes),
)  # fmt: skip
# RecordBatch blobs: always nullable, decoded as a zero-copy memoryview, encoded as a separate chunk.
RECORDS: Final = Primitive(
    "records", 4, Reader.read_records, Writer.write_records, b"",
    Reader.read_records, Writer.write_records,
    (Reader.read_compact_records, Writer.write_compact_records,
     Reader.read_compact_records, Writer.write_compact_records),
)  # fmt: skip


@dataclasses.dataclass(frozen=True, slots=True)
class ArrayOf:
    """An int32-counted array of a primitive or of a nested struct."""

    item: Primitive | type[Struct]


Kind = Primitive | ArrayOf | type[Struct]


def parse_versions(spec: str) -> tuple[int, int]:
    """``"3+"`` → (3, VERSION_MAX); ``"2-4"`` → (2, 4); ``"8"`` → (8, 8)."""
    if spec.endswith("+"):
        return int(spec[:-1]), VERSION_MAX
    low, sep, high = spec.partition("-")
    return (int(low), int(high)) if sep else (int(low), int(low))


@dataclasses.dataclass(frozen=True, slots=True)
class FieldSpec:
    kind: Kind
    versions: tuple[int, int]
    nullable_versions: tuple[int, int] | None
    tag: int | None = None  # a tagged field's tag (its versions are its taggedVersions)

    def present(self, version: int) -> bool:
        return self.versions[0] <= version <= self.versions[1]

    def nullable(self, version: int) -> bool:
        nv = self.nullable_versions
        return nv is not None and nv[0] <= version <= nv[1]


_SPEC_KEY: Final = "logq.protocol.wire"
_MISSING: Final = object()


def wire(
    kind: Kind,
    versions: str = "0+",
    *,
    nullable: str | None = None,
    default: object = _MISSING,
    tag: int | None = None,
) -> Any:
    """Declare a message field: its wire type, the versions it exists in, and where it may be null.

    Without ``default``, absent fields take the type's zero value (0, "", b"", False, [], a default struct).
    With ``tag`` it is a tagged field in every one of its versions, which must all be flexible.
    """
    spec = FieldSpec(kind, parse_versions(versions), parse_versions(nullable) if nullable else None, tag)
    metadata = {_SPEC_KEY: spec}
    if default is not _MISSING:
        return dataclasses.field(default=default, metadata=metadata)
    if isinstance(kind, Primitive):
        return dataclasses.field(default=kind.default, metadata=metadata)
    factory: Callable[[], Any] = list if isinstance(kind, ArrayOf) else kind
    return dataclasses.field(default_factory=factory, metadata=metadata)


def fields_for(cls: type[Struct], version: int) -> list[tuple[str, FieldSpec]]:
    """The (attribute, spec) pairs of the fields present in ``version``, in wire order."""
    out = []
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        spec = f.metadata.get(_SPEC_KEY)
        if not isinstance(spec, FieldSpec):
            raise TypeError(f"{cls.__name__}.{f.name} is not declared with wire()")
        if spec.present(version):
            out.append((f.name, spec))
    return out


class _StructCodec:
    """The compiled reader/writer of one struct class at one version (flexible or not).

    ``read`` and ``write`` are functions generated for the struct, as dataclasses generates ``__init__``:
    every request and response goes through them, and a loop over fields with a keyword dict per struct
    cost a small request more than its handling. Runs of fixed-size integer fields are read and written
    with one ``struct`` call each."""

    __slots__ = ("min_size", "read", "write")

    def __init__(self, cls: type[Struct], version: int, flexible: bool) -> None:
        self.min_size = 1 if flexible else 0  # the tagged-field section
        steps: list[tuple[str | None, list[str], ReadFn | None, WriteFn | None]] = []  # packed run or field
        tagged: list[_Tagged] = []
        defaults = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        for name, spec in fields_for(cls, version):
            if spec.tag is not None:
                if not flexible:
                    raise TypeError(f"{cls.__name__}.{name}: a tagged field in non-flexible v{version}")
                read, write, _ = _field_codec(
                    spec.kind, version, nullable=spec.nullable(version), where=name, flexible=True
                )
                tagged.append(_Tagged(name, spec.tag, read, write, _default_of(defaults[name])))
                continue
            packed = _PACKED.get(spec.kind) if isinstance(spec.kind, Primitive) else None
            if packed is not None and not spec.nullable(version):
                if steps and steps[-1][0] is not None:
                    layout, names, _, _ = steps[-1]
                    steps[-1] = (f"{layout}{packed}", [*names, name], None, None)
                else:
                    steps.append((packed, [name], None, None))
                self.min_size += struct.calcsize(">" + packed)
                continue
            read, write, size = _field_codec(
                spec.kind, version, nullable=spec.nullable(version), where=name, flexible=flexible
            )
            steps.append((None, [name], read, write))
            self.min_size += size
        self.read, self.write = _generate(cls, steps, flexible, _tagged_codec(tagged) if tagged else None)


@dataclasses.dataclass(frozen=True, slots=True)
class _Tagged:
    name: str
    tag: int
    read: ReadFn
    write: WriteFn
    default: object


def _default_of(field: dataclasses.Field[Any]) -> object:
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


def _tagged_codec(tagged: list[_Tagged]) -> tuple[Callable[[Reader], dict[str, Any]], WriteFn]:
    """The reader (known tags into a keyword dict, unknown ones skipped) and writer of a struct's
    tagged-field section. Fields holding their default are not sent, in tag order as Kafka requires."""
    by_tag = {t.tag: t for t in tagged}
    in_order = sorted(tagged, key=lambda t: t.tag)

    def read(reader: Reader) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for _ in range(reader.read_uvarint()):
            tag = reader.read_uvarint()
            data = reader.read_raw(reader.read_uvarint())
            known = by_tag.get(tag)
            if known is not None:
                found[known.name] = known.read(Reader(data))
        return found

    def write(writer: Writer, value: Any) -> None:
        sent = [(t, getattr(value, t.name)) for t in in_order if getattr(value, t.name) != t.default]
        writer.write_uvarint(len(sent))
        for t, field_value in sent:
            encoded = Writer()
            t.write(encoded, field_value)
            data = encoded.getvalue()
            writer.write_uvarint(t.tag)
            writer.write_uvarint(len(data))
            writer.write_raw(data)

    return read, write


# Fixed-size integer kinds as struct format characters (BOOL is not: any non-zero byte reads as true).
_PACKED: dict[Kind, str] = {INT8: "b", INT16: "h", INT32: "i", INT64: "q", UINT32: "I"}


def _generate(
    cls: type[Struct],
    steps: list[tuple[str | None, list[str], ReadFn | None, WriteFn | None]],
    flexible: bool,
    tagged: tuple[Callable[[Reader], dict[str, Any]], WriteFn] | None = None,
) -> tuple[ReadFn, WriteFn]:
    """Source for the reader and writer of ``steps``, compiled once per struct and version. Field names
    are the dataclass's own identifiers; everything else is passed in the namespace."""
    namespace: dict[str, Any] = {"factory": cls}
    reads: list[str] = []
    writes: list[str] = []
    for i, (layout, names, read, write) in enumerate(steps):
        if layout is not None:
            namespace[f"L{i}"] = struct.Struct(">" + layout)
            targets = ", ".join(f"v_{n}" for n in names)
            reads.append(f"    ({targets},) = reader.read_packed(L{i})")
            writes.append(f"    writer.write_packed(L{i}, " + ", ".join(f"value.{n}" for n in names) + ")")
        else:
            namespace[f"R{i}"], namespace[f"W{i}"] = read, write
            reads.append(f"    v_{names[0]} = R{i}(reader)")
            writes.append(f"    W{i}(writer, value.{names[0]})")
    fields = ", ".join(f"{n}=v_{n}" for _, names, _, _ in steps for n in names)
    if tagged is not None:
        namespace["RT"], namespace["WT"] = tagged
        reads.append(f"    return factory({fields}{', ' if fields else ''}**RT(reader))")
        writes.append("    WT(writer, value)")
    else:
        reads.append(f"    result = factory({fields})")
        if flexible:
            reads.append("    reader.skip_tagged_fields()")
            writes.append("    writer.write_empty_tagged_fields()")
        reads.append("    return result")
    source = "def read(reader):\n" + "\n".join(reads) + "\ndef write(writer, value):\n"
    source += "\n".join(writes) if writes else "    pass"
    exec(compile(source, f"<logq codec {cls.__name__}>", "exec"), namespace)
    return namespace["read"], namespace["write"]


_CODECS: dict[tuple[type[Struct], int, bool], _StructCodec] = {}


def _struct_codec(cls: type[Struct], version: int, flexible: bool) -> _StructCodec:
    key = (cls, version, flexible)
    codec = _CODECS.get(key)
    if codec is None:
        codec = _CODECS[key] = _StructCodec(cls, version, flexible)
    return codec


def _field_codec(
    kind: Kind, version: int, *, nullable: bool, where: str, flexible: bool
) -> tuple[ReadFn, WriteFn, int]:
    if isinstance(kind, Primitive):
        if flexible and kind.compact is not None:
            read, write, read_null, write_null = kind.compact
            return (read_null, write_null, 1) if nullable else (read, write, 1)
        if not nullable:
            return kind.read, kind.write, kind.min_size
        if kind.read_null is None or kind.write_null is None:
            raise TypeError(f"{where}: {kind.name} cannot be nullable")
        return kind.read_null, kind.write_null, kind.min_size
    if isinstance(kind, ArrayOf):
        return _array_codec(kind, version, nullable=nullable, where=where, flexible=flexible)
    if nullable:
        raise TypeError(f"{where}: nullable structs are not supported")
    codec = _struct_codec(kind, version, flexible)
    return codec.read, codec.write, codec.min_size


def _array_codec(
    kind: ArrayOf, version: int, *, nullable: bool, where: str, flexible: bool
) -> tuple[ReadFn, WriteFn, int]:
    read_item, write_item, item_size = _field_codec(
        kind.item, version, nullable=False, where=where, flexible=flexible
    )
    read_count = Reader.read_compact_count if flexible else Reader.read_count

    def read(reader: Reader) -> list[Any] | None:
        n = read_count(reader, item_size, nullable=nullable)
        if n < 0:
            return None
        return [read_item(reader) for _ in range(n)]

    def write(writer: Writer, value: list[Any] | None) -> None:
        if value is None:
            if not nullable:
                raise ProtocolEncodeError(f"{where}: array is not nullable in version {version}")
            if flexible:
                writer.write_uvarint(0)
            else:
                writer.write_int32(-1)
            return
        if flexible:
            writer.write_uvarint(len(value) + 1)
        else:
            writer.write_int32(len(value))
        for item in value:
            write_item(writer, item)

    return read, write, 1 if flexible else 4


def write_struct(writer: Writer, value: Struct, version: int) -> None:
    """Append ``value`` encoded at ``version``; bad values raise :class:`ProtocolEncodeError`."""
    try:
        _struct_codec(type(value), version, is_flexible(type(value), version)).write(writer, value)
    except ProtocolEncodeError:
        raise
    except (struct.error, TypeError, AttributeError, UnicodeEncodeError, OverflowError) as exc:
        raise ProtocolEncodeError(f"cannot encode {type(value).__name__} v{version}: {exc}") from exc


def encode_struct(value: Struct, version: int) -> bytes:
    writer = Writer()
    write_struct(writer, value, version)
    return writer.getvalue()


def read_struct(reader: Reader, cls: type[S], version: int) -> S:
    result: S = _struct_codec(cls, version, is_flexible(cls, version)).read(reader)
    return result


def decode_struct(cls: type[S], data: Buffer, version: int) -> S:
    """Decode a message body; trailing bytes are ignored, as Kafka does."""
    return read_struct(Reader(data), cls, version)


__all__ = [
    "BOOL",
    "BYTES",
    "FLOAT64",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "RECORDS",
    "STRING",
    "UINT32",
    "ArrayOf",
    "FieldSpec",
    "Kind",
    "Primitive",
    "Struct",
    "decode_struct",
    "encode_struct",
    "fields_for",
    "is_flexible",
    "parse_versions",
    "read_struct",
    "wire",
    "write_struct",
]
