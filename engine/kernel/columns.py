"""Column batches: ticks in and levels out as parallel numpy arrays."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Self

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
    volume : ndarray of float64, optional
        Shares traded, NaN where a tick has none (or an unusable one: ``screen_volume``); None
        when no tick of the batch has a volume, so batches without volume cost nothing.
    """

    ts_event: NDArray[np.int64]
    security: NDArray[np.int64]
    price: NDArray[np.float64]
    seq: NDArray[np.int64] | None = None
    origin: NDArray[np.int64] | None = None
    volume: NDArray[np.float64] | None = None

    @classmethod
    def concat(cls, parts: Sequence[Self]) -> Self:
        """Join batches in order; when only some have volumes, the others' ticks get NaN (no
        volume) rather than every volume being dropped."""
        if any(part.volume is not None for part in parts):
            parts = [
                part
                if part.volume is not None
                else dataclasses.replace(part, volume=np.full(len(part), np.nan))
                for part in parts
            ]
        return super().concat(parts)

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
