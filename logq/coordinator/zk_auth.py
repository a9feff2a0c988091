"""ZooKeeper digest credentials (Kafka's ``zookeeper.set.acl`` with a JAAS ``Client`` section): a
``user:password`` pair that a ZooKeeper client presents (``addauth digest``) and that the znodes' ACLs
name. They come from the first line of a private file (mode 0600), or else from ``$LOGQ_ZOOKEEPER_DIGEST``;
never from a plain setting, which would sit in a configuration file others may read.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from logq.errors import ConfigurationError
from logq.permissions import read_secret

DIGEST_ENV: Final = "LOGQ_ZOOKEEPER_DIGEST"


@dataclass(frozen=True, slots=True)
class ZkDigest:
    user: str
    password: str = dataclasses.field(repr=False)

    @classmethod
    def parse(cls, text: str, where: str) -> ZkDigest:
        """``user:password`` (the password may contain ':'); ConfigurationError naming ``where``."""
        user, sep, password = text.partition(":")
        if not sep or not user or not password:
            raise ConfigurationError(f"{where}: expected user:password")
        return cls(user, password)

    @property
    def auth(self) -> str:
        """What the client sends to ZooKeeper (``addauth digest user:password``)."""
        return f"{self.user}:{self.password}"


def load_zk_digest(path: Path | None) -> ZkDigest | None:
    """The credentials from ``path`` (a private file), else from $LOGQ_ZOOKEEPER_DIGEST; None if neither."""
    text = read_secret(path, DIGEST_ENV, "ZooKeeper digest file")
    if text is None:
        return None
    return ZkDigest.parse(text, f"ZooKeeper digest file {path}" if path is not None else f"${DIGEST_ENV}")
