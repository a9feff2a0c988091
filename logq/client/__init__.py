"""logq's own Kafka-protocol client (issue 5; being built piece by piece)."""
