"""Consumer groups: Kafka's classic group protocol (the coordinator side) and committed offsets."""
