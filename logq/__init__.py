"""logq: a Kafka-style distributed message queue written in Python.

The synchronous client is exported here (``from logq import Producer, Consumer, Admin``); the asyncio
client is in :mod:`logq.aio`. See docs/client.md.
"""

__version__ = "0.1.0"

from logq.client.cluster import QueuePartition
from logq.client.producer import RecordFuture
from logq.client.records import ConsumerRecord, RecordMetadata
from logq.client.sync_admin import Admin
from logq.client.sync_consumer import Consumer
from logq.client.sync_producer import Producer
from logq.errors import LogqError

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
