"""The HKEX trading calendar: trading phases of event timestamps, daily open/high/low/close
bars, and the end-of-day roll that writes the next day's opening reference files.

May import ``engine.core``, ``engine.refdata`` and ``engine.kernel``.
"""
