"""Cluster metadata behind one interface: an embedded coordinator for a standalone broker and a
ZooKeeper one for a cluster. Arrives with the broker and cluster issues."""
