"""Child process for the SIGKILL test: appends batches forever, printing each flushed offset.

Usage: python -m tests.segments.crash_writer DATA_DIR START_TAG [EPOCH_EVERY]
Batch i carries tag START_TAG + i; after every few appends it flushes and prints "<end offset> <last tag>".
With EPOCH_EVERY > 0 the batch with tag t is appended with leader epoch t // EPOCH_EVERY (else -1).
"""

from __future__ import annotations

import sys
from pathlib import Path

from logq.config import LogConfig
from logq.segments import LogManager
from logq.testing import make_batch


def main() -> None:
    data_dir, tag = Path(sys.argv[1]), int(sys.argv[2])
    epoch_every = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    manager = LogManager(data_dir, LogConfig(segment_bytes=256 * 1024, index_interval_bytes=4096))
    plog = manager.create("crash", 0)
    print("ready", flush=True)
    while True:
        for _ in range(7):
            epoch = tag // epoch_every if epoch_every > 0 else -1
            plog.append(make_batch(4, value_size=200, tag=tag), leader_epoch=epoch)
            tag += 1
        print(plog.flush(), tag - 1, flush=True)


if __name__ == "__main__":
    main()
