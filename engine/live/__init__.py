"""The asyncio live runtime at the edge of the engine: Kafka in, levels out."""
