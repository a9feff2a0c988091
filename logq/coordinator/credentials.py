"""SCRAM credentials as the coordinators keep them: users -> mechanism -> ``ScramCredential``, in
Kafka's text form (``salt=..,stored_key=..,server_key=..,iterations=..``), never a password.

Standalone they live in ``<data dir>/credentials.json`` (mode 0600, written atomically), with the server
secret that derives unknown users' fake salts; ``write_user_offline`` adds one while no broker runs (the
first admin). In cluster mode ``zk_layout`` keeps them in ZooKeeper in Kafka's format.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from logq.durable import atomic_write, lock_directory
from logq.error_codes import ErrorCode
from logq.errors import CoordinationError, StorageError
from logq.security.scram import MECHANISMS, ScramCredential, format_credential, parse_credential

CREDENTIALS_FILE = "credentials.json"
SECRET_BYTES = 32

Credentials = Mapping[str, Mapping[str, ScramCredential]]
"""user -> SCRAM mechanism -> credential (immutable snapshots)."""


class UnknownCredentialError(CoordinationError):
    """Deleting a credential that does not exist (RESOURCE_NOT_FOUND, as Kafka's API 51)."""

    code = ErrorCode.RESOURCE_NOT_FOUND


def frozen(users: Mapping[str, Mapping[str, ScramCredential]]) -> Credentials:
    return MappingProxyType({user: MappingProxyType(dict(mechs)) for user, mechs in users.items() if mechs})


def check_user_name(user: str) -> None:
    """ValueError for a name no client could log in with."""
    if not user or len(user) > 255 or any(c in user for c in "\0\n\r") or user != user.strip():
        raise ValueError(f"invalid user name {user!r}: 1 to 255 characters, no surrounding spaces or NUL")


def with_credential(users: Credentials, user: str, credential: ScramCredential) -> Credentials:
    copy = {u: dict(m) for u, m in users.items()}
    copy.setdefault(user, {})[credential.mechanism] = credential
    return frozen(copy)


def without_credential(users: Credentials, user: str, mechanism: str | None) -> Credentials:
    """``mechanism`` None removes the user; UnknownCredentialError when there is nothing to remove."""
    have = users.get(user, {})
    if not have or (mechanism is not None and mechanism not in have):
        what = f"user {user!r}" if mechanism is None else f"{mechanism} credential of user {user!r}"
        raise UnknownCredentialError(f"no {what}")
    copy = {u: dict(m) for u, m in users.items()}
    if mechanism is None:
        del copy[user]
    else:
        del copy[user][mechanism]
    return frozen(copy)


def encode_user(mechanisms: Mapping[str, ScramCredential]) -> dict[str, str]:
    return {mechanism: format_credential(c) for mechanism, c in sorted(mechanisms.items())}


def decode_user(config: Mapping[str, Any]) -> dict[str, ScramCredential]:
    """The SCRAM entries of a user's config (other keys, e.g. Kafka's quotas, are not ours)."""
    return {m: parse_credential(m, str(text)) for m, text in config.items() if m in MECHANISMS}


class CredentialFile:
    """``<data dir>/credentials.json``: the users and the server secret of a standalone broker."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / CREDENTIALS_FILE

    def load(self) -> tuple[Credentials, bytes]:
        """(users, secret); a missing file is no users and a new secret (saved by the next write)."""
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return frozen({}), secrets.token_bytes(SECRET_BYTES)
        except ValueError as exc:
            raise StorageError(f"{self.path} is not valid JSON: {exc}") from None
        try:
            users = {str(u): decode_user(c) for u, c in data.get("users", {}).items()}
            secret = base64.b64decode(data["secret"])
        except (KeyError, ValueError, TypeError) as exc:
            raise StorageError(f"{self.path} is damaged: {exc}") from None
        return frozen(users), secret

    def save(self, users: Credentials, secret: bytes) -> None:
        payload = {
            "version": 1,
            "secret": base64.b64encode(secret).decode(),
            "users": {user: encode_user(mechs) for user, mechs in sorted(users.items())},
        }
        try:
            atomic_write(self.path, json.dumps(payload, indent=1).encode())
        except OSError as exc:
            raise StorageError(f"cannot write {self.path}: {exc}") from exc


def write_user_offline(data_dir: Path, user: str, credentials: list[ScramCredential]) -> None:
    """Add (or replace) a user's credentials in a data directory no broker is using: the first admin of
    a new broker (``logq security init``). OSError if a broker holds the directory."""
    check_user_name(user)
    fd = lock_directory(data_dir)
    try:
        store = CredentialFile(data_dir)
        users, secret = store.load()
        for credential in credentials:
            users = with_credential(users, user, credential)
        store.save(users, secret)
    finally:
        os.close(fd)
