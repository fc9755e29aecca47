"""Each security's index memberships, laid out to expand a batch's ticks into (tick, index) pairs.

A tick of security s moves every index containing s by its price change x level weight (IS x
FAF x CF / divisor). The rows of s are stored in index id order, in one of two layouts:

- slots: one row of ``width`` slots per security (``width`` its largest number of indices),
  when that wastes at most half of the cells (securities in similar numbers of indices, as in a
  calculation agent's world). A batch then takes one row per tick (``np.take`` along axis 0:
  a block copy per tick, not an index per pair) and keeps its occupied slots;
- CSR (rows grouped by security): otherwise. A batch gathers each pair's row.

Both give the same pairs and bitwise the same level changes (the same products).
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

from engine.core.growth import appended

ScalarT = TypeVar("ScalarT", bound=np.generic)

MIN_SLOT_FILL = 0.5
"""Slot layout only when at least this share of its cells holds a membership."""


class MembershipTable:
    """Memberships by security, with their level weights at the current divisors.

    Parameters
    ----------
    security, index : ndarray of int
        Security id and index id of each membership row.
    weights : ndarray of float64
        IS x FAF x CF of each row.
    n_securities, n_indices : int
        Sizes of the universe.
    """

    def __init__(
        self,
        security: NDArray[np.integer],
        index: NDArray[np.integer],
        weights: NDArray[np.float64],
        n_securities: int,
        n_indices: int,
    ) -> None:
        by_security = np.lexsort((index, security))
        self.index_dtype = np.dtype(np.uint16 if n_indices <= 1 << 16 else np.int32)
        self._weights = weights[by_security]
        self._index = index[by_security].astype(self.index_dtype)
        counts = np.bincount(security, minlength=n_securities).astype(np.int64)
        self._count = counts
        self._start = np.cumsum(counts) - counts
        self._level_weights = np.empty(0, dtype=np.float64)
        width = int(counts.max()) if counts.size else 0
        self._slot_cells: NDArray[np.intp] | None = None
        if width and counts.sum() >= MIN_SLOT_FILL * width * n_securities:
            # Cell of each row in a (securities, width) table, row by row.
            slot = np.arange(self._index.size) - np.repeat(self._start, counts)
            self._slot_cells = np.repeat(np.arange(n_securities) * width, counts) + slot
            self._slots = np.arange(width)
            self._slot_index = _slot_table(self._index, self._slot_cells, (n_securities, width))

    @property
    def uses_slots(self) -> bool:
        """Whether the slot layout is used (else CSR)."""
        return self._slot_cells is not None

    def set_divisors(self, divisors: NDArray[np.float64]) -> None:
        """Level weights at these divisors (per index id)."""
        level_weights = self._weights / divisors[self._index]
        if self._slot_cells is None:
            self._level_weights = level_weights
        else:
            shape = self._slot_index.shape
            self._slot_level_weights = _slot_table(level_weights, self._slot_cells, shape)

    def add_securities(self, count: int) -> None:
        """Append ``count`` securities in no index, in amortised O(count)."""
        self._count = appended(self._count, count, 0)
        # Empty CSR rows: repeated end offsets. The slot table needs no rows for them: their
        # ticks take some row's slots (``mode="clip"``) and keep none of them.
        self._start = appended(self._start, count, self._index.size)

    def counts(self, security: NDArray[np.intp]) -> NDArray[np.int64]:
        """Number of indices of each of ``security``."""
        counts: NDArray[np.int64] = self._count[security]
        return counts

    def expand(
        self, security: NDArray[np.intp], change: NDArray[np.float64], counts: NDArray[np.int64]
    ) -> tuple[NDArray[np.integer], NDArray[np.float64]]:
        """Index id and level change of every (tick, index) pair, tick by tick, each tick's
        pairs by index id; ``counts`` is ``counts(security)``."""
        if self._slot_cells is not None:
            occupied = self._slots < counts[:, None]
            index = np.take(self._slot_index, security, axis=0, mode="clip")[occupied]
            level_change = np.take(self._slot_level_weights, security, axis=0, mode="clip")
            level_change *= change[:, None]
            return index, level_change[occupied]
        first_pair = np.cumsum(counts) - counts
        row = np.arange(int(first_pair[-1] + counts[-1]))
        row += np.repeat(self._start[security] - first_pair, counts)
        return self._index[row], np.repeat(change, counts) * self._level_weights[row]


def _slot_table(
    values: NDArray[ScalarT], cells: NDArray[np.intp], shape: tuple[int, ...]
) -> NDArray[ScalarT]:
    """``values`` (one per row, by security) at ``cells`` of a zero table of ``shape``."""
    table = np.zeros(shape, dtype=values.dtype)
    table.ravel()[cells] = values
    return table
