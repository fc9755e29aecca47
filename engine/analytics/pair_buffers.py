"""Ring buffers of paired sampled returns, and the beta and correlation computed from them.

One row per pair, ``max(window)`` slots wide; a pair of window ``w`` uses its first ``w`` slots.
Until a row is full its returns fill slots ``0 .. count - 1`` in order (``head == count``);
once full, ``head`` is the oldest slot, the next to be overwritten. Every figure is computed
from the slots in use, in two passes (means, then centred sums), so nothing drifts however long
the stream; the cost is a few arrays of ``n_pairs x window`` per sample.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
import numpy as np
from numpy.typing import NDArray


class PairBufferState(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One pair's buffer: its window, head and the slots in use (finite values only)."""

    window: int
    head: int
    a: list[float]
    b: list[float]


class PairBuffers:
    """Per pair, the last ``window`` returns of A and B where both were finite.

    Parameters
    ----------
    windows : sequence of int
        Window of each pair (at least 1).
    """

    def __init__(self, windows: Sequence[int]) -> None:
        self._window = np.array(windows, dtype=np.int64)
        width = int(self._window.max()) if self._window.size else 0
        self._a = np.zeros((self._window.size, width))
        self._b = np.zeros((self._window.size, width))
        self._head = np.zeros(self._window.size, dtype=np.int64)
        self._count = np.zeros(self._window.size, dtype=np.int64)
        self._figures: tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.int64]] | None
        self._figures = None

    def append(self, returns_a: NDArray[np.float64], returns_b: NDArray[np.float64]) -> None:
        """Add one sample: each pair's return of A and of B, skipped unless both are finite."""
        rows = np.flatnonzero(np.isfinite(returns_a) & np.isfinite(returns_b))
        if rows.size == 0:
            return
        slots = self._head[rows]
        self._a[rows, slots] = returns_a[rows]
        self._b[rows, slots] = returns_b[rows]
        self._head[rows] = (slots + 1) % self._window[rows]
        self._count[rows] = np.minimum(self._count[rows] + 1, self._window[rows])
        self._figures = None

    def beta_corr(self) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.int64]]:
        """Beta of A on B, their correlation, and the returns in each window (copies).

        NaN with fewer than 2 returns, or where the variance of B (beta) or of either
        (correlation) is 0.
        """
        if self._figures is None:
            self._figures = self._compute()
        beta, corr, count = self._figures
        return beta.copy(), corr.copy(), count.copy()

    def _compute(self) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.int64]]:
        count = self._count.copy()
        in_use = np.arange(self._a.shape[1]) < count[:, None]
        with np.errstate(all="ignore"):
            mean_a = np.where(in_use, self._a, 0.0).sum(axis=1) / count
            mean_b = np.where(in_use, self._b, 0.0).sum(axis=1) / count
            da = np.where(in_use, self._a - mean_a[:, None], 0.0)
            db = np.where(in_use, self._b - mean_b[:, None], 0.0)
            sab = (da * db).sum(axis=1)
            saa = (da * da).sum(axis=1)
            sbb = (db * db).sum(axis=1)
            beta = sab / sbb
            corr = sab / (np.sqrt(saa) * np.sqrt(sbb))
        enough = count >= 2
        beta = np.where(enough & (sbb > 0) & np.isfinite(beta), beta, np.nan)
        corr = np.where(enough & (saa > 0) & (sbb > 0) & np.isfinite(corr), corr, np.nan)
        return beta, corr, count

    def capture(self, row: int) -> PairBufferState:
        """Row ``row``'s buffer, for ``restore``."""
        used = int(self._count[row])
        return PairBufferState(
            window=int(self._window[row]),
            head=int(self._head[row]),
            a=self._a[row, :used].tolist(),
            b=self._b[row, :used].tolist(),
        )

    def restore(self, row: int, state: PairBufferState) -> None:
        """Set row ``row`` from ``capture``; bitwise the same when the window is unchanged.

        With another window the returns are kept in order, the latest ``window`` of them. A
        state that is inconsistent (lengths, head, non-finite values) leaves the row empty.
        """
        window = int(self._window[row])
        used = len(state.a)
        consistent = (
            used == len(state.b)
            and used <= state.window
            and 0 <= state.head < max(state.window, 1)
            and used in (state.window, state.head)
            and bool(np.isfinite(state.a).all() and np.isfinite(state.b).all())
        )
        if not consistent:
            a, b, head = np.zeros(0), np.zeros(0), 0
        elif state.window == window:
            a, b, head = np.array(state.a), np.array(state.b), state.head
        else:
            order = np.roll(np.arange(used), -state.head)[-window:]
            a, b = np.array(state.a)[order], np.array(state.b)[order]
            head = a.size % window
        self._a[row, : a.size], self._b[row, : b.size] = a, b
        self._head[row], self._count[row] = head, a.size
        self._figures = None
