"""Creating many new, empty partitions at once (a queue of 10,000 partitions).

One at a time, a partition costs an fsync of the data directory, of its own directory and of its
``queue.id`` (each a journal commit) and a synced RocksDB write: about 40 partitions a second on this
project's machine. Here each kind of work is done for the whole batch:

1. every directory, its first (empty) segment file and its ``queue.id``, written without fsyncs (the
   namespace operations themselves are most of the time left: 3 per partition);
2. one ``durable.fsync_many`` that makes all of them durable;
3. one synced RocksDB write with every partition's checkpoint (offset 0 of segment 0) and segment times.

The order keeps a crash harmless: a checkpoint is written only once the files it describes are durable.
A crash before step 3 leaves directories without a checkpoint (or without a segment, or with an empty
``queue.id``), which the loader treats as it treats any partition without one: it creates the missing
segment and rebuilds an (empty) index; a missing or empty ``queue.id`` is written when the queue is
hosted again.

Only partitions whose directory does not exist and whose name has nothing in the index come here;
``LogManager`` sends any other through the loader, one by one.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from logq.clock import Clock
from logq.config import LogConfig
from logq.segments import files
from logq.segments.index import Checkpoint, IndexStore, SparseIndexer
from logq.segments.leader_epochs import LeaderEpochHistory
from logq.segments.log import PartitionLog
from logq.segments.producer_state import ProducerStateTable
from logq.segments.segment import Segment


@dataclass(frozen=True, slots=True)
class NewPartition:
    queue: str
    partition: int
    config: LogConfig
    queue_id: str = ""  # recorded in the directory's queue.id when not empty

    @property
    def name(self) -> str:
        return files.partition_dir_name(self.queue, self.partition)


def create_partitions(
    data_dir: Path, store: IndexStore, wanted: Sequence[NewPartition], clock: Clock
) -> list[PartitionLog]:
    """Create the partitions of ``wanted`` (none may exist yet), durable when this returns."""
    directories: list[Path] = []
    written: list[Path] = []
    for spec in wanted:
        directory = data_dir / spec.name
        directory.mkdir(mode=0o700)
        directories.append(directory)
        segment_file = directory / files.segment_name(0)
        os.close(os.open(segment_file, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
        written.append(segment_file)
        if spec.queue_id:
            # Written in place, not through a temp file: the directory is new, so a crash can only leave
            # no queue.id or an empty one (read as none, and written again when the queue is hosted).
            queue_id_file = directory / files.QUEUE_ID_FILE
            fd = os.open(queue_id_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, spec.queue_id.encode())
            finally:
                os.close(fd)
            written.append(queue_id_file)
    files.fsync_many(data_dir, written, [*directories, data_dir])

    now = clock.time_ms()
    store.start_partitions([spec.name for spec in wanted], (now, now))

    logs = []
    for spec, directory in zip(wanted, directories, strict=True):
        index = store.partition(spec.name)
        segment = Segment(directory, 0, size=0)
        segment.first_append_ms = segment.last_append_ms = now
        logs.append(
            PartitionLog(
                name=spec.name,
                directory=directory,
                index=index,
                indexer=SparseIndexer(index, spec.config.index_interval_bytes, empty=True),
                segments=[segment],
                producers=ProducerStateTable(),
                next_offset=0,
                checkpoint=Checkpoint(0, 0, 0),
                config=spec.config,
                clock=clock,
                leader_epochs=LeaderEpochHistory(),
            )
        )
    return logs
