"""Compression codecs of record batches. The only module that imports zstandard and cramjam (lz4, snappy).

The broker's produce path calls this only for a queue with a compression.type codec
(logq/broker/batch_rewrite.py); clients, ListOffsets-by-timestamp, the offset store and tests do too.
"""

from __future__ import annotations

import gzip
import struct
import threading
import zlib

import cramjam
import zstandard

from logq.batch import CODEC_GZIP, CODEC_LZ4, CODEC_NONE, CODEC_SNAPPY, CODEC_ZSTD

CODEC_NAMES = {
    CODEC_NONE: "none",
    CODEC_GZIP: "gzip",
    CODEC_SNAPPY: "snappy",
    CODEC_LZ4: "lz4",
    CODEC_ZSTD: "zstd",
}

# A queue's compression.type codec names (Kafka's) -> the codec its batches are stored in.
COMPRESSION_TYPE_CODECS = {
    "uncompressed": CODEC_NONE,
    "gzip": CODEC_GZIP,
    "snappy": CODEC_SNAPPY,
    "lz4": CODEC_LZ4,
    "zstd": CODEC_ZSTD,
}
# Snappy as Kafka's Java client and brokers write it: snappy-java's "xerial" framing (a header, then
# blocks of at most 32 KiB each as [int32 length][raw snappy]). librdkafka writes raw snappy; both are read.
_XERIAL_HEADER = b"\x82SNAPPY\x00" + struct.pack(">ii", 1, 1)
_XERIAL_MAGIC = _XERIAL_HEADER[:8]
_XERIAL_BLOCK = 32 * 1024
_BLOCK_LENGTH = struct.Struct(">i")

_ZSTD_MAX_OUTPUT = 1 << 30
_ZSTD_STEP = 4096  # input bytes per step of decompress_at_most
_local = threading.local()  # compressors are not thread-safe, and building one costs ~150 us


def _zstd_compressor(level: int) -> zstandard.ZstdCompressor:
    cache: dict[int, zstandard.ZstdCompressor] | None = getattr(_local, "zstd", None)
    if cache is None:
        cache = _local.zstd = {}
    compressor = cache.get(level)
    if compressor is None:
        compressor = cache[level] = zstandard.ZstdCompressor(level=level)
    return compressor


class UnsupportedCodecError(ValueError):
    pass


class CorruptCompressedDataError(ValueError):
    """The bytes do not decompress with the batch's codec."""


class DecompressedTooLargeError(ValueError):
    """The bytes decompress to more than the caller allows (a compression bomb, or simply too much)."""


def compress(codec: int, data: bytes, level: int | None = None) -> bytes:
    if codec == CODEC_NONE:
        return data
    if codec == CODEC_GZIP:
        return gzip.compress(data, compresslevel=6 if level is None else level)
    if codec == CODEC_ZSTD:
        return _zstd_compressor(3 if level is None else level).compress(data)
    if codec == CODEC_LZ4:
        # Kafka's LZ4 frame: independent blocks (Kafka's Java reader decompresses each block alone)
        compressor = cramjam.lz4.Compressor(level, content_checksum=False, block_linked=False)
        compressor.compress(data)
        return bytes(compressor.finish())
    if codec == CODEC_SNAPPY:
        parts = [_XERIAL_HEADER]
        for start in range(0, len(data), _XERIAL_BLOCK):
            block = bytes(cramjam.snappy.compress_raw(data[start : start + _XERIAL_BLOCK]))
            parts += (_BLOCK_LENGTH.pack(len(block)), block)
        return b"".join(parts)
    raise UnsupportedCodecError(f"compression codec {CODEC_NAMES.get(codec, codec)} is not supported")


def decompress(codec: int, data: bytes | memoryview) -> bytes:
    """The decompressed bytes; CorruptCompressedDataError when they do not decompress."""
    if codec == CODEC_NONE:
        return bytes(data)
    try:
        if codec == CODEC_GZIP:
            return zlib.decompress(data, wbits=47)  # 32 + 15: accept a gzip or zlib header
        if codec == CODEC_ZSTD:
            # Frames written in streaming mode carry no content size, so bound the output explicitly.
            return zstandard.ZstdDecompressor().decompressobj().decompress(bytes(data))[:_ZSTD_MAX_OUTPUT]
        if codec == CODEC_LZ4:
            return bytes(cramjam.lz4.decompress(data))
        if codec == CODEC_SNAPPY:
            return b"".join(bytes(cramjam.snappy.decompress_raw(b)) for b in _snappy_blocks(data))
    except (zlib.error, zstandard.ZstdError, cramjam.DecompressionError) as exc:
        raise CorruptCompressedDataError(f"{CODEC_NAMES[codec]} data does not decompress: {exc}") from None
    raise UnsupportedCodecError(f"compression codec {CODEC_NAMES.get(codec, codec)} is not supported")


def _snappy_blocks(data: bytes | memoryview) -> list[memoryview]:
    """The raw snappy blocks of a batch's records: those of a xerial frame, or the whole as one."""
    view = memoryview(data)
    if bytes(view[:8]) != _XERIAL_MAGIC:
        return [view]
    blocks, pos = [], len(_XERIAL_HEADER)
    while pos < len(view):
        if len(view) - pos < _BLOCK_LENGTH.size:
            raise CorruptCompressedDataError("snappy data is truncated")
        (length,) = _BLOCK_LENGTH.unpack_from(view, pos)
        end = pos + _BLOCK_LENGTH.size + length
        if length < 0 or end > len(view):
            raise CorruptCompressedDataError("snappy data is truncated")
        blocks.append(view[pos + _BLOCK_LENGTH.size : end])
        pos = end
    return blocks


def decompress_at_most(codec: int, data: bytes | memoryview, limit: int) -> bytes:
    """``decompress``, but DecompressedTooLargeError as soon as the output passes ``limit`` bytes, before
    it is all in memory (the broker decompresses producers' batches to recompress them)."""
    if codec == CODEC_NONE:
        return bytes(data)
    try:
        if codec == CODEC_GZIP:
            inflater = zlib.decompressobj(wbits=47)
            out = inflater.decompress(data, limit + 1)
            if len(out) > limit:
                raise DecompressedTooLargeError(f"gzip records decompress to more than {limit} bytes")
            if not inflater.eof:
                raise CorruptCompressedDataError("gzip data is truncated")
            return out
        if codec == CODEC_ZSTD:
            size = zstandard.frame_content_size(data)  # -1: the frame does not say
            if size > limit:
                raise DecompressedTooLargeError(f"zstd records decompress to {size} bytes, over {limit}")
            if size >= 0:  # one allocation of that size; a frame that does not match it is an error
                return zstandard.ZstdDecompressor().decompress(data)
            # Without a size (a streaming compressor's frame), fed 4 KiB at a time: zstd expands at most
            # ~32,000x (128 KiB from a 4-byte block), so one step yields at most ~128 MiB, and the total
            # is checked between steps.
            zstd_inflater = zstandard.ZstdDecompressor().decompressobj()
            view, chunks, total = memoryview(data), [], 0
            for start in range(0, len(view), _ZSTD_STEP):
                chunk = zstd_inflater.decompress(view[start : start + _ZSTD_STEP])
                total += len(chunk)
                if total > limit:
                    raise DecompressedTooLargeError(f"zstd records decompress to more than {limit} bytes")
                chunks.append(chunk)
                if zstd_inflater.eof:
                    break
            if not zstd_inflater.eof:
                raise CorruptCompressedDataError("zstd data is truncated")
            return b"".join(chunks)
        if codec == CODEC_LZ4:  # LZ4 expands at most ~255x, so the batch's own size bounds this
            out = bytes(cramjam.lz4.decompress(data))
            if len(out) > limit:
                raise DecompressedTooLargeError(f"lz4 records decompress to more than {limit} bytes")
            return out
        if codec == CODEC_SNAPPY:  # every raw block states its length up front
            blocks = _snappy_blocks(data)
            size = sum(cramjam.snappy.decompress_raw_len(b) for b in blocks)
            if size > limit:
                raise DecompressedTooLargeError(f"snappy records decompress to {size} bytes, over {limit}")
            return b"".join(bytes(cramjam.snappy.decompress_raw(b)) for b in blocks)
    except (zlib.error, zstandard.ZstdError, cramjam.DecompressionError) as exc:
        raise CorruptCompressedDataError(f"{CODEC_NAMES[codec]} data does not decompress: {exc}") from None
    raise UnsupportedCodecError(f"compression codec {CODEC_NAMES.get(codec, codec)} is not supported")
