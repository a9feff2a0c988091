"""Loading a partition at startup, in numbered passes (after Kafka's LogLoader).

Pass 1  Clean up: unlink ``*.tmp``, ``*.deleted`` and ``*.cleaned`` files that a crash left behind, and
        finish a log cleaner's swap that a crash interrupted: a ``<base>-<end>.swap`` file exists only
        once the cleaned segment is whole and fsynced, so it replaces every segment in [base, end)
        (some may be gone already) and the index is rebuilt. A crash before the swap name existed
        leaves the old segments, untouched.
Pass 2  List the segment files in base-offset order (a new partition gets its first, empty one); each
        file is opened on first use (``Segment``), so an idle partition holds no descriptor.
Pass 3  Decide how much to scan:
        - clean shutdown and the checkpoint sits at the end of the last segment: nothing;
        - a checkpoint that agrees with the files: only what was written after it (the unflushed tail),
          so the time to reopen does not grow with the size of the log;
        - no checkpoint (a new or lost index), one that disagrees with the files, or an index entry
          that points past a segment's end: forget the partition's index and scan every segment.
Pass 4  Scan: validate every batch (length, magic, CRC-32C, continuous offsets), re-index it and replay
        its header into the idempotent-producer state and the leader-epoch history (its
        partitionLeaderEpoch). At the first invalid batch cut the segment there, delete every later
        segment and log how many bytes were dropped. A corrupt batch is therefore never served. The
        leader-epoch history is then cut to the recovered log end and clamped to the log start.
Pass 5  fsync what was recovered after the checkpoint and write a fresh checkpoint, so that the next
        start scans nothing.
Pass 6  The log start: the larger of ``files.LOG_START_FILE`` (DeleteRecords) and the first segment's base.
        A log that ends before it (its tail lost) is emptied and continues there: it never moves back.
"""

from __future__ import annotations

import itertools
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from logq import batch as rb
from logq.clock import Clock
from logq.config import LogConfig
from logq.segments import files
from logq.segments.index import Checkpoint, PartitionIndex, SparseIndexer
from logq.segments.leader_epochs import LeaderEpochHistory
from logq.segments.log import PartitionLog
from logq.segments.producer_state import ProducerStateTable
from logq.segments.segment import Segment

log = logging.getLogger(__name__)


@dataclass(slots=True)
class LoadReport:
    name: str
    full_rebuild: bool = False
    reason: str = ""
    scanned_batches: int = 0
    scanned_bytes: int = 0
    truncated_bytes: int = 0
    dropped_segments: int = 0


def load_partition(
    directory: Path, index: PartitionIndex, config: LogConfig, clock: Clock, *, clean_shutdown: bool
) -> tuple[PartitionLog, LoadReport]:
    report = LoadReport(directory.name)
    swapped = _finish_swaps(directory)  # pass 1
    gaps = (directory / files.CLEANER_CHECKPOINT).exists()
    found = _list_segments(directory)
    checkpoint = index.read_checkpoint()
    segments = _open_segments(directory, found, checkpoint)  # pass 2

    problem = _checkpoint_problem(checkpoint, segments, index)  # pass 3
    if swapped and not problem:
        problem = "a cleaned segment replaced older ones when the broker stopped"
    producers = ProducerStateTable()
    epochs = LeaderEpochHistory()
    if checkpoint is None or problem:
        report.full_rebuild = True
        report.reason = problem or "no checkpoint in the index"
        if checkpoint is not None or index.last_offset_entry() is not None:
            log.warning("%s: %s; rebuilding its index from the segments", directory.name, report.reason)
        index.clear(keep_segment_times=True)
        start_segment, position, next_offset = 0, 0, segments[0].base_offset
    else:
        start_segment = next(i for i, s in enumerate(segments) if s.base_offset == checkpoint.segment_base)
        position, next_offset = checkpoint.position, checkpoint.next_offset
        index.delete_offsets_from(next_offset)
        index.delete_times_from_offset(next_offset)
        producers.load(index.producer_entries())
        epochs = LeaderEpochHistory(index.leader_epochs())
    for earlier, later in itertools.pairwise(segments):
        earlier.next_offset = later.base_offset

    indexer = SparseIndexer(index, config.index_interval_bytes)
    nothing_to_scan = (
        clean_shutdown
        and not report.full_rebuild
        and start_segment == len(segments) - 1
        and segments[-1].size == position
    )
    scanned: list[Segment] = []
    # Only bytes after the checkpoint can be unsynced (it is written once its data is fsynced): pass 5
    # fsyncs just these segments, so a crash does not make the next start open and fsync every partition.
    unsynced = [s for i, s in enumerate(segments[start_segment:]) if s.size > (position if i == 0 else 0)]
    if nothing_to_scan:
        segments[-1].next_offset = next_offset
    else:
        next_offset = _scan(  # pass 4
            segments,
            start=start_segment,
            position=position,
            expected=next_offset,
            indexer=indexer,
            producers=producers,
            epochs=epochs,
            report=report,
            gaps=gaps,
        )
        scanned = segments[start_segment:]
    if report.full_rebuild:
        producers.mark_all_dirty()
        epochs.mark_dirty()
    log_start = max(files.read_log_start(directory), segments[0].base_offset)
    epochs.truncate_from_end(next_offset)
    epochs.truncate_from_start(min(log_start, next_offset))

    now = clock.time_ms()
    known = index.segment_times()
    for segment in segments:
        first, last = known.get(segment.base_offset, (-1, -1))
        if segment in scanned or last < 0:
            # Appends after the last checkpoint left no recorded time: the file's mtime is the time of
            # its last write (capped at now, so a fake or skewed clock never makes data look older).
            last = max(last, min(now, int(os.stat(segment.path).st_mtime * 1000)))
        segment.first_append_ms = first if first >= 0 else last
        segment.last_append_ms = last

    indexer.write_pending()
    for segment in unsynced:  # pass 5
        if not segment.closed:  # not dropped by the scan
            segment.flush()
    active = segments[-1]
    changed, gone = producers.take_changes()
    final = Checkpoint(active.base_offset, active.size, next_offset)
    index.commit(
        final,
        segment_times={s.base_offset: (s.first_append_ms, s.last_append_ms) for s in segments},
        producers=changed,
        dropped_producers=gone,
        leader_epochs=epochs.take_changes(),
    )
    partition_log = PartitionLog(
        name=directory.name,
        directory=directory,
        index=index,
        indexer=indexer,
        segments=segments,
        producers=producers,
        next_offset=next_offset,
        checkpoint=final,
        config=config,
        clock=clock,
        leader_epochs=epochs,
        log_start_offset=log_start,
    )
    if log_start > next_offset:  # the tail below the start was lost (a power failure): continue there
        log.warning("%s: the log ends at %d, before its log start %d", directory.name, next_offset, log_start)
        partition_log.restart_at(log_start)
    return partition_log, report


def _list_segments(directory: Path) -> list[tuple[int, int]]:
    """(base offset, size) of the segment files, after unlinking what a crash left behind."""
    found = []
    with os.scandir(directory) as entries:
        for entry in entries:
            if entry.name.endswith((files.TMP_SUFFIX, files.DELETED_SUFFIX, files.CLEANED_SUFFIX)):
                Path(entry.path).unlink(missing_ok=True)
            elif (base := files.parse_segment_name(entry.name)) is not None:
                found.append((base, entry.stat().st_size))
    return sorted(found)


def _finish_swaps(directory: Path) -> bool:
    """Complete the log cleaner's interrupted swaps (pass 1); True if there was one. Repeating this after
    another crash does the same again: the swap file is renamed last."""
    swaps = []
    with os.scandir(directory) as entries:
        for entry in entries:
            if (span := files.parse_swap_name(entry.name)) is not None:
                swaps.append((span, Path(entry.path)))
    for (base, end), path in sorted(swaps):
        with os.scandir(directory) as entries:
            replaced = [
                Path(e.path)
                for e in entries
                if (b := files.parse_segment_name(e.name)) is not None and base <= b < end
            ]
        for old in replaced:
            old.unlink()
        os.replace(path, directory / files.segment_name(base))
        files.fsync_dir(directory)
        log.warning(
            "%s: finished the swap of a cleaned segment for offsets %d-%d (%d old segments replaced)",
            directory.name, base, end - 1, len(replaced),
        )  # fmt: skip
    return bool(swaps)


def _open_segments(
    directory: Path, found: list[tuple[int, int]], checkpoint: Checkpoint | None
) -> list[Segment]:
    if found:
        return [Segment(directory, base, size=size) for base, size in found]
    # A brand-new partition, or one whose files are all gone: continue numbering where the index says.
    segment = Segment(directory, checkpoint.next_offset if checkpoint else 0, create=True)
    files.fsync_dir(directory)
    return [segment]


def _checkpoint_problem(checkpoint: Checkpoint | None, segments: list[Segment], index: PartitionIndex) -> str:
    """Why the checkpoint (and so the index) cannot be trusted, or "" when it can."""
    if checkpoint is None:
        return ""
    by_base = {s.base_offset: s for s in segments}
    segment = by_base.get(checkpoint.segment_base)
    if segment is None:
        return f"the checkpoint names segment {checkpoint.segment_base}, which does not exist"
    if segment.size < checkpoint.position:
        return (
            f"segment {segment.path.name} ({segment.size} bytes) is shorter than its checkpoint "
            f"({checkpoint.position})"
        )
    if checkpoint.next_offset < segment.base_offset or (checkpoint.position == 0) != (
        checkpoint.next_offset == segment.base_offset
    ):
        return f"the checkpoint offset {checkpoint.next_offset} does not fit segment {segment.path.name}"
    if checkpoint.next_offset > 0:
        entry = index.floor_offset(checkpoint.next_offset - 1)
        if entry is not None:
            entry_offset, base, position = entry
            owner = by_base.get(base)
            if owner is None or position + rb.LOG_OVERHEAD > owner.size:
                return f"the index entry for offset {entry_offset} points past the end of its segment"
            if rb.read_prefix(owner.read(position, rb.LOG_OVERHEAD))[0] != entry_offset:
                return f"the index entry for offset {entry_offset} does not point at that batch"
    return ""


def _scan(
    segments: list[Segment],
    *,
    start: int,
    position: int,
    expected: int,
    indexer: SparseIndexer,
    producers: ProducerStateTable,
    epochs: LeaderEpochHistory,
    report: LoadReport,
    gaps: bool,
) -> int:
    """Pass 4 over segments[start:] from ``position``; returns the recovered log end offset."""
    for i in range(start, len(segments)):
        segment = segments[i]
        if i > start:
            position = 0
            # above: a gap the log cleaner left, in a log it has been through (``gaps``)
            if segment.base_offset < expected or (segment.base_offset != expected and not gaps):
                _drop_from(
                    segments, i, report, f"segment {segment.path.name} should start at offset {expected}"
                )
                break
            expected = segment.base_offset
        found, valid_end, problem = segment.scan(position, expected, gaps=gaps)
        for pos, header in found:
            indexer.add(segment.base_offset, pos, header.base_offset, header.size, header.max_timestamp)
            producers.update(header, header.base_offset)
            epochs.replay(header.partition_leader_epoch, header.base_offset)
            expected = header.last_offset + 1
            report.scanned_bytes += header.size
        report.scanned_batches += len(found)
        segment.next_offset = expected
        if problem:
            cut = segment.size - valid_end
            segment.truncate(valid_end)
            report.truncated_bytes += cut
            log.warning("%s: %s; truncated %d bytes of %s", report.name, problem, cut, segment.path.name)
            _drop_from(segments, i + 1, report, "they follow a truncated segment")
            break
    return expected


def _drop_from(segments: list[Segment], first: int, report: LoadReport, why: str) -> None:
    """Delete segments[first:] (recovery found them unusable)."""
    doomed = segments[first:]
    if not doomed:
        return
    dropped = sum(s.size for s in doomed)
    for segment in doomed:
        segment.close()
        segment.path.unlink()
    files.fsync_dir(doomed[0].path.parent)
    del segments[first:]
    report.truncated_bytes += dropped
    report.dropped_segments += len(doomed)
    log.warning("%s: dropped %d segments (%d bytes): %s", report.name, len(doomed), dropped, why)
