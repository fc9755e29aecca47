"""The per-tick kernel: tick and level columns, screening and sequencing of ticks, the
vectorised calculator that yields the level after every tick of a batch, and conflation.

The hot path of every mode (live, replay, tests). May import ``engine.core`` and
``engine.refdata``; synchronous numpy, never asyncio, Kafka or Prometheus.
"""
