"""Compression codecs of record batches. The only module that imports zstandard.

The broker never calls this on its hot path (batches stay compressed as producers sent them); clients,
ListOffsets-by-timestamp and tests do.
"""

from __future__ import annotations

import gzip
import threading
import zlib

import zstandard

from logq.batch import CODEC_GZIP, CODEC_LZ4, CODEC_NONE, CODEC_SNAPPY, CODEC_ZSTD

CODEC_NAMES = {
    CODEC_NONE: "none",
    CODEC_GZIP: "gzip",
    CODEC_SNAPPY: "snappy",
    CODEC_LZ4: "lz4",
    CODEC_ZSTD: "zstd",
}

_ZSTD_MAX_OUTPUT = 1 << 30
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


def compress(codec: int, data: bytes, level: int | None = None) -> bytes:
    if codec == CODEC_NONE:
        return data
    if codec == CODEC_GZIP:
        return gzip.compress(data, compresslevel=6 if level is None else level)
    if codec == CODEC_ZSTD:
        return _zstd_compressor(3 if level is None else level).compress(data)
    raise UnsupportedCodecError(f"compression codec {CODEC_NAMES.get(codec, codec)} is not supported")


def decompress(codec: int, data: bytes | memoryview) -> bytes:
    if codec == CODEC_NONE:
        return bytes(data)
    if codec == CODEC_GZIP:
        return zlib.decompress(data, wbits=47)  # 32 + 15: accept a gzip or zlib header
    if codec == CODEC_ZSTD:
        # Frames written in streaming mode carry no content size, so bound the output explicitly.
        return zstandard.ZstdDecompressor().decompressobj().decompress(bytes(data))[:_ZSTD_MAX_OUTPUT]
    raise UnsupportedCodecError(f"compression codec {CODEC_NAMES.get(codec, codec)} is not supported")
