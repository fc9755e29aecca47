"""Per-security tick sequence numbers: reject duplicates and ticks that arrive out of order."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from engine.core.growth import appended
from engine.kernel.ordering import run_starts, stable_order
from engine.kernel.screening import RejectReason

NO_SEQ = -1


class SequenceGuard:
    """Remembers the highest sequence number seen per security and screens batches against it.

    A tick whose ``seq`` equals the highest seen so far for its security (in earlier batches or
    earlier in the batch) is a duplicate; one below it is out of order. Ticks without a sequence
    number (``NO_SEQ``) are not checked. Rejected ticks never raise the high-water mark, so
    counting them in the running maximum is harmless and keeps the check vectorised.

    Parameters
    ----------
    n_securities : int
        Size of the universe.
    """

    def __init__(self, n_securities: int) -> None:
        self.last_seq = np.full(n_securities, NO_SEQ, dtype=np.int64)

    def extend(self, count: int) -> None:
        """Make room for ``count`` securities appended to the universe (amortised O(count))."""
        self.last_seq = appended(self.last_seq, count, NO_SEQ)

    def screen(self, security: NDArray[np.int64], seq: NDArray[np.int64]) -> NDArray[np.uint8]:
        """Reason code per tick (0 = in order) and advance the high-water marks.

        Parameters
        ----------
        security : ndarray of int64
            Valid security ids (screen unknown securities first).
        seq : ndarray of int64
            Sequence number per tick, ``NO_SEQ`` where absent.
        """
        n = security.size
        reasons = np.zeros(n, dtype=np.uint8)
        if n == 0:
            return reasons
        if n == 1:
            return self._screen_distinct(security, seq, reasons)
        order = stable_order(security, self.last_seq.size)
        sorted_sec = security[order]
        sorted_seq = seq[order]
        run_start = run_starts(sorted_sec)
        if run_start.all():
            return self._screen_distinct(security, seq, reasons)
        starts = np.flatnonzero(run_start)
        run_id = np.cumsum(run_start) - 1
        stored = self.last_seq[sorted_sec[starts]]

        # Dense ranks turn "running max per security" into one global running max: keys of a
        # later security always exceed those of an earlier one.
        values, ranks = np.unique(np.concatenate([sorted_seq, stored]), return_inverse=True)
        span = values.size
        tick_keys = run_id * span + ranks[:n]
        stored_keys = np.arange(starts.size) * span + ranks[n:]
        keys = np.insert(tick_keys, starts, stored_keys)
        running = np.maximum.accumulate(keys)
        position = np.arange(n) + run_id + 1
        previous_rank = running[position - 1] - run_id * span
        tick_rank = ranks[:n]
        checked = sorted_seq != NO_SEQ
        sorted_reasons = np.zeros(n, dtype=np.uint8)
        sorted_reasons[checked & (tick_rank == previous_rank)] = RejectReason.DUPLICATE_SEQ
        sorted_reasons[checked & (tick_rank < previous_rank)] = RejectReason.OUT_OF_ORDER_SEQ
        reasons[order] = sorted_reasons

        ends = np.append(starts[1:], n) - 1
        self.last_seq[sorted_sec[ends]] = values[
            running[ends + run_id[ends] + 1] - run_id[ends] * span
        ]
        return reasons

    def _screen_distinct(
        self, security: NDArray[np.int64], seq: NDArray[np.int64], reasons: NDArray[np.uint8]
    ) -> NDArray[np.uint8]:
        """``screen`` of a batch naming each security once (a quiet feed's batches): each tick
        is checked against its security's mark alone, without the dense ranks."""
        stored = self.last_seq[security]
        checked = seq != NO_SEQ
        reasons[checked & (seq == stored)] = RejectReason.DUPLICATE_SEQ
        reasons[checked & (seq < stored)] = RejectReason.OUT_OF_ORDER_SEQ
        self.last_seq[security] = np.maximum(stored, seq)
        return reasons
