"""logq's own Kafka-protocol client: producer, consumer and admin, asyncio with synchronous wrappers."""
