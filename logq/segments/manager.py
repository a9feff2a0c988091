"""LogManager: every partition log of one data directory, the shared index, and the shutdown marker.

Layout of a data directory:

    <data dir>/.lock                 held (flock) while a broker uses the directory
    <data dir>/.clean-shutdown       written last by a clean shutdown; deleted as soon as it is read
    <data dir>/meta.json             format version, and the cluster id once it joined one (atomic)
    <data dir>/index.rocksdb/        the shared RocksDB index (derived data)
    <data dir>/<queue>-<partition>/  one directory of segment files per partition (and queue.id)

Thread safety: create/delete/get may be called from any thread; the logs are thread-safe themselves.
Every log shares the directory's ``health`` (``health.py``): full, or offline after a failed fsync or
index write. An offline directory is never marked clean at shutdown, so the next start recovers it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import threading
import uuid
from collections.abc import Sequence
from pathlib import Path

from logq.clock import SYSTEM_CLOCK, Clock
from logq.config import LogConfig
from logq.errors import InconsistentClusterError, LogClosedError, StorageError
from logq.permissions import make_private_dir
from logq.segments import files
from logq.segments.creator import NewPartition, create_partitions
from logq.segments.health import StorageHealth, is_disk_full
from logq.segments.index import IndexStore
from logq.segments.loader import LoadReport, load_partition
from logq.segments.log import PartitionLog
from logq.segments.progress import Progress

log = logging.getLogger(__name__)

CLEAN_SHUTDOWN_MARKER = ".clean-shutdown"
META_FILE = "meta.json"
INDEX_DIR = "index.rocksdb"
FORMAT_VERSION = 1
CREATE_BATCH = 1000  # partitions created per batch (a progress line may follow each)
CREATE_LOG_ABOVE = 1000  # a creation of this many partitions or more logs its start and end
FLUSH_PERIOD_CHECK_S = 1.0  # how often the background flush reads its period again

QueuePartition = tuple[str, int]


class LogManager:
    def __init__(self, data_dir: Path, config: LogConfig | None = None, clock: Clock = SYSTEM_CLOCK) -> None:
        """Open (or create) a data directory and load every partition in it."""
        self.data_dir = data_dir
        self.config = config or LogConfig()
        self._flushed_at: dict[int, float] = {}  # id(log) -> when the flush loop last flushed it
        self.clock = clock
        self._logs: dict[QueuePartition, PartitionLog] = {}
        self._queue_ids: dict[QueuePartition, str] = {}  # as recorded in each partition directory
        self._lock = threading.Lock()
        self._closed = False
        self.health = StorageHealth(data_dir)
        make_private_dir(data_dir)
        try:
            self._lock_fd = files.lock_directory(data_dir)
        except files.DirectoryInUseError as exc:
            raise StorageError(str(exc)) from None
        self.clean_shutdown = files.remove_durably(data_dir / CLEAN_SHUTDOWN_MARKER)
        fresh = not (data_dir / META_FILE).exists()
        self._write_meta()
        self.index = IndexStore(data_dir / INDEX_DIR)
        self.reports: list[LoadReport] = []
        self._creating = threading.Lock()  # one creation at a time: concurrent ones may want the same names
        state = (
            "new data directory" if fresh else "clean shutdown" if self.clean_shutdown else "unclean shutdown"
        )
        found = self._partition_dirs()
        log.info("loading %d partitions from %s (%s)", len(found), data_dir, state)
        progress = Progress(log, "loading", len(found))
        for done, (parsed, path) in enumerate(found, 1):
            partition_log, report = load_partition(
                path,
                self.index.partition(path.name),
                self.config,
                clock,
                clean_shutdown=self.clean_shutdown,
            )
            partition_log.health = self.health
            self._logs[parsed] = partition_log
            self._queue_ids[parsed] = files.read_queue_id(path)
            self.reports.append(report)
            progress.step(done)
        log.info(
            "loaded %d partitions from %s (%s) in %.1f s", len(self._logs), data_dir, state, progress.elapsed
        )

    def _partition_dirs(self) -> list[tuple[QueuePartition, Path]]:
        """The partition directories, after removing the deleted ones a crash left behind."""
        found = []
        with os.scandir(self.data_dir) as entries:
            for entry in entries:
                if not entry.is_dir():
                    continue
                path = Path(entry.path)
                if entry.name.endswith(files.DELETED_DIR_SUFFIX):
                    shutil.rmtree(path, ignore_errors=True)
                elif (parsed := files.parse_partition_dir(entry.name)) is not None:
                    found.append((parsed, path))
        return sorted(found, key=lambda item: item[1].name)

    def claim_for_cluster(self, cluster_id: str) -> None:
        """Record the cluster this data directory belongs to, or refuse one it does not belong to (a broker
        pointed at another ZooKeeper or chroot, or at one whose data was wiped, must not mix its logs into
        that cluster: Kafka's InconsistentClusterIdException)."""
        path = self.data_dir / META_FILE
        meta = json.loads(path.read_text())
        recorded = meta.get("cluster_id")
        if recorded is None:
            files.atomic_write(path, json.dumps({**meta, "cluster_id": cluster_id}).encode())
        elif recorded != cluster_id:
            raise InconsistentClusterError(
                f"data directory {self.data_dir} belongs to cluster {recorded}, but the coordinator's "
                f"cluster is {cluster_id}: check zookeeper.connect (and its chroot), or use a new data "
                "directory"
            )

    def _write_meta(self) -> None:
        path = self.data_dir / META_FILE
        if path.exists():
            meta = json.loads(path.read_text())
            if meta.get("format_version") != FORMAT_VERSION:
                raise StorageError(f"{path}: unsupported format version {meta.get('format_version')}")
            return
        files.atomic_write(path, json.dumps({"format_version": FORMAT_VERSION}).encode())

    # --- partitions -------------------------------------------------------------------------------

    def get(self, queue: str, partition: int) -> PartitionLog | None:
        return self._logs.get((queue, partition))

    def queue_id(self, queue: str, partition: int) -> str:
        """The queue id recorded in the partition's directory ("" if none)."""
        return self._queue_ids.get((queue, partition), "")

    def partitions(self) -> list[QueuePartition]:
        with self._lock:
            return sorted(self._logs)

    def logs(self) -> list[PartitionLog]:
        """Every log, in the order of ``partitions()``."""
        with self._lock:
            return [self._logs[key] for key in sorted(self._logs)]

    def create(
        self, queue: str, partition: int, config: LogConfig | None = None, queue_id: str = ""
    ) -> PartitionLog:
        """Create a partition's log, or return the existing one (with ``config`` applied).

        ``queue_id`` (``QueueMetadata.queue_id``) is recorded in the partition directory. An existing log
        recorded under another id is what an older queue of the same name left behind (it was deleted
        while this broker was away): it is deleted and a new, empty log created. A log with no id takes
        this one."""
        spec = NewPartition(queue, partition, config or self.config, queue_id)
        with self._creating:
            self._check_open()
            if self._is_fresh(spec):
                self._create_fresh([spec])
                return self._logs[(queue, partition)]
            return self._create_one(queue, partition, config, queue_id)

    def create_many(self, wanted: Sequence[NewPartition]) -> None:
        """``create`` for many partitions (e.g. a queue of 10,000): the new ones in batches whose file and
        index work is shared (``creator.py``), with progress logged. Durable when this returns."""
        with self._creating:
            self._check_open()
            fresh: list[NewPartition] = []
            for spec in wanted:
                if self._is_fresh(spec):
                    fresh.append(spec)
                else:
                    self._create_one(spec.queue, spec.partition, spec.config, spec.queue_id)
            self._create_fresh(fresh)

    def _check_open(self) -> None:
        if self._closed:
            raise LogClosedError(f"{self.data_dir} is closed")

    def _create_fresh(self, fresh: Sequence[NewPartition]) -> None:
        if len(fresh) >= CREATE_LOG_ABOVE:
            log.info("creating %d partitions", len(fresh))
        progress = Progress(log, "creating", len(fresh))
        for start in range(0, len(fresh), CREATE_BATCH):
            if self.health.offline:
                raise self.health.offline_error()
            chunk = fresh[start : start + CREATE_BATCH]
            try:
                created = create_partitions(self.data_dir, self.index, chunk, self.clock)
            except OSError as exc:  # new, empty partitions: nothing is lost, and creating again retries
                if is_disk_full(exc):
                    raise self.health.no_space(f"creating {len(chunk)} partitions", exc) from exc
                raise StorageError(f"cannot create partitions in {self.data_dir}: {exc}") from exc
            with self._lock:
                for spec, partition_log in zip(chunk, created, strict=True):
                    partition_log.health = self.health
                    self._logs[(spec.queue, spec.partition)] = partition_log
                    self._queue_ids[(spec.queue, spec.partition)] = spec.queue_id
            progress.step(start + len(chunk))
        if len(fresh) >= CREATE_LOG_ABOVE:
            log.info("created %d partitions in %.1f s", len(fresh), progress.elapsed)

    def _is_fresh(self, spec: NewPartition) -> bool:
        """Nothing of this partition exists: not loaded, no directory, nothing in the index."""
        return (
            (spec.queue, spec.partition) not in self._logs
            and not (self.data_dir / spec.name).exists()
            and self.index.partition(spec.name).is_empty()
        )

    def _create_one(
        self, queue: str, partition: int, config: LogConfig | None, queue_id: str
    ) -> PartitionLog:
        key = (queue, partition)
        recorded = self._queue_ids.get(key, "")
        if key in self._logs and queue_id and recorded and recorded != queue_id:
            log.warning(
                "partition %s-%d on disk belongs to an older queue of that name (id %s, now %s): deleting it",
                queue,
                partition,
                recorded,
                queue_id,
            )
            self.delete(queue, partition)
        with self._lock:
            name = files.partition_dir_name(queue, partition)
            directory = self.data_dir / name
            existing = self._logs.get(key)
            if existing is not None:
                if config is not None:
                    existing.config = config
                if queue_id and not self._queue_ids.get(key):
                    files.write_queue_id(directory, queue_id)
                    self._queue_ids[key] = queue_id
                return existing
            if self.health.offline:
                raise self.health.offline_error()
            try:
                directory.mkdir(mode=0o700, exist_ok=True)
                files.fsync_dir(self.data_dir)
                if queue_id:
                    files.write_queue_id(directory, queue_id)
                partition_log, _ = load_partition(
                    directory,
                    self.index.partition(name),
                    config or self.config,
                    self.clock,
                    clean_shutdown=False,
                )
            except OSError as exc:  # a new, empty partition: nothing is lost, and creating it again retries
                if is_disk_full(exc):
                    raise self.health.no_space(f"creating partition {name}", exc) from exc
                raise StorageError(f"cannot create partition {name} in {self.data_dir}: {exc}") from exc
            partition_log.health = self.health
            self._logs[key] = partition_log
            self._queue_ids[key] = queue_id
            return partition_log

    def delete(self, queue: str, partition: int) -> bool:
        """Remove a partition and its data: rename the directory away, forget its index, then delete."""
        with self._lock:
            partition_log = self._logs.pop((queue, partition), None)
            self._queue_ids.pop((queue, partition), None)
        if partition_log is None:
            return False
        partition_log.abandon()
        name = files.partition_dir_name(queue, partition)
        doomed = self.data_dir / f"{name}.{uuid.uuid4().hex}{files.DELETED_DIR_SUFFIX}"
        os.replace(self.data_dir / name, doomed)
        files.fsync_dir(self.data_dir)
        self.index.partition(name).clear()
        for _attempt in range(3):  # a file written into it meanwhile (seen once under load) fails rmdir
            shutil.rmtree(doomed, ignore_errors=True)
            if not doomed.exists():
                break
        else:
            log.warning("could not remove %s yet: it is removed at the next start", doomed)
        return True

    # --- flushing ---------------------------------------------------------------------------------

    def flush_all(self, now: float | None = None) -> None:
        """fsync every log that has unflushed data (blocking). Nothing once the directory is offline.

        With ``now`` (the flush loop's clock), only the logs whose own period (a queue's ``flush.ms``,
        else ``log.flush.interval.ms``) has passed since their last background flush."""
        for partition_log in self.logs():
            if self.health.offline:
                return
            if now is not None:
                due = (
                    self._flushed_at.get(id(partition_log), 0.0)
                    + partition_log.config.flush_interval_ms / 1000
                )
                if due > now:
                    continue
                self._flushed_at[id(partition_log)] = now
            unsynced = partition_log.durable_offset < partition_log.log_end_offset
            if (unsynced or partition_log.durable_log_start < partition_log.log_start_offset) and not (
                partition_log.closed
            ):
                # closed concurrently (the next round retries), or a failure the health has logged
                with contextlib.suppress(StorageError):
                    partition_log.flush()

    async def run_background_flush(self) -> None:
        """Every log.flush.interval.ms, fsync what was appended (off the event loop). Runs until cancelled.
        The period is read again at least every second: ``config`` follows the dynamic broker settings,
        so a shorter period set while a long one runs is in force within a second."""
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            period = min([self.config.flush_interval_ms, *(x.config.flush_interval_ms for x in self.logs())])
            wait = last + period / 1000 - loop.time()
            if wait > 0:
                await asyncio.sleep(min(wait, FLUSH_PERIOD_CHECK_S))
                continue
            live = {id(x) for x in self.logs()}
            self._flushed_at = {k: v for k, v in self._flushed_at.items() if k in live}
            await asyncio.to_thread(self.flush_all, loop.time())
            last = loop.time()  # the period runs from the end of a flush, as a plain sleep would

    # --- lifecycle --------------------------------------------------------------------------------

    def close(self) -> None:
        """Clean shutdown: flush and checkpoint every log, close the index, then write the marker.

        A creation going on (in another thread) is finished first. An offline directory (or one that
        fails now) is abandoned instead, without the marker: its logs hold data that was never fsynced,
        and only the recovery of the next start knows what is on disk.
        """
        with self._creating:
            if self._closed:
                return
            if not self.health.offline:
                try:
                    for partition_log in self.logs():
                        partition_log.close()
                    self.index.close()
                except (OSError, StorageError) as exc:
                    self.health.fail("write", "the clean shutdown", exc)
            if self.health.offline:
                log.error(
                    "data directory %s is offline: closed without the clean-shutdown marker; the next "
                    "start recovers every partition from its segments",
                    self.data_dir,
                )
                self.abandon()
                return
            self._closed = True
        try:
            files.atomic_write(self.data_dir / CLEAN_SHUTDOWN_MARKER, b"")
        except OSError as exc:  # e.g. a full disk: everything is closed, the next start just checks more
            log.warning("cannot write the clean-shutdown marker in %s (%s)", self.data_dir, exc)
        os.close(self._lock_fd)

    def abandon(self) -> None:
        """Release everything without flushing, checkpointing or the marker: what a crash leaves."""
        if self._closed:
            return
        self._closed = True
        for partition_log in self.logs():
            partition_log.abandon()
        with contextlib.suppress(StorageError):  # RocksDB after a failed write: closing is all that is left
            self.index.close(flush=False)
        os.close(self._lock_fd)
