"""In-memory sinks keeping what the pipeline produced until the caller takes it."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from engine.kernel.columns import LevelColumns, TickColumns


class LevelBuffer:
    """A ``LevelSink`` keeping level batches, in order, until ``take``."""

    def __init__(self) -> None:
        self.batches: list[LevelColumns] = []

    def write(self, levels: LevelColumns) -> None:
        """Keep one batch of levels."""
        self.batches.append(levels)

    def take(self) -> LevelColumns:
        """Everything kept since the last call, in order, then forget it."""
        batches = self.batches
        levels = batches[0] if len(batches) == 1 else LevelColumns.concat(batches)
        self.batches = []
        return levels


class RejectBuffer:
    """A ``RejectSink`` keeping rejected ticks with their reasons until ``take``."""

    def __init__(self) -> None:
        self.ticks: list[TickColumns] = []
        self.reasons: list[NDArray[np.uint8]] = []

    def reject(self, ticks: TickColumns, reasons: NDArray[np.uint8]) -> None:
        """Keep rejected ticks and their ``RejectReason`` codes."""
        self.ticks.append(ticks)
        self.reasons.append(reasons)

    def take(self) -> tuple[TickColumns, NDArray[np.uint8]]:
        """Everything kept since the last call (ticks, reason codes), then forget it."""
        ticks = TickColumns.concat(self.ticks)
        reasons = np.concatenate(self.reasons) if self.reasons else np.empty(0, dtype=np.uint8)
        self.ticks.clear()
        self.reasons.clear()
        return ticks, reasons
