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
    seq : ndarray of int64, optional
        Per-security sequence number, -1 where absent; None when the source has none at all.
    origin : ndarray of int64, optional
        Where each tick came from, opaque to the engine (a file line, the position of its Kafka
        message in a fetch), so rejected ticks can be traced back.
    """

    ts_event: NDArray[np.int64]
    security: NDArray[np.int64]
    price: NDArray[np.float64]
    seq: NDArray[np.int64] | None = None
    origin: NDArray[np.int64] | None = None

    def __len__(self) -> int:
        return int(self.ts_event.size)

    def take(self, rows: NDArray[np.intp] | NDArray[np.bool_]) -> TickColumns:
        """The ticks selected by an index array or boolean mask, order kept."""
        return TickColumns(
            self.ts_event[rows],
            self.security[rows],
            self.price[rows],
            None if self.seq is None else self.seq[rows],
            None if self.origin is None else self.origin[rows],
        )

    def slice(self, start: int, stop: int) -> TickColumns:
        """Ticks ``start`` to ``stop`` (views, no copy)."""
        return TickColumns(
            self.ts_event[start:stop],
            self.security[start:stop],
            self.price[start:stop],
            None if self.seq is None else self.seq[start:stop],
            None if self.origin is None else self.origin[start:stop],
        )

    @staticmethod
    def concat(parts: list[TickColumns]) -> TickColumns:
        """Join batches in order; optional columns survive only if every part has them."""
        if not parts:
            return TickColumns.empty()
        seqs = [p.seq for p in parts if p.seq is not None]
        origins = [p.origin for p in parts if p.origin is not None]
        return TickColumns(
            np.concatenate([p.ts_event for p in parts]),
            np.concatenate([p.security for p in parts]),
            np.concatenate([p.price for p in parts]),
            np.concatenate(seqs) if len(seqs) == len(parts) else None,
            np.concatenate(origins) if len(origins) == len(parts) else None,
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
