"""Cluster metadata behind one interface (``Coordinator``): the embedded implementation runs a
standalone broker; the ZooKeeper implementation runs a cluster member."""

from logq.coordinator.embedded import EmbeddedCoordinator
from logq.coordinator.interface import (
    AclListener,
    BrokerInfo,
    Coordinator,
    Endpoint,
    MetadataListener,
    PartitionState,
    QueueMetadata,
)

__all__ = [
    "AclListener",
    "BrokerInfo",
    "Coordinator",
    "EmbeddedCoordinator",
    "Endpoint",
    "MetadataListener",
    "PartitionState",
    "QueueMetadata",
]
