"""The vocabulary every part of the engine shares: the error tree, event-time parsing, the
bounds on every number that enters the maths, append-only array growth, and ``Columnar`` (take,
concat and empty of every column type).

Owns no state and imports nothing else of ``engine`` (numpy and the standard library only).
"""
