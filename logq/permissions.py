"""Private files: what the broker creates is readable by its own user only, and what it reads as secret
(its data directory, TLS keys, password files) must not be readable or writable by anyone else.

Core module: imports nothing of logq but the errors. Modes are set explicitly (``fchmod``/``chmod``),
never left to the umask, which can only take bits away and may be 0. RocksDB creates its own files, so
the broker process also runs with ``umask 077`` (``private_umask``); its directory is 0700 either way.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from logq.errors import ConfigurationError, UnsafePermissionsError

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
PRIVATE_UMASK = 0o077


def private_umask() -> None:
    """From now on this process creates files for its own user only (the broker's process)."""
    os.umask(PRIVATE_UMASK)


def make_private_dir(path: Path) -> None:
    """Create ``path`` (and missing parents, with the usual mode) as a 0700 directory; an existing one is
    left as it is, for ``check_private`` to judge."""
    if not path.is_dir():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            path.mkdir(mode=PRIVATE_DIR_MODE)
        except FileExistsError:
            return
        os.chmod(path, PRIVATE_DIR_MODE)


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to a 0600 file (replacing it, not crash-safe: for new keys and certificates)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE)
    try:
        os.fchmod(fd, PRIVATE_FILE_MODE)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def check_private(path: Path, what: str) -> None:
    """UnsafePermissionsError (one line, with the fix) if others may read or write ``path``, or if
    another user owns it; PostgreSQL's rule for its data directory."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise UnsafePermissionsError(f"{what} {path} does not exist") from None
    mode = stat.S_IMODE(info.st_mode)
    if info.st_uid != os.geteuid():
        raise UnsafePermissionsError(
            f"{what} {path} is owned by uid {info.st_uid}, not by this process's user (uid {os.geteuid()})"
        )
    if mode & 0o077:
        wanted = PRIVATE_DIR_MODE if stat.S_ISDIR(info.st_mode) else PRIVATE_FILE_MODE
        raise UnsafePermissionsError(
            f"{what} {path} is accessible by group or others (mode {mode:04o}): chmod {wanted:o} {path}"
        )


def read_secret(path: Path | None, env_var: str, what: str) -> str | None:
    """A secret (a password) from the first line of a private file ``path`` or, without one, from the
    environment variable ``env_var``; None when neither gives one. Never a setting's plain value: a
    configuration file is often readable by others. UnsafePermissionsError for a file others may read,
    ConfigurationError for one that cannot be read or is empty."""
    if path is None:
        return os.environ.get(env_var) or None
    check_private(path, what)
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not text"
        raise ConfigurationError(f"cannot read {what} {path}: {reason}") from None
    if not lines or not lines[0]:
        raise ConfigurationError(f"{what} {path} is empty: its first line is the secret")
    return lines[0]
