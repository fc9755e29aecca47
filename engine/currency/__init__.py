"""Currency variants: an index also published in another currency, from FX ticks merged with
its levels in event time, and the files that declare the variants.

May import ``engine.core``, ``engine.refdata`` and ``engine.kernel``.
"""
