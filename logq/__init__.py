"""logq: a Kafka-style distributed message queue written in Python.

The synchronous client is exported here (``from logq import Producer, Consumer, Admin``); the asyncio
client is in :mod:`logq.aio`. See docs/client.md.

The client's classes are imported on first use (PEP 562): importing any part of logq imports this
package first, and the broker, the storage tools and most of the CLI need none of the client.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from logq.errors import LogqError

if TYPE_CHECKING:
    from logq.client.cluster import QueuePartition
    from logq.client.producer import RecordFuture
    from logq.client.records import ConsumerRecord, RecordMetadata
    from logq.client.sync_admin import Admin
    from logq.client.sync_consumer import Consumer
    from logq.client.sync_producer import Producer

__version__ = "0.1.0"

_LAZY = {
    "Admin": "logq.client.sync_admin",
    "Consumer": "logq.client.sync_consumer",
    "ConsumerRecord": "logq.client.records",
    "Producer": "logq.client.sync_producer",
    "QueuePartition": "logq.client.cluster",
    "RecordFuture": "logq.client.producer",
    "RecordMetadata": "logq.client.records",
}

__all__ = [
    "Admin",
    "Consumer",
    "ConsumerRecord",
    "LogqError",
    "Producer",
    "QueuePartition",
    "RecordFuture",
    "RecordMetadata",
    "__version__",
]


def _lazy_exports(
    module: str, where: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A module's ``__getattr__`` and ``__dir__`` (PEP 562) for names imported on first use: ``where``
    maps each name to the module that defines it. (Shared with :mod:`logq.aio`.)"""
    namespace = sys.modules[module].__dict__

    def getattr_(name: str) -> Any:
        source = where.get(name)
        if source is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(source), name)
        namespace[name] = value  # found directly from now on
        return value

    def dir_() -> list[str]:
        return sorted({*namespace, *where})

    return getattr_, dir_


__getattr__, __dir__ = _lazy_exports(__name__, _LAZY)
