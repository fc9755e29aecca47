"""What makes a decoded level message unusable: a non-finite number or an integer out of int64."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from engine.wire import IndexLevel, IndexLevels

_INT64 = np.iinfo(np.int64)
MAX_INDEX_CODE = 64


def _ints_out_of_range(values: Sequence[int]) -> bool:
    try:
        np.array(values, dtype=np.int64)
    except (OverflowError, ValueError, TypeError):
        return True
    return False


def level_message_problem(message: IndexLevel | IndexLevels) -> str | None:
    """Why a level message cannot be recorded, or None when it can.

    Parameters
    ----------
    message : IndexLevel or IndexLevels
        A decoded message of the level topic.

    Returns
    -------
    str or None
        The problem in words (levels must be finite, times and ``seq`` within int64, the index
        code 1 to 64 characters, ``index_levels`` columns of one length).
    """
    if not 0 < len(message.index) <= MAX_INDEX_CODE:
        return f"index code of {len(message.index)} characters"
    if isinstance(message, IndexLevel):
        floats: Sequence[float] = (message.level, message.change)
        ints: Sequence[int] = (message.ts_event, message.ts_published, message.seq)
    else:
        if not len(message.level) == len(message.ts_event) == len(message.seq):
            return "index_levels columns differ in length"
        floats = [message.prev_close, *message.level]
        ints = [message.ts_published, *message.ts_event, *message.seq]
    if not np.isfinite(np.array(floats, dtype=np.float64)).all():
        return "a level that is not a finite number"
    if _ints_out_of_range(ints):
        return "ts_event, ts_published or seq outside int64"
    return None
