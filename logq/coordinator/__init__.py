"""Cluster metadata behind one interface (``Coordinator``): the embedded implementation runs a
standalone broker; a ZooKeeper implementation will run a cluster. The broker only sees the interface."""

from logq.coordinator.embedded import EmbeddedCoordinator
from logq.coordinator.interface import (
    BrokerInfo,
    Coordinator,
    MetadataListener,
    PartitionState,
    QueueMetadata,
)

__all__ = [
    "BrokerInfo",
    "Coordinator",
    "EmbeddedCoordinator",
    "MetadataListener",
    "PartitionState",
    "QueueMetadata",
]
