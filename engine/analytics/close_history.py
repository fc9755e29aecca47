"""The closing level of every index on each of the last trading days, for dated pair bases.

At each session close the analytics keep that day's closes (``DayFigureTracker.prev_close``
after the roll: the day's last level in a trading phase, the previous close carried for an
index that had none). A pair based on a date (``PairConfig.base = "YYYY-MM-DD"``) takes its
base levels from here as soon as that date's closes are known. The history is bounded (the
oldest day goes first) and travels in the analytics state, so a restart keeps it.
"""

from __future__ import annotations

import msgspec
import numpy as np
from numpy.typing import NDArray

from engine.analytics.errors import AnalyticsStateError
from engine.analytics.packed import pack, unpack

CLOSE_HISTORY_DAYS = 300
"""Trading days of closes kept (more than a year of HKEX sessions)."""


class CloseHistoryState(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Captured ``CloseHistory``: day numbers in order and their closes (days x indices)."""

    n_indices: int
    days: tuple[int, ...]
    closes: bytes


class CloseHistory:
    """Closes per index id of the last ``limit`` trading days, by day number."""

    def __init__(self, n_indices: int, limit: int = CLOSE_HISTORY_DAYS) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        self.n_indices = n_indices
        self.limit = limit
        self._closes: dict[int, NDArray[np.float64]] = {}

    @property
    def days(self) -> tuple[int, ...]:
        """The days held, oldest first."""
        return tuple(self._closes)

    def record(self, day: int, closes: NDArray[np.float64]) -> None:
        """Keep ``closes`` (one per index id) as day ``day``'s; the oldest day beyond the limit
        goes."""
        if closes.shape != (self.n_indices,):
            raise ValueError(f"closes must have {self.n_indices} elements")
        self._closes.pop(day, None)
        self._closes[day] = closes.astype(np.float64, copy=True)
        self._closes = dict(sorted(self._closes.items())[-self.limit :])

    def closes_of(self, day: int) -> NDArray[np.float64] | None:
        """Day ``day``'s closes (a copy), None when not held."""
        closes = self._closes.get(day)
        return None if closes is None else closes.copy()

    def capture(self) -> CloseHistoryState:
        """The history, bitwise (raw bytes)."""
        table = np.array(list(self._closes.values()), dtype=np.float64).reshape(
            len(self._closes), self.n_indices
        )
        return CloseHistoryState(self.n_indices, self.days, pack(table))

    def restore(self, state: CloseHistoryState) -> None:
        """Resume from ``capture()`` (the latest ``limit`` days of it).

        Raises
        ------
        AnalyticsStateError
            When the state was taken for another number of indices or is corrupt.
        """
        if state.n_indices != self.n_indices:
            raise AnalyticsStateError(
                f"closes of {state.n_indices} indices do not fit {self.n_indices}"
            )
        if len(set(state.days)) != len(state.days):
            raise AnalyticsStateError("close history holds a day twice")
        table = unpack(state.closes, np.float64, (len(state.days), self.n_indices), "closes")
        self._closes = {}
        for day, closes in zip(state.days, table, strict=True):
            self._closes[day] = closes.copy()
        self._closes = dict(sorted(self._closes.items())[-self.limit :])
