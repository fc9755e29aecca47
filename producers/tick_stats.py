"""What a tick file reader saw: rows read, skipped by reason, unknown codes, bad volumes."""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from engine.kernel.columns import TickColumns
from engine.kernel.screening import RejectReason
from engine.kernel.volume import screen_volume
from producers.chunked_file import RowStats


@dataclass
class ReadStats(RowStats[RejectReason]):
    """What a reader saw: rows read, rows skipped (by reason), unknown codes, and the volumes
    screened out of rows that were used."""

    unknown_codes: Counter[str] = field(default_factory=Counter)
    bad_volumes: int = 0

    def screen_volumes(self, ticks: TickColumns, blank: NDArray[np.bool_] | None) -> TickColumns:
        """``ticks`` with unusable volumes made NaN, counted in ``bad_volumes``; ``blank``
        marks the ticks given no volume at all (not counted)."""
        if ticks.volume is None or blank is None:
            return ticks
        volume, screened = screen_volume(ticks.volume, absent=int(np.count_nonzero(blank)))
        self.bad_volumes += screened
        return dataclasses.replace(ticks, volume=volume)
