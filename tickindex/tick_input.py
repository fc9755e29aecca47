"""Ticks given by users as codes and numbers, checked and turned into the engine's columns."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from engine.kernel.columns import TickColumns
from engine.kernel.volume import screen_volume
from engine.refdata.universe import Universe

__all__ = ["SecurityCodes", "tick_columns"]

SecurityCodes = Sequence[str] | NDArray[np.str_] | NDArray[np.object_]
"""Security codes, one per tick: a sequence of ``str`` or a numpy array of them."""


def tick_columns(
    universe: Universe,
    ts_event: ArrayLike,
    security: SecurityCodes,
    price: ArrayLike,
    *,
    volume: ArrayLike | None = None,
) -> tuple[TickColumns, NDArray[np.str_] | NDArray[np.object_]]:
    """The ticks as engine columns (unknown codes get id -1), and the codes as an array.

    Only dtypes are checked, so the cost does not grow with a Python step per tick beyond the
    code lookup itself. ``volume`` (shares per tick, NaN for none) is optional; a negative,
    non-finite or absurd one becomes NaN (``engine.kernel.volume``), the tick is kept.

    Raises
    ------
    TypeError
        When times are not integers, codes not strings, prices or volumes not numbers.
    ValueError
        When the columns are not 1-d and of equal length.
    """
    stamps = np.asarray(ts_event)
    codes = np.asarray(security)
    prices = np.asarray(price)
    if stamps.size and stamps.dtype.kind not in "iu":
        raise TypeError(f"ts_event must be integer nanoseconds, got dtype {stamps.dtype}")
    if codes.size and codes.dtype.kind not in "UO":
        raise TypeError(f"security must be codes (str), got dtype {codes.dtype}")
    if prices.size and prices.dtype.kind not in "iuf":
        raise TypeError(f"price must be numbers, got dtype {prices.dtype}")
    if not stamps.ndim == codes.ndim == prices.ndim == 1 or not (
        stamps.size == codes.size == prices.size
    ):
        raise ValueError("ts_event, security and price must be 1-d and of equal length")
    columns = TickColumns(
        ts_event=stamps.astype(np.int64),
        security=universe.security_ids(codes.tolist()),
        price=prices.astype(np.float64),
        volume=None if volume is None else _volume(volume, prices.size),
    )
    return columns, codes


def _volume(volume: ArrayLike, size: int) -> NDArray[np.float64]:
    """Volumes as a screened float column of ``size`` ticks."""
    values = np.asarray(volume)
    if values.size and values.dtype.kind not in "iuf":
        raise TypeError(f"volume must be numbers, got dtype {values.dtype}")
    if values.ndim != 1 or values.size != size:
        raise ValueError("volume must be 1-d and as long as the other columns")
    column = values.astype(np.float64)
    screened, _ = screen_volume(column, absent=int(np.count_nonzero(np.isnan(column))))
    return screened
