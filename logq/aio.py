"""logq's asyncio client: ``from logq.aio import Producer, Consumer, Admin``.

async with Producer("127.0.0.1:9092") as producer:
    metadata = await producer.send("orders", b"hello", key=b"k1")
async with Consumer("127.0.0.1:9092", group_id="billing", auto_offset_reset="earliest") as consumer:
    consumer.subscribe(["orders"])
    for record in await consumer.poll(timeout=1.0):
        ...

The classes are imported on first use (PEP 562), as in :mod:`logq`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from logq import _lazy_exports

if TYPE_CHECKING:
    from logq.client.admin import Admin
    from logq.client.cluster import QueuePartition
    from logq.client.consumer import Consumer
    from logq.client.producer import Producer, RecordFuture
    from logq.client.records import ConsumerRecord, RecordMetadata

_LAZY = {
    "Admin": "logq.client.admin",
    "Consumer": "logq.client.consumer",
    "ConsumerRecord": "logq.client.records",
    "Producer": "logq.client.producer",
    "QueuePartition": "logq.client.cluster",
    "RecordFuture": "logq.client.producer",
    "RecordMetadata": "logq.client.records",
}

__all__ = [
    "Admin",
    "Consumer",
    "ConsumerRecord",
    "Producer",
    "QueuePartition",
    "RecordFuture",
    "RecordMetadata",
]


__getattr__, __dir__ = _lazy_exports(__name__, _LAZY)
