"""What makes a decoded level message unusable: a number or a code a level file cannot hold."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from engine.wire import INT64_MAX, IndexLevel, IndexLevels

INT64_MIN = -INT64_MAX - 1

MAX_INDEX_CODE = 64
MAX_TS_EVENT = 9_214_646_400_000_000_000
"""2262-01-01T00:00Z in ns: later times (near int64's end) would wrap to 1677 in a day's date."""
# Printable ASCII but ``"`` and ``,``: the code goes unquoted into a CSV row.
_INDEX_CODE = re.compile(r"[ !#-+\--~]+")


def _ints_out_of_range(values: Sequence[int]) -> bool:
    return bool(values) and not INT64_MIN <= min(values) <= max(values) <= INT64_MAX


def _not_all_finite(values: Sequence[float]) -> bool:
    return not all(map(math.isfinite, values))


def level_message_problem(message: IndexLevel | IndexLevels) -> str | None:
    """Why a level message cannot be recorded, or None when it can.

    Parameters
    ----------
    message : IndexLevel or IndexLevels
        A decoded message of the level topic.

    Returns
    -------
    str or None
        The problem in words (levels must be finite, ``ts_event`` from 1970 to 2262, the other
        times and ``seq`` within int64, ``count`` at least 1, the index code 1 to 64 printable
        ASCII characters without ``,`` or ``"``, ``index_levels`` columns of one length).
    """
    if not 0 < len(message.index) <= MAX_INDEX_CODE:
        return f"index code of {len(message.index)} characters"
    if _INDEX_CODE.fullmatch(message.index) is None:
        return f"index code {message.index!r} is not printable ASCII without ',' and '\"'"
    if isinstance(message, IndexLevel):
        floats: Sequence[float] = (message.level, message.change)
        ints: Sequence[int] = (message.ts_event, message.ts_published, message.seq)
    else:
        if not len(message.level) == len(message.ts_event) == len(message.seq):
            return "index_levels columns differ in length"
        if message.count is not None and len(message.count) != len(message.seq):
            return "index_levels columns differ in length"
        floats = [message.prev_close, *message.level]
        ints = [message.ts_published, *message.ts_event, *message.seq]
    if _not_all_finite(floats):
        return "a level that is not a finite number"
    if _ints_out_of_range(ints):
        return "ts_event, ts_published or seq outside int64"
    counts = message.count if isinstance(message, IndexLevels) else (message.count,)
    if counts is not None and counts and not 1 <= min(counts) <= max(counts) <= INT64_MAX:
        return "count below 1 or outside int64"
    stamps = message.ts_event if isinstance(message, IndexLevels) else (message.ts_event,)
    if stamps and not 0 <= min(stamps) <= max(stamps) <= MAX_TS_EVENT:
        return "ts_event before 1970 or after 2261"
    return None
