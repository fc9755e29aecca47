"""The day figures' settings, columns and checkpoint (``engine.analytics.day_figures``)."""

from __future__ import annotations

from dataclasses import dataclass

import msgspec
import numpy as np
from numpy.typing import NDArray

from engine.core.columnar import Columnar


class DayFiguresConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Configuration of the day figures.

    Attributes
    ----------
    reference_highs : dict of str to float
        Reference high per index code (e.g. the 52-week high), for ``drawdown_ref``.
    """

    reference_highs: dict[str, float] = {}


@dataclass(frozen=True)
class DayFigures(Columnar):
    """Day figures, one row per index asked (module docstring for the definitions).

    Attributes
    ----------
    index : ndarray of int32
    level, prev_close, change, change_pct : ndarray of float64
    open, high, low : ndarray of float64
    drawdown_day, ref_high, drawdown_ref : ndarray of float64
    """

    index: NDArray[np.int32]
    level: NDArray[np.float64]
    prev_close: NDArray[np.float64]
    change: NDArray[np.float64]
    change_pct: NDArray[np.float64]
    open: NDArray[np.float64]
    high: NDArray[np.float64]
    low: NDArray[np.float64]
    drawdown_day: NDArray[np.float64]
    ref_high: NDArray[np.float64]
    drawdown_ref: NDArray[np.float64]


class DayFiguresState(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Captured ``DayFigureTracker``: arrays as raw little-endian bytes (bitwise)."""

    n_indices: int
    day: int | None
    finished_through: int | None
    late_levels: int
    ignored_levels: int
    level: bytes
    prev_close: bytes
    open: bytes
    high: bytes
    low: bytes
    close: bytes
    reference: bytes
