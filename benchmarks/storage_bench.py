"""Storage engine benchmark: the partition log against plain file I/O of the same bytes, in one run.

Usage: python benchmarks/storage_bench.py [--dir DIR] [--mib N] [--quick] [--json FILE]

Cases (each compared side by side with its baseline in alternating rounds, ratio = median of rounds):
- append of 1,000-record batches (100 B and 1 KiB values) vs ``os.write`` of the same bytes,
  without fsync and with an fsync after every 1 MiB (for the log: ``flush()``, i.e. segment fdatasync
  plus the synced RocksDB checkpoint write);
- sequential read of whole batches (1 MiB per read, page cache) vs ``os.pread`` of 1 MiB;
- reopen after SIGKILL: time until the first read is served, for a small and a large log (only the
  unflushed tail is scanned, so it must not grow with the size of the log);
- opening 1,000 partitions: seconds and resident memory of a fresh process.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from logq.batch import Record, build_batch  # noqa: E402
from logq.config import LogConfig  # noqa: E402
from logq.segments import LogManager, PartitionLog, space  # noqa: E402

MIB = 1 << 20


def make_batch_bytes(value_size: int) -> bytes:
    records = [Record(value=os.urandom(value_size), key=b"key-%06d" % i) for i in range(1000)]
    return build_batch(records, base_timestamp=int(time.time() * 1000))


def plain_writes(fd: int, batch: bytes, count: int, fsync_every: int, reserve: int = 0) -> float:
    """``os.write`` of the batch ``count`` times. ``reserve``: allocate blocks that many bytes ahead, as
    the log's active segment does: the baseline that shows the log's own cost once both sides skip the
    filesystem's block allocation."""
    since = reserved = 0
    position = os.lseek(fd, 0, os.SEEK_END)
    start = time.perf_counter()
    for _ in range(count):
        if reserve and position + len(batch) > reserved:
            space.reserve(fd, position, reserve)
            reserved = position + reserve
        position += os.write(fd, batch)
        since += len(batch)
        if fsync_every and since >= fsync_every:
            os.fsync(fd)
            since = 0
    if fsync_every:
        os.fsync(fd)
    return time.perf_counter() - start


def log_appends(plog: PartitionLog, batch: bytes, count: int, fsync_every: int) -> float:
    since = 0
    start = time.perf_counter()
    for _ in range(count):
        plog.append(batch)
        since += len(batch)
        if fsync_every and since >= fsync_every:
            plog.flush()
            since = 0
    if fsync_every:
        plog.flush()
    return time.perf_counter() - start


def drop_file_cache(path: Path) -> None:
    """Write a file back and evict it from the page cache."""
    fd = os.open(path, os.O_RDONLY)
    os.fsync(fd)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)


def summary(total: int, count: int, plain_s: float, log_s: float, ratios: list[float]) -> dict[str, float]:
    return {
        "mb_per_s": total / log_s / 1e6,
        "batches_per_s": count / log_s,
        "msgs_per_s": count * 1000 / log_s,
        "plain_mb_per_s": total / plain_s / 1e6,
        "ratio": statistics.median(ratios),
    }


def reserved_summary(total: int, reserved_s: float, ratios: list[float]) -> dict[str, float]:
    return {"reserved_mb_per_s": total / reserved_s / 1e6, "ratio_vs_reserved": statistics.median(ratios)}


def append_case(
    work: Path, value_size: int, total_mib: int, fsync_every: int, rounds: int
) -> dict[str, float]:
    """Plain writes and log appends alternate in rounds, so that both meet the same machine; the ratio is
    the median of the rounds' ratios."""
    batch = make_batch_bytes(value_size)
    per_round = max(1, total_mib * MIB // len(batch) // rounds)
    manager = LogManager(work / "append", LogConfig(max_message_bytes=64 * MIB))
    plog = manager.create("bench", 0)
    plain, reserved = work / "plain.bin", work / "reserved.bin"
    fd = os.open(plain, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    reserved_fd = os.open(reserved, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    plain_s = log_s = reserved_s = 0.0
    ratios, reserved_ratios = [], []
    try:
        for r in range(rounds):
            runs = {
                "plain": lambda: plain_writes(fd, batch, per_round, fsync_every),
                "log": lambda: log_appends(plog, batch, per_round, fsync_every),
                "reserved": lambda: plain_writes(reserved_fd, batch, per_round, fsync_every, 4 * MIB),
            }
            order = list(runs)[r % 3 :] + list(runs)[: r % 3]  # each side goes first, second and last
            took = {name: runs[name]() for name in order}
            p, q, pr = took["plain"], took["log"], took["reserved"]
            plain_s, log_s, reserved_s = plain_s + p, log_s + q, reserved_s + pr
            ratios.append(p / q)
            reserved_ratios.append(pr / q)
            # Untimed: write back and evict every file, so every round starts from a clean page cache
            # instead of inheriting another side's dirty pages (which the kernel throttles).
            for path in [plain, reserved, *(work / "append" / "bench-0").glob("*.log")]:
                drop_file_cache(path)
    finally:
        os.close(fd)
        os.close(reserved_fd)
        manager.abandon()
        shutil.rmtree(work / "append")
        plain.unlink()
        reserved.unlink()
    total = per_round * rounds * len(batch)
    return summary(total, per_round * rounds, plain_s, log_s, ratios) | reserved_summary(
        total, reserved_s, reserved_ratios
    )


def read_case(work: Path, value_size: int, total_mib: int, rounds: int) -> dict[str, float]:
    """Both files are written first (so they sit in the page cache), then read whole in alternating
    rounds; the ratio is the median of the rounds' ratios."""
    batch = make_batch_bytes(value_size)
    count = max(1, total_mib * MIB // len(batch))
    manager = LogManager(work / "read", LogConfig(max_message_bytes=64 * MIB))
    plog = manager.create("bench", 0)
    plain = work / "plain-read.bin"
    fd = os.open(plain, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    plain_writes(fd, batch, count, 0)
    log_appends(plog, batch, count, 0)
    plog.high_watermark = plog.log_end_offset
    total = count * len(batch)

    def read_plain() -> float:
        start = time.perf_counter()
        position = 0
        while position < total:
            position += len(os.pread(fd, MIB, position))
        return time.perf_counter() - start

    def read_log() -> float:
        start = time.perf_counter()
        offset, end, got = 0, plog.log_end_offset, 0
        while offset < end:
            data = plog.read(offset, MIB)
            got += len(data)
            offset += len(data) // len(batch) * 1000
        assert got == total
        return time.perf_counter() - start

    plain_s = log_s = 0.0
    ratios = []
    try:
        for r in range(rounds):
            if r % 2 == 0:
                p, q = read_plain(), read_log()
            else:
                q, p = read_log(), read_plain()
            plain_s, log_s = plain_s + p, log_s + q
            ratios.append(p / q)
    finally:
        os.close(fd)
        manager.close()
        shutil.rmtree(work / "read")
        plain.unlink()
    return summary(total * rounds, count * rounds, plain_s, log_s, ratios)


WRITER = """
import os, sys, signal
sys.path.insert(0, sys.argv[3])
from logq.config import LogConfig
from logq.segments import LogManager
from logq.testing import make_batch
data_dir, total = sys.argv[1], int(sys.argv[2])
manager = LogManager(__import__("pathlib").Path(data_dir), LogConfig(max_message_bytes=1 << 26))
plog = manager.create("bench", 0)
batch = make_batch(1000, value_size=100)
written = 0
while written < total:
    plog.append(batch)
    written += len(batch)
    if written % (64 << 20) < len(batch):
        plog.flush()  # what log.flush.interval.ms does in a broker
plog.flush()
for _ in range(80):  # an unflushed tail of about 8 MiB
    plog.append(batch)
os.kill(os.getpid(), signal.SIGKILL)
"""

READER = """
import sys, time
sys.path.insert(0, sys.argv[2])
start = time.perf_counter()
from pathlib import Path
from logq.segments import LogManager
t0 = time.perf_counter()
manager = LogManager(Path(sys.argv[1]))
plog = manager.get("bench", 0)
data = plog.read(plog.log_end_offset - 1, 1 << 20)
assert data
print(time.perf_counter() - t0, manager.reports[0].scanned_bytes)
"""


def reopen_case(work: Path, total_mib: int) -> dict[str, float]:
    data_dir = work / f"reopen-{total_mib}"
    subprocess.run(
        [sys.executable, "-c", WRITER, str(data_dir), str(total_mib * MIB), str(ROOT)], check=False
    )
    out = subprocess.run(
        [sys.executable, "-c", READER, str(data_dir), str(ROOT)], check=True, capture_output=True, text=True
    ).stdout.split()
    shutil.rmtree(data_dir)
    return {"log_mib": total_mib, "seconds_to_first_read": float(out[0]), "scanned_mib": int(out[1]) / MIB}


OPENER = """
import resource, sys, time
sys.path.insert(0, sys.argv[2])
from pathlib import Path
from logq.segments import LogManager
def rss_kib():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
before = rss_kib()
start = time.perf_counter()
manager = LogManager(Path(sys.argv[1]))
elapsed = time.perf_counter() - start
for queue, partition in manager.partitions():
    assert manager.get(queue, partition).read(0, 4096)
served = time.perf_counter() - start
print(elapsed, served, len(manager.partitions()), rss_kib() - before, rss_kib())
manager.close()
"""


def partitions_case(work: Path, partitions: int) -> dict[str, float]:
    from logq.testing import make_batch

    data_dir = work / "wide"
    manager = LogManager(data_dir)
    for p in range(partitions):
        manager.create("wide", p).append(make_batch(10, value_size=100))
    manager.close()
    out = subprocess.run(
        [sys.executable, "-c", OPENER, str(data_dir), str(ROOT)], check=True, capture_output=True, text=True
    ).stdout.split()
    shutil.rmtree(data_dir)
    return {
        "partitions": int(out[2]),
        "open_seconds": float(out[0]),
        "open_and_read_each_seconds": float(out[1]),
        "rss_growth_mib": int(out[3]) / 1024,
        "rss_total_mib": int(out[4]) / 1024,
    }


def markdown(results: dict[str, Any]) -> str:
    """The results tables of docs/benchmarks.md."""
    lines = [
        "| case | logq | plain file I/O | ratio | target | plain into reserved blocks | ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for label in ("100B", "1KiB"):
        for kind, target in (("nofsync", ">= 0.80"), ("fsync_1MiB", ">= 0.50")):
            r = results[f"append_{label}_{kind}"]
            lines.append(
                f"| append, {label} values, {kind.replace('_', ' every ')} | {r['mb_per_s']:,.0f} MB/s, "
                f"{r['batches_per_s']:,.0f} batches/s ({r['msgs_per_s'] / 1e6:,.2f} M msg/s) | "
                f"{r['plain_mb_per_s']:,.0f} MB/s | {r['ratio']:.2f} | {target} | "
                f"{r['reserved_mb_per_s']:,.0f} MB/s | {r['ratio_vs_reserved']:.2f} |"
            )
        r = results[f"read_{label}"]
        lines.append(
            f"| read from page cache, {label} values | {r['mb_per_s']:,.0f} MB/s "
            f"({r['msgs_per_s'] / 1e6:,.1f} M msg/s) | {r['plain_mb_per_s']:,.0f} MB/s | "
            f"{r['ratio']:.2f} | >= 0.80 | | |"
        )
    lines += [
        "",
        "| reopen after SIGKILL | log size | unflushed tail scanned | time to first read |",
        "|---|---|---|---|",
    ]
    for key, r in results.items():
        if key.startswith("reopen"):
            lines.append(
                f"| {key} | {r['log_mib']} MiB | {r['scanned_mib']:.1f} MiB | "
                f"{r['seconds_to_first_read'] * 1000:.0f} ms |"
            )
    r = results["open_1000_partitions"]
    lines += [
        "",
        "| open 1,000 partitions | open | open + one read each | RSS growth | RSS total |",
        "|---|---|---|---|---|",
        f"| {r['partitions']} partitions | {r['open_seconds']:.2f} s | "
        f"{r['open_and_read_each_seconds']:.2f} s | {r['rss_growth_mib']:.1f} MiB | "
        f"{r['rss_total_mib']:.1f} MiB |",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=ROOT / "bench-data", help="scratch directory (same disk)")
    parser.add_argument("--mib", type=int, default=512, help="MiB written per append case")
    parser.add_argument("--rounds", type=int, default=8, help="alternating rounds per case")
    parser.add_argument("--reopen-mib", type=int, nargs=2, default=[128, 1024])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if args.quick:
        args.mib, args.reopen_mib = 64, [16, 64]
    args.dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=args.dir))
    results: dict[str, object] = {}
    try:
        for size, label in ((100, "100B"), (1024, "1KiB")):
            results[f"append_{label}_nofsync"] = append_case(work, size, args.mib, 0, args.rounds)
            results[f"append_{label}_fsync_1MiB"] = append_case(work, size, args.mib, MIB, args.rounds)
            results[f"read_{label}"] = read_case(work, size, args.mib, args.rounds)
            print(json.dumps({k: v for k, v in results.items() if label in k}, indent=1), flush=True)
        for mib in args.reopen_mib:
            results[f"reopen_after_sigkill_{mib}MiB"] = reopen_case(work, mib)
        results["open_1000_partitions"] = partitions_case(work, 1000)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(results, indent=1))
    print(markdown(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)
    main()
