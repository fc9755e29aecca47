"""What one engine batch produces: levels after every tick, and levels withheld as non-finite."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from engine.core.columnar import Columnar


@dataclass(frozen=True)
class WithheldLevel:
    """A level withheld because it came out NaN or infinite.

    Attributes
    ----------
    index : int
        Index id.
    security : int
        Security id of the tick that produced it.
    price : float
        That tick's price.
    tick : int
        Position of that tick in the ``apply`` call.
    ts_event : int or None
        That tick's event time, when ``apply`` was given times.
    value : float
        The level (NaN, +inf or -inf).
    """

    index: int
    security: int
    price: float
    tick: int
    ts_event: int | None
    value: float


@dataclass(frozen=True)
class LevelUpdates(Columnar):
    """Levels produced by one batch, one row per (tick, index containing the ticked security).

    Rows are in tick order; within a tick, in index id order.

    Attributes
    ----------
    tick : ndarray of int64
        Position of the tick in the batch that produced the level.
    index : ndarray of int32
        Index id (position in ``Universe.indices``).
    level : ndarray of float64
        Index level just after that tick.
    seq : ndarray of int64
        Per-index sequence number, 1 for the first level an index ever publishes, no gaps.
    """

    tick: NDArray[np.int64]
    index: NDArray[np.int32]
    level: NDArray[np.float64]
    seq: NDArray[np.int64]


@dataclass(frozen=True)
class BatchRanges:
    """The highest and lowest level of each index one ``apply`` moved (all of them finite).

    Attributes
    ----------
    index : ndarray of intp
        Index ids, increasing.
    high, low : ndarray of float64
        Per id, the highest and lowest of its levels in the batch.
    """

    index: NDArray[np.intp]
    high: NDArray[np.float64]
    low: NDArray[np.float64]


def withhold(
    updates: LevelUpdates,
    finite: NDArray[np.bool_],
    security: NDArray[np.intp],
    price: NDArray[np.float64],
    ts_event: ArrayLike | None,
) -> tuple[LevelUpdates, list[WithheldLevel]]:
    """``updates`` without the rows that are not ``finite``, and those rows described.

    ``security``, ``price`` and ``ts_event`` (optional) are the batch's ticks, by tick position.
    """
    times = None if ts_event is None else np.asarray(ts_event, dtype=np.int64)
    withheld = [
        WithheldLevel(
            index=int(updates.index[row]),
            security=int(security[tick]),
            price=float(price[tick]),
            tick=tick,
            ts_event=None if times is None else int(times[tick]),
            value=float(updates.level[row]),
        )
        for row, tick in ((row, int(updates.tick[row])) for row in np.flatnonzero(~finite).tolist())
    ]
    return updates.take(finite), withheld
