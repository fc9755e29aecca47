"""Column batches: ticks in and levels out as parallel numpy arrays."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from engine.core.columnar import Columnar


@dataclass(frozen=True)
class TickColumns(Columnar):
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

    def slice(self, start: int, stop: int) -> TickColumns:
        """Ticks ``start`` to ``stop`` (views, no copy)."""
        return self.take(slice(start, stop))


@dataclass(frozen=True)
class LevelColumns(Columnar):
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
    count : ndarray of int64, optional
        How many levels of its index each row stands for (conflation); None: one each. The
        live service marks with 0 a level that goes only to the complete level topic.
    """

    ts_event: NDArray[np.int64]
    index: NDArray[np.int32]
    level: NDArray[np.float64]
    seq: NDArray[np.int64]
    security: NDArray[np.int64]
    count: NDArray[np.int64] | None = None
