"""tickindex calculation core: synchronous, pure numpy, shared by live, replay and tests.

Sub-packages by concern, each importing only those listed before it (checked on the import graph
by ``tests/architecture/test_layering.py``):

- ``core``: errors, event-time parsing, bounds on numbers, array growth, column types;
- ``refdata``: the universe, reference files, capping, the built-in Hang Seng family;
- ``kernel``: tick/level columns, screening, sequencing, the calculator, conflation;
- ``maintenance``, ``currency``, ``calendar``: events and divisor adjustments, currency
  variants, the HKEX calendar and daily bars;
- ``analytics``: per-index and pair analytics and signals, from the engine's state;
- ``pipeline``: the processing chain (its outputs go to sinks), trading days, level and
  reject buffers, the checkpointable engine state;
- ``wire`` and ``testing``: wire formats, in-memory sources and sinks;
- ``live``: the asyncio service, with its Kafka adapter in ``live.kafka``.

Nothing here imports ``producers``, ``consumers`` or ``tickindex``.
"""
