"""What one engine batch produces: levels after every tick, and levels withheld as non-finite."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray


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
class LevelUpdates:
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

    def __len__(self) -> int:
        return int(self.tick.size)

    @staticmethod
    def empty() -> LevelUpdates:
        """No levels."""
        return LevelUpdates(
            tick=np.empty(0, dtype=np.int64),
            index=np.empty(0, dtype=np.int32),
            level=np.empty(0, dtype=np.float64),
            seq=np.empty(0, dtype=np.int64),
        )

    @staticmethod
    def concat(parts: list[tuple[int, LevelUpdates]]) -> LevelUpdates:
        """Join updates of consecutive sub-batches, each given with its first tick's position."""
        if not parts:
            return LevelUpdates.empty()
        return LevelUpdates(
            tick=np.concatenate([part.tick + offset for offset, part in parts]),
            index=np.concatenate([part.index for _, part in parts]),
            level=np.concatenate([part.level for _, part in parts]),
            seq=np.concatenate([part.seq for _, part in parts]),
        )


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
    kept = LevelUpdates(
        tick=updates.tick[finite],
        index=updates.index[finite],
        level=updates.level[finite],
        seq=updates.seq[finite],
    )
    return kept, withheld
