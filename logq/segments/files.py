"""File names of the partition log (the crash-safe writes are re-exported from ``logq.durable``).

A partition lives in ``<data dir>/<queue>-<partition>/``. Its segment files are named by their base
offset, zero-padded to 20 digits so that ``ls`` sorts them numerically. State lives in suffixes:

    00000000000000001234.log       a live segment
    00000000000000001234.deleted   removed by retention or truncation, unlinked after a delay
    queue.id                       the id of the queue this partition belongs to (QueueMetadata.queue_id)
    log-start-offset               the log start offset, where DeleteRecords put it inside a segment
    <name>.tmp                     a half-written small file (removed at startup)
    <base>.<tag>.cleaned           a segment the log cleaner is writing (removed at startup)
    <base>-<end>.swap              a cleaned segment replacing the segments in [base, end): the swap is
                                   decided once this name exists; startup finishes it (loader.py)
    cleaner-offset-checkpoint      the log cleaner's first dirty offset (logq/compaction/); its presence
                                   says the log may have offset gaps (recovery allows them only then)
    <queue>-<partition>.<hex>-delete   a deleted partition directory awaiting removal
"""

from __future__ import annotations

import re
from pathlib import Path

from logq.durable import (
    TMP_SUFFIX,
    DirectoryInUseError,
    atomic_write,
    fsync_dir,
    fsync_many,
    lock_directory,
    remove_durably,
)

__all__ = [
    "TMP_SUFFIX",
    "DirectoryInUseError",
    "atomic_write",
    "fsync_dir",
    "fsync_many",
    "lock_directory",
    "parse_partition_dir",
    "parse_segment_name",
    "partition_dir_name",
    "read_log_start",
    "read_queue_id",
    "remove_durably",
    "segment_name",
    "write_log_start",
    "write_queue_id",
]

LOG_SUFFIX = ".log"
QUEUE_ID_FILE = "queue.id"
LOG_START_FILE = "log-start-offset"
DELETED_SUFFIX = ".deleted"
DELETED_DIR_SUFFIX = "-delete"
CLEANED_SUFFIX = ".cleaned"
CLEANER_CHECKPOINT = "cleaner-offset-checkpoint"
SWAP_SUFFIX = ".swap"

_PARTITION_DIR = re.compile(r"^(?P<queue>[a-zA-Z0-9._-]{1,249})-(?P<partition>0|[1-9][0-9]{0,8})$")


def segment_name(base_offset: int) -> str:
    return f"{base_offset:020d}{LOG_SUFFIX}"


def parse_segment_name(name: str) -> int | None:
    """The base offset of a live segment file name, or None for any other file."""
    stem, dot, suffix = name.partition(".")
    if dot and "." + suffix == LOG_SUFFIX and len(stem) == 20 and stem.isdigit():
        return int(stem)
    return None


def cleaned_name(base_offset: int, tag: str) -> str:
    """``tag`` tells passes apart (a killed pass's file is never another's)."""
    return f"{base_offset:020d}.{tag}{CLEANED_SUFFIX}"


def swap_name(base_offset: int, end_offset: int) -> str:
    return f"{base_offset:020d}-{end_offset:020d}{SWAP_SUFFIX}"


def parse_swap_name(name: str) -> tuple[int, int] | None:
    """(base, end) of a swap file name, or None for any other file."""
    stem, dot, suffix = name.partition(".")
    base, dash, end = stem.partition("-")
    if dot and "." + suffix == SWAP_SUFFIX and dash and base.isdigit() and end.isdigit():
        return int(base), int(end)
    return None


def read_queue_id(directory: Path) -> str:
    """The queue id recorded in a partition directory ("" if none is)."""
    try:
        return (directory / QUEUE_ID_FILE).read_text().strip()
    except FileNotFoundError:
        return ""


def write_queue_id(directory: Path, queue_id: str) -> None:
    atomic_write(directory / QUEUE_ID_FILE, queue_id.encode())


def read_log_start(directory: Path) -> int:
    """The log start offset recorded in a partition directory (0 if none is, or if it is unreadable: the
    first segment's base offset then rules, as before any DeleteRecords)."""
    try:
        return max(int((directory / LOG_START_FILE).read_text().strip()), 0)
    except (FileNotFoundError, ValueError):
        return 0


def write_log_start(directory: Path, offset: int) -> None:
    """Kept out of the index (derived data a rebuild may throw away): this offset exists nowhere else."""
    atomic_write(directory / LOG_START_FILE, str(offset).encode())


def partition_dir_name(queue: str, partition: int) -> str:
    return f"{queue}-{partition}"


def parse_partition_dir(name: str) -> tuple[str, int] | None:
    match = _PARTITION_DIR.match(name)
    if match is None:
        return None
    return match["queue"], int(match["partition"])
