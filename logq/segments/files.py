"""File names and crash-safe small-file writes.

A partition lives in ``<data dir>/<queue>-<partition>/``. Its segment files are named by their base
offset, zero-padded to 20 digits so that ``ls`` sorts them numerically. State lives in suffixes:

    00000000000000001234.log       a live segment
    00000000000000001234.deleted   removed by retention or truncation, unlinked after a delay
    <name>.tmp                     a half-written small file (removed at startup)
    <queue>-<partition>.<hex>-delete   a deleted partition directory awaiting removal
"""

from __future__ import annotations

import os
import re
from pathlib import Path

LOG_SUFFIX = ".log"
DELETED_SUFFIX = ".deleted"
TMP_SUFFIX = ".tmp"
DELETED_DIR_SUFFIX = "-delete"

_PARTITION_DIR = re.compile(r"^(?P<queue>[a-zA-Z0-9._-]{1,249})-(?P<partition>0|[1-9][0-9]{0,8})$")


def segment_name(base_offset: int) -> str:
    return f"{base_offset:020d}{LOG_SUFFIX}"


def parse_segment_name(name: str) -> int | None:
    """The base offset of a live segment file name, or None for any other file."""
    stem, dot, suffix = name.partition(".")
    if dot and "." + suffix == LOG_SUFFIX and len(stem) == 20 and stem.isdigit():
        return int(stem)
    return None


def partition_dir_name(queue: str, partition: int) -> str:
    return f"{queue}-{partition}"


def parse_partition_dir(name: str) -> tuple[str, int] | None:
    match = _PARTITION_DIR.match(name)
    if match is None:
        return None
    return match["queue"], int(match["partition"])


def fsync_dir(path: Path) -> None:
    """Make a create, rename or unlink inside ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes) -> None:
    """Write a small file so that a crash leaves either the old or the new content.

    temp file -> fsync -> rename over the target -> fsync of the directory.
    """
    tmp = path.with_name(path.name + TMP_SUFFIX)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def remove_durably(path: Path) -> bool:
    """Unlink ``path`` if it exists and fsync its directory; True if it existed."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    fsync_dir(path.parent)
    return True
