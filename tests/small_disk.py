"""Small real filesystems for storage-failure tests: an ext4 image on a loop device that a test fills
(a full disk), and one whose backing store a test exhausts (a thin-provisioned disk, where writeback and
so fsync fail). Needs root and loop devices; the fixtures in tests/conftest.py skip without them, except
under CI, where they fail rather than hide that these tests did not run."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

MIB = 1 << 20
_TOOLS = ("mount", "umount", "mkfs.ext4", "e2fsck", "losetup")


class DiskUnavailableError(Exception):
    """This machine cannot mount a loop device here (not root, no loop devices, no tools)."""


def _run(*args: str) -> None:
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        raise DiskUnavailableError(f"{' '.join(args)}: {(done.stderr or done.stdout).strip()}")


def _mkfs(image: Path, size: int) -> None:
    with open(image, "wb") as f:
        f.truncate(size)  # sparse: blocks are taken only as the filesystem writes them
    # -m 0: no blocks reserved for root (the broker runs as root here); everything initialised now, so
    # no background thread writes to the image later
    _run("mkfs.ext4", "-q", "-F", "-m", "0", "-E", "lazy_itable_init=0,lazy_journal_init=0", str(image))


def _unmount(mountpoint: Path) -> None:
    if os.path.ismount(mountpoint):
        done = subprocess.run(["umount", str(mountpoint)], capture_output=True, timeout=60, check=False)
        if done.returncode != 0:  # still in use (a process the test did not stop): detach it anyway
            subprocess.run(["umount", "-l", str(mountpoint)], capture_output=True, timeout=60, check=False)


def fill(directory: Path, *, inodes: bool = False) -> Path:
    """Take every free block of ``directory``'s filesystem: a file as large as fits, then empty
    directories while one fits (each takes a block). With ``inodes``, first every free inode (empty
    files), so that no file can be created either. Returns the directory holding them."""
    filler = directory / "filler"
    filler.mkdir()
    with open(filler / "data", "wb", buffering=0) as f:  # unbuffered: nothing left to write at close
        if inodes:
            with contextlib.suppress(OSError):
                for i in range(1_000_000):
                    if i % 500 == 0:  # a few hundred entries a directory: each has room in its block
                        bucket = filler / f"inodes-{i // 500}"
                        bucket.mkdir()
                    (bucket / str(i)).touch()
        for chunk in (MIB, 4096, 512):
            block = b"\0" * chunk
            with contextlib.suppress(OSError):  # ENOSPC: this chunk size no longer fits
                while True:
                    f.write(block)
        with contextlib.suppress(OSError):
            os.fsync(f.fileno())
    with contextlib.suppress(OSError):
        for i in range(10_000):
            (filler / str(i)).mkdir()
    os.sync()
    return filler


class SmallDisk:
    """An ext4 filesystem of ``size`` bytes mounted at ``path``."""

    def __init__(self, root: Path, size: int) -> None:
        self.image = root / "disk.img"
        self.path = root / "disk"
        self.size = size
        self._filler: Path | None = None

    def fill(self, *, inodes: bool = False) -> None:
        """Leave no free block (and with ``inodes`` no free inode: no file can be created)."""
        self._filler = fill(self.path, inodes=inodes)

    def release(self, size: int) -> None:
        """Free ``size`` bytes of what ``fill`` took."""
        assert self._filler is not None
        data = self._filler / "data"
        os.truncate(data, data.stat().st_size - size)

    def free(self) -> None:
        if self._filler is not None:
            shutil.rmtree(self._filler)
            self._filler = None

    def free_bytes(self) -> int:
        st = os.statvfs(self.path)
        return st.f_bavail * st.f_frsize


class ThinDisk:
    """An ext4 filesystem of ``size`` bytes mounted at ``path``, stored in a sparse image on a tmpfs of
    only ``backing`` bytes, as on thin-provisioned storage. Once the backing store is exhausted, writes
    still land in the page cache but writeback fails: fsync reports the error (once), and the pages it
    could not write are lost when the filesystem is unmounted (``remount``)."""

    def __init__(self, root: Path, size: int, backing: int) -> None:
        self.backing_path = root / "backing"
        self.image = self.backing_path / "disk.img"
        self.path = root / "disk"
        self.size = size
        self.backing = backing
        self._filler: Path | None = None

    def exhaust(self) -> None:
        """From now on nothing more reaches the disk (what was written so far is synced first)."""
        os.sync()
        self._filler = fill(self.backing_path)

    def replenish(self) -> None:
        if self._filler is not None:
            shutil.rmtree(self._filler)
            self._filler = None

    def remount(self) -> None:
        """Unmount (dropping what never reached the backing store), repair, mount again: what the
        filesystem holds after a power cycle."""
        _unmount(self.path)
        done = subprocess.run(
            ["e2fsck", "-fy", str(self.image)], capture_output=True, timeout=120, check=False
        )
        assert done.returncode in (0, 1), done.stdout  # 1: errors corrected
        _run("mount", "-o", "loop", str(self.image), str(self.path))


def _check_possible() -> None:
    if os.geteuid() != 0:
        raise DiskUnavailableError("mounting a loop device needs root")
    missing = [tool for tool in _TOOLS if shutil.which(tool) is None]
    if missing:
        raise DiskUnavailableError(f"missing tools: {', '.join(missing)}")
    if not Path("/dev/loop-control").exists():
        raise DiskUnavailableError("no loop devices (/dev/loop-control)")


@contextlib.contextmanager
def small_disk(root: Path, size: int = 48 * MIB) -> Iterator[SmallDisk]:
    _check_possible()
    disk = SmallDisk(root, size)
    disk.path.mkdir()
    _mkfs(disk.image, size)
    _run("mount", "-o", "loop", str(disk.image), str(disk.path))
    try:
        yield disk
    finally:
        _unmount(disk.path)
        disk.image.unlink(missing_ok=True)


@contextlib.contextmanager
def thin_disk(root: Path, size: int = 64 * MIB, backing: int = 24 * MIB) -> Iterator[ThinDisk]:
    _check_possible()
    disk = ThinDisk(root, size, backing)
    disk.backing_path.mkdir()
    disk.path.mkdir()
    _run("mount", "-t", "tmpfs", "-o", f"size={backing}", "tmpfs", str(disk.backing_path))
    try:
        _mkfs(disk.image, size)
        _run("mount", "-o", "loop", str(disk.image), str(disk.path))
        try:
            yield disk
        finally:
            _unmount(disk.path)
    finally:
        _unmount(disk.backing_path)


D = TypeVar("D", SmallDisk, ThinDisk)  # what tests/conftest.py mounts
