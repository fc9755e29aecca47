"""Column batches: ticks in and levels out as parallel numpy arrays."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class TickColumns:
    """A batch of ticks in event order.

    Attributes
    ----------
    ts_event : ndarray of int64
        Event time, integer nanoseconds since the Unix epoch.
    security : ndarray of int64
        Security id in the universe, -1 when the code is unknown.
    price : ndarray of float64
        Traded price; may be NaN or non-positive (screening rejects those).
    """

    ts_event: NDArray[np.int64]
    security: NDArray[np.int64]
    price: NDArray[np.float64]

    def __len__(self) -> int:
        return int(self.ts_event.size)

    def take(self, rows: NDArray[np.intp] | NDArray[np.bool_]) -> TickColumns:
        """The ticks selected by an index array or boolean mask, order kept."""
        return TickColumns(self.ts_event[rows], self.security[rows], self.price[rows])

    @staticmethod
    def concat(parts: list[TickColumns]) -> TickColumns:
        """Join batches in order."""
        if not parts:
            return TickColumns.empty()
        return TickColumns(
            np.concatenate([p.ts_event for p in parts]),
            np.concatenate([p.security for p in parts]),
            np.concatenate([p.price for p in parts]),
        )

    @staticmethod
    def empty() -> TickColumns:
        """No ticks."""
        return TickColumns(
            np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
        )


@dataclass(frozen=True)
class LevelColumns:
    """Published index levels, one row per (tick, affected index), in tick order.

    Attributes
    ----------
    ts_event : ndarray of int64
        Event time of the tick that moved the level, integer nanoseconds.
    index : ndarray of int32
        Index id.
    level : ndarray of float64
        Level just after that tick.
    seq : ndarray of int64
        Per-index sequence number of the level.
    security : ndarray of int64
        Security id of the tick that moved the level.
    """

    ts_event: NDArray[np.int64]
    index: NDArray[np.int32]
    level: NDArray[np.float64]
    seq: NDArray[np.int64]
    security: NDArray[np.int64]

    def __len__(self) -> int:
        return int(self.ts_event.size)

    def take(self, rows: NDArray[np.intp] | NDArray[np.bool_]) -> LevelColumns:
        """The rows selected by an index array or boolean mask, order kept."""
        return LevelColumns(
            self.ts_event[rows],
            self.index[rows],
            self.level[rows],
            self.seq[rows],
            self.security[rows],
        )

    @staticmethod
    def concat(parts: list[LevelColumns]) -> LevelColumns:
        """Join batches in order."""
        if not parts:
            return LevelColumns.empty()
        return LevelColumns(
            np.concatenate([p.ts_event for p in parts]),
            np.concatenate([p.index for p in parts]),
            np.concatenate([p.level for p in parts]),
            np.concatenate([p.seq for p in parts]),
            np.concatenate([p.security for p in parts]),
        )

    @staticmethod
    def empty() -> LevelColumns:
        """No levels."""
        return LevelColumns(
            np.empty(0, dtype=np.int64),
            np.empty(0, dtype=np.int32),
            np.empty(0, dtype=np.float64),
            np.empty(0, dtype=np.int64),
            np.empty(0, dtype=np.int64),
        )
