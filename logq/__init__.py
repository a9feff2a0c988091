"""logq: a Kafka-style distributed message queue written in Python."""

__all__ = ["__version__"]

__version__ = "0.1.0"
