"""Running the engine: the synchronous processing chain (screen, sequence, apply events,
calculate, conflate) shared by replay, the embedded run and the live service; running it through
trading days; the in-memory buffers its sinks can be; and the checkpointable state of the
whole engine.

May import every engine package below ``engine.live``; never asyncio or Kafka.
"""
