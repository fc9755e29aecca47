"""Screening the traded volume of ticks: a bad volume never costs the tick its price.

A volume is usable when it is a number in ``0..MAX_VOLUME`` shares (zero is allowed: a trade
report without size). A negative, non-finite or absurd volume becomes NaN, the same as a tick
that carried no volume at all, so turnover leaves it out while the price still moves the
indices; the screened volumes are counted, never silently.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from engine.core.bounds import MAX_VOLUME


def screen_volume(
    volume: NDArray[np.float64], *, absent: int = 0
) -> tuple[NDArray[np.float64], int]:
    """The volumes with NaN wherever unusable, and how many given volumes were screened out.

    Parameters
    ----------
    volume : ndarray of float64
        One volume per tick, NaN where a tick has none; not modified.
    absent : int
        How many of the NaNs stand for a tick without volume (not counted as screened).

    Returns
    -------
    (ndarray of float64, int)
        The screened column (``volume`` itself when nothing was screened) and the count.
    """
    usable = (volume >= 0.0) & (volume <= MAX_VOLUME)
    unusable = volume.size - int(np.count_nonzero(usable))
    if unusable == absent:
        return volume, 0
    return np.where(usable, volume, np.nan), unusable - absent


def volume_column(values: list[float | None]) -> tuple[NDArray[np.float64] | None, int]:
    """Screened volumes of decoded ticks (None: the tick had none), and how many were screened.

    None when no tick had a volume, so a feed without volumes pays one count over the list.
    """
    absent = values.count(None)
    if absent == len(values):
        return None, 0
    return screen_volume(np.array(values, dtype=np.float64), absent=absent)
