"""Codecs for the Kafka primitive types: the classic ones, and the compact forms of flexible versions
(unsigned varint lengths and counts stored plus one, 0 meaning null; a tagged-field section after every
struct, whose unknown tags are skipped).

``Reader`` walks a ``memoryview`` with an offset and never slices large fields into copies: ``read_records``
returns a view into the frame. Every failure is a :class:`ProtocolDecodeError`.

``Writer`` appends to a ``bytearray``; record blobs above a small threshold are kept as separate chunks so a
Fetch response can be written with ``writelines`` without concatenating the batches.
"""

from __future__ import annotations

import struct
from typing import Any, Final

from logq.protocol.errors import ProtocolDecodeError, ProtocolEncodeError

Buffer = bytes | bytearray | memoryview
"""Bytes-like values accepted for byte fields, records and frames."""

INT16_MAX: Final = 0x7FFF
INT32_MAX: Final = 0x7FFFFFFF
INT32_MIN: Final = -0x80000000

_I8: Final = struct.Struct(">b")
_I16: Final = struct.Struct(">h")
_I32: Final = struct.Struct(">i")
_I64: Final = struct.Struct(">q")
_U32: Final = struct.Struct(">I")
_F64: Final = struct.Struct(">d")

# Record blobs up to this size are copied inline; larger ones become their own output chunk.
INLINE_RECORDS_MAX: Final = 1024


def as_byte_view(data: Buffer) -> memoryview:
    """A flat unsigned-byte view of ``data`` (no copy)."""
    view = data if isinstance(data, memoryview) else memoryview(data)
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    return view


class Reader:
    """Sequential big-endian reader over a memoryview."""

    __slots__ = ("_end", "_pos", "_view")

    def __init__(self, data: Buffer) -> None:
        self._view = as_byte_view(data)
        self._pos = 0
        self._end = self._view.nbytes

    @property
    def pos(self) -> int:
        return self._pos

    @property
    def remaining(self) -> int:
        return self._end - self._pos

    def rest(self) -> memoryview:
        """The unread bytes as a view (no copy)."""
        return self._view[self._pos :]

    def _take(self, n: int) -> int:
        start = self._pos
        if self._end - start < n:
            raise ProtocolDecodeError(f"need {n} bytes at offset {start}, only {self._end - start} left")
        self._pos = start + n
        return start

    def read_packed(self, layout: struct.Struct) -> tuple[Any, ...]:
        """Several fixed-size fields at once (``layout`` is their big-endian struct format)."""
        return layout.unpack_from(self._view, self._take(layout.size))

    def read_int8(self) -> int:
        value: int = _I8.unpack_from(self._view, self._take(1))[0]
        return value

    def read_int16(self) -> int:
        value: int = _I16.unpack_from(self._view, self._take(2))[0]
        return value

    def read_int32(self) -> int:
        value: int = _I32.unpack_from(self._view, self._take(4))[0]
        return value

    def read_int64(self) -> int:
        value: int = _I64.unpack_from(self._view, self._take(8))[0]
        return value

    def read_uint32(self) -> int:
        value: int = _U32.unpack_from(self._view, self._take(4))[0]
        return value

    def read_float64(self) -> float:
        value: float = _F64.unpack_from(self._view, self._take(8))[0]
        return value

    def read_bool(self) -> bool:
        # Kafka treats any non-zero byte as true.
        return self._view[self._take(1)] != 0

    def _utf8(self, n: int) -> str:
        start = self._take(n)
        try:
            return str(self._view[start : start + n], "utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolDecodeError(f"invalid UTF-8 in string at offset {start}") from exc

    def read_string(self) -> str:
        n = self.read_int16()
        if n < 0:
            raise ProtocolDecodeError(f"non-nullable string has length {n}")
        return self._utf8(n)

    def read_nullable_string(self) -> str | None:
        n = self.read_int16()
        if n < 0:
            if n == -1:
                return None
            raise ProtocolDecodeError(f"invalid string length {n}")
        return self._utf8(n)

    def _blob(self, n: int) -> memoryview:
        start = self._take(n)
        return self._view[start : start + n]

    def read_bytes(self) -> bytes:
        n = self.read_int32()
        if n < 0:
            raise ProtocolDecodeError(f"non-nullable bytes has length {n}")
        return bytes(self._blob(n))

    def read_nullable_bytes(self) -> bytes | None:
        n = self.read_int32()
        if n < 0:
            if n == -1:
                return None
            raise ProtocolDecodeError(f"invalid bytes length {n}")
        return bytes(self._blob(n))

    def read_records(self) -> memoryview | None:
        """A RecordBatch blob as a zero-copy view into the frame (nullable)."""
        n = self.read_int32()
        if n < 0:
            if n == -1:
                return None
            raise ProtocolDecodeError(f"invalid records length {n}")
        return self._blob(n)

    def read_uvarint(self) -> int:
        """An unsigned varint of at most 5 bytes, as Kafka's ByteUtils.readUnsignedVarint."""
        value = shift = 0
        for _ in range(5):
            byte = self._view[self._take(1)]
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
            shift += 7
        raise ProtocolDecodeError(f"unsigned varint longer than 5 bytes at offset {self._pos - 5}")

    def _compact_length(self, *, nullable: bool, what: str) -> int:
        """A compact length (stored plus one; -1 for null), checked against the bytes left."""
        n = self.read_uvarint() - 1
        if n < 0:
            if nullable:
                return -1
            raise ProtocolDecodeError(f"non-nullable compact {what} is null")
        if n > self._end - self._pos:
            raise ProtocolDecodeError(f"compact {what} of {n} bytes but only {self._end - self._pos} left")
        return n

    def read_compact_string(self) -> str:
        return self._utf8(self._compact_length(nullable=False, what="string"))

    def read_compact_nullable_string(self) -> str | None:
        n = self._compact_length(nullable=True, what="string")
        return None if n < 0 else self._utf8(n)

    def read_compact_bytes(self) -> bytes:
        return bytes(self._blob(self._compact_length(nullable=False, what="bytes")))

    def read_compact_nullable_bytes(self) -> bytes | None:
        n = self._compact_length(nullable=True, what="bytes")
        return None if n < 0 else bytes(self._blob(n))

    def read_compact_records(self) -> memoryview | None:
        """COMPACT_RECORDS (flexible versions): a nullable RecordBatch blob as a zero-copy view."""
        n = self._compact_length(nullable=True, what="records")
        return None if n < 0 else self._blob(n)

    def read_raw(self, n: int) -> memoryview:
        """``n`` bytes as a view (a tagged field's value, decoded on its own)."""
        return self._blob(n)

    def read_compact_count(self, min_item_size: int, *, nullable: bool) -> int:
        """A compact array count (-1 = null), checked against the bytes left before any allocation."""
        n = self.read_uvarint() - 1
        if n < 0:
            if nullable:
                return -1
            raise ProtocolDecodeError("non-nullable compact array is null")
        if n * max(min_item_size, 1) > self._end - self._pos:
            raise ProtocolDecodeError(f"array count {n} cannot fit in {self._end - self._pos} bytes")
        return n

    def skip_tagged_fields(self) -> None:
        """A tagged-field section whose tags are all unknown here: every one is skipped."""
        for _ in range(self.read_uvarint()):
            self.read_uvarint()  # the tag
            self._blob(self.read_uvarint())

    def read_count(self, min_item_size: int, *, nullable: bool) -> int:
        """An array count, checked against the bytes left so a bogus count never allocates (-1 = null)."""
        n = self.read_int32()
        if n < 0:
            if n == -1 and nullable:
                return -1
            raise ProtocolDecodeError(f"invalid array count {n}")
        if n * max(min_item_size, 1) > self._end - self._pos:
            raise ProtocolDecodeError(f"array count {n} cannot fit in {self._end - self._pos} bytes")
        return n


Chunk = bytes | bytearray | memoryview
"""One piece of an encoded frame."""


class Writer:
    """Big-endian writer producing a list of chunks (record blobs kept apart, see module doc)."""

    __slots__ = ("_buf", "_chunks", "_framed", "_head", "_size")

    def __init__(self, *, framed: bool = False) -> None:
        """With ``framed``, reserve an int32 size prefix that :meth:`chunks` fills in."""
        self._buf = bytearray(4) if framed else bytearray()
        self._head = self._buf  # stays chunks[0], so the size prefix can be patched in place
        self._framed = framed
        self._chunks: list[Chunk] = []
        self._size = 0  # bytes held in _chunks

    def __len__(self) -> int:
        return self._size + len(self._buf)

    def write_packed(self, layout: struct.Struct, *values: Any) -> None:
        self._buf += layout.pack(*values)

    def write_int8(self, value: int) -> None:
        self._buf += _I8.pack(value)

    def write_int16(self, value: int) -> None:
        self._buf += _I16.pack(value)

    def write_int32(self, value: int) -> None:
        self._buf += _I32.pack(value)

    def write_int64(self, value: int) -> None:
        self._buf += _I64.pack(value)

    def write_uint32(self, value: int) -> None:
        self._buf += _U32.pack(value)

    def write_float64(self, value: float) -> None:
        self._buf += _F64.pack(value)

    def write_bool(self, value: bool) -> None:
        self._buf.append(1 if value else 0)

    def write_string(self, value: str) -> None:
        data = value.encode("utf-8")
        if len(data) > INT16_MAX:
            raise ProtocolEncodeError(f"string of {len(data)} bytes exceeds the int16 length limit")
        self._buf += _I16.pack(len(data))
        self._buf += data

    def write_nullable_string(self, value: str | None) -> None:
        if value is None:
            self._buf += _I16.pack(-1)
        else:
            self.write_string(value)

    def write_bytes(self, value: Buffer) -> None:
        n = value.nbytes if isinstance(value, memoryview) else len(value)
        if n > INT32_MAX:
            raise ProtocolEncodeError(f"bytes field of {n} bytes exceeds the int32 length limit")
        self._buf += _I32.pack(n)
        self._buf += value

    def write_nullable_bytes(self, value: Buffer | None) -> None:
        if value is None:
            self._buf += _I32.pack(-1)
        else:
            self.write_bytes(value)

    def write_uvarint(self, value: int) -> None:
        if value < 0 or value > 0xFFFFFFFF:
            raise ProtocolEncodeError(f"unsigned varint {value} out of range")
        while value >= 0x80:
            self._buf.append((value & 0x7F) | 0x80)
            value >>= 7
        self._buf.append(value)

    def write_compact_string(self, value: str) -> None:
        data = value.encode("utf-8")
        self.write_uvarint(len(data) + 1)
        self._buf += data

    def write_compact_nullable_string(self, value: str | None) -> None:
        if value is None:
            self._buf.append(0)
        else:
            self.write_compact_string(value)

    def write_compact_bytes(self, value: Buffer) -> None:
        n = value.nbytes if isinstance(value, memoryview) else len(value)
        self.write_uvarint(n + 1)
        self._buf += value

    def write_compact_nullable_bytes(self, value: Buffer | None) -> None:
        if value is None:
            self._buf.append(0)
        else:
            self.write_compact_bytes(value)

    def write_raw(self, data: Buffer) -> None:
        self._buf += data

    def write_compact_records(self, value: Buffer | None) -> None:
        """COMPACT_RECORDS: as ``write_records``, with an unsigned varint length + 1 (0 for null)."""
        if value is None:
            self._buf.append(0)
            return
        n = value.nbytes if isinstance(value, memoryview) else len(value)
        if n <= INLINE_RECORDS_MAX:
            self.write_compact_bytes(value)
            return
        self.write_uvarint(n + 1)
        self._flush()
        self._chunks.append(value)
        self._size += n

    def write_empty_tagged_fields(self) -> None:
        self._buf.append(0)

    def write_records(self, value: Buffer | None) -> None:
        if value is None:
            self._buf += _I32.pack(-1)
            return
        n = value.nbytes if isinstance(value, memoryview) else len(value)
        if n <= INLINE_RECORDS_MAX:
            self.write_bytes(value)
            return
        if n > INT32_MAX:
            raise ProtocolEncodeError(f"records of {n} bytes exceed the int32 length limit")
        self._buf += _I32.pack(n)
        self._flush()
        self._chunks.append(value)
        self._size += n

    def _flush(self) -> None:
        if self._buf:
            self._chunks.append(self._buf)
            self._size += len(self._buf)
            self._buf = bytearray()

    def chunks(self) -> list[Chunk]:
        """The encoded bytes as a list of chunks; the first is a ``bytearray`` holding any size prefix."""
        self._flush()
        if self._framed:
            size = self._size - 4
            if size > INT32_MAX:
                raise ProtocolEncodeError(f"frame of {size} bytes exceeds the int32 size limit")
            _I32.pack_into(self._head, 0, size)
        return self._chunks if self._chunks else [self._head]

    def getvalue(self) -> bytes:
        chunks = self.chunks()
        return bytes(chunks[0]) if len(chunks) == 1 else b"".join(chunks)
