"""Index maintenance: corporate actions, constituent changes and reviews (the event wire
types), events files, the queue of scheduled events, and applying an event with the divisor
adjustment that keeps levels continuous.

May import ``engine.core``, ``engine.refdata`` and ``engine.kernel``.
"""
