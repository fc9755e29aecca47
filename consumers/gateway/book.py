"""``LevelBook``: the latest level of every index and a bounded ring of its recent levels."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from consumers.level_batch import LevelBatch
from engine.calendar.sessions import HKT_OFFSET_NS, NS_PER_DAY


@dataclass(frozen=True, slots=True)
class Level:
    """One level of one index, as the gateway serves it."""

    index: str
    level: float
    seq: int
    ts_event: int

    def message(self) -> dict[str, object]:
        """The stream message of this level (JSON-ready)."""
        return {
            "type": "level",
            "index": self.index,
            "level": self.level,
            "seq": self.seq,
            "ts_event": self.ts_event,
        }


@dataclass(frozen=True, slots=True)
class Gap:
    """The levels after ``seq`` of ``index`` are no longer in the ring: resync from the snapshot."""

    index: str
    seq: int

    def message(self) -> dict[str, object]:
        """The stream message of this gap (JSON-ready)."""
        return {"type": "gap", "index": self.index, "after_seq": self.seq, "resync": "snapshot"}


class DayHighLow:
    """The high and low of every index code over the levels seen in the current HKT day.

    As the board's ``consumers.day_range.DayRange``: a level of a later HKT day than the
    current one starts a new day (every high and low forgotten); levels of an earlier day are
    not counted.
    """

    def __init__(self) -> None:
        self.day: int | None = None
        self._high: dict[str, float] = {}
        self._low: dict[str, float] = {}

    def write(self, batch: LevelBatch) -> None:
        """Fold one batch of levels into the day's highs and lows."""
        if not len(batch):
            return
        days = (batch.ts_event + HKT_OFFSET_NS) // NS_PER_DAY
        last_day = int(days.max())
        if self.day is None or last_day > self.day:
            self.day = last_day
            self._high.clear()
            self._low.clear()
        today = days == self.day
        index, level = batch.index[today].astype(np.intp), batch.level[today]
        high = np.full(len(batch.codes), -np.inf)
        low = np.full(len(batch.codes), np.inf)
        np.maximum.at(high, index, level)
        np.minimum.at(low, index, level)
        for position in np.unique(index).tolist():
            code = batch.codes[position]
            self._high[code] = max(self._high.get(code, -np.inf), float(high[position]))
            self._low[code] = min(self._low.get(code, np.inf), float(low[position]))

    def of(self, code: str) -> tuple[float, float] | None:
        """The day's (high, low) of ``code``; None: no level of it seen today."""
        if code not in self._high:
            return None
        return self._high[code], self._low[code]


class LevelBook:
    """Latest level and recent history per index code, fed batch by batch.

    Parameters
    ----------
    history_levels : int
        Levels kept per index in its ring (the oldest dropped first).
    """

    def __init__(self, history_levels: int) -> None:
        if history_levels < 1:
            raise ValueError(f"history_levels must be >= 1, got {history_levels}")
        self.history_levels = history_levels
        self.day_range = DayHighLow()
        self._rings: dict[str, deque[Level]] = {}

    def apply(self, batch: LevelBatch) -> list[Level]:
        """Record the levels of ``batch`` (already deduplicated, per index in seq order) and
        return them as ``Level``s in batch order."""
        if not len(batch):
            return []
        self.day_range.write(batch)
        columns = (batch.index_codes(), batch.level.tolist(), batch.seq.tolist())
        levels = [
            Level(code, level, seq, ts)
            for (code, level, seq), ts in zip(
                zip(*columns, strict=True), batch.ts_event.tolist(), strict=True
            )
        ]
        for level in levels:
            ring = self._rings.get(level.index)
            if ring is None:
                ring = self._rings[level.index] = deque(maxlen=self.history_levels)
            ring.append(level)
        return levels

    def codes(self) -> list[str]:
        """Index codes seen so far, sorted."""
        return sorted(self._rings)

    def latest(self) -> Iterator[Level]:
        """The latest level of every index seen, by code."""
        return (self._rings[code][-1] for code in self.codes())

    def history(self, code: str, from_ns: int | None, to_ns: int | None) -> list[Level]:
        """The ring's levels of ``code`` with ``from_ns <= ts_event <= to_ns`` (bounds optional)."""
        low = -(2**63) if from_ns is None else from_ns
        high = 2**63 - 1 if to_ns is None else to_ns
        return [level for level in self._rings.get(code, ()) if low <= level.ts_event <= high]

    def oldest(self, code: str) -> Level | None:
        """The oldest level of ``code`` still in its ring (None: none seen)."""
        ring = self._rings.get(code)
        return ring[0] if ring else None

    def since(self, code: str, seq: int) -> list[Level] | Gap:
        """The levels of ``code`` after ``seq``, or a ``Gap`` when the ring has lost some.

        The ring covers ``seq`` when it still holds a level at or before ``seq`` or starts
        right after it; an index never seen has nothing to replay.
        """
        ring = self._rings.get(code)
        if not ring or ring[-1].seq <= seq:
            return []
        if ring[0].seq > seq + 1:
            return Gap(code, seq)
        return [level for level in ring if level.seq > seq]
