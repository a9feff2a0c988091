"""WorkerProcess: the cleaner's passes (``cleaner.run_pass``: files in, files out) in a child process.

Spawned, not forked (a fork of a broker with threads and an event loop could inherit a held lock), once,
and kept for later passes; it dies with the broker (PR_SET_PDEATHSIG), so a killed broker never leaves
one writing into its data directory; it runs at a lower priority (nice 10) than the broker. Plans and
results travel over a pipe (both are small: segment names and offsets, never records).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import multiprocessing
import os
import signal
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from logq.compaction.cleaner import PassOutput, PassPlan, run_pass
from logq.errors import StorageError

_CONTEXT = multiprocessing.get_context("spawn")
_PR_SET_PDEATHSIG = 1
_POLL_S = 0.1
WORKER_NICENESS = 10


class CleaningStoppedError(Exception):
    """The broker is stopping: the pass was abandoned (its cleaned files are removed at the next start)."""


def _serve(conn: Connection) -> None:
    """The worker's loop: a plan in, a pass's result (or its error) out."""
    libc_name = ctypes.util.find_library("c")
    if libc_name:  # Linux: die with the broker
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(libc_name).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the broker's to handle; it stops us
    # Background work: on a busy machine the scheduler should run the broker's event loop first.
    with contextlib.suppress(OSError):
        os.nice(WORKER_NICENESS)
    while True:
        try:
            plan = conn.recv()
        except EOFError:
            return
        try:
            conn.send(("ok", run_pass(plan)))
        except Exception as exc:  # every failure goes back to the broker, which logs it
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


class WorkerProcess:
    def __init__(self, stopping: Callable[[], bool]) -> None:
        self._stopping = stopping
        self._process: Any = None
        self._conn: Connection | None = None

    def run(self, plan: PassPlan) -> PassOutput:
        """Run a pass in the worker (started on first use). StorageError if it fails or dies;
        CleaningStoppedError (the worker killed) once ``stopping()`` turns true."""
        conn = self._connection()
        conn.send(plan)
        while not conn.poll(_POLL_S):
            if self._stopping():
                self.close()
                raise CleaningStoppedError
            if not self._process.is_alive():
                self.close()
                raise StorageError("the log cleaner's worker process died")
        try:
            status, value = conn.recv()
        except EOFError:
            self.close()
            raise StorageError("the log cleaner's worker process died") from None
        if status != "ok":
            raise StorageError(f"a cleaning pass failed in the worker process: {value}")
        output: PassOutput = value
        return output

    def _connection(self) -> Connection:
        if self._conn is None or self._process is None or not self._process.is_alive():
            self.close()
            ours, theirs = _CONTEXT.Pipe()
            process = _CONTEXT.Process(target=_serve, args=(theirs,), name="log-cleaner", daemon=True)
            try:
                process.start()
            finally:
                theirs.close()
            self._process, self._conn = process, ours
        return self._conn

    def close(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.join()
            self._process = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None
