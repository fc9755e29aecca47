"""Reference data of an index family: the ``Universe`` (indices, constituents, issued shares,
FAFs, cap factors, divisors), the provider-style files it is read from, weight capping, the
register of security codes and the built-in Hang Seng family shipped as package data.

May import ``engine.core`` only.
"""
