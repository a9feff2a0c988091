"""The broker: an asyncio TCP server speaking the Kafka protocol, over the partition logs."""

from logq.broker.app import Broker
from logq.broker.config import BrokerConfig, HostPort

__all__ = ["Broker", "BrokerConfig", "HostPort"]
