"""Replay with currency variants: base levels passed on with their variant levels merged in.

``FxFeed`` hands out FX ticks in time slices that follow the base levels; ``CurrencySink`` is
the ``LevelSink`` that merges them.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from numpy.typing import NDArray

from engine.currency.fx_ticks import FxColumns
from engine.currency.translator import CurrencyTranslator
from engine.kernel.columns import LevelColumns
from engine.kernel.conflation import Conflator
from engine.pipeline.chain import LevelSink

_NEVER = int(np.iinfo(np.int64).min)
_NO_TIMES = np.empty(0, dtype=np.int64)


class FxFeed:
    """FX batches (e.g. an ``FxFileReader``) handed out in time slices that follow base levels.

    The feed's clock is the running maximum of the ticks' timestamps, so a slice is always a
    prefix of what is left; it reads ahead at most one batch past the requested time.

    Parameters
    ----------
    batches : iterable of FxColumns
        FX ticks in event order.
    """

    def __init__(self, batches: Iterable[FxColumns]) -> None:
        self._batches = iter(batches)
        self._held: list[FxColumns] = []
        self._held_clock: list[NDArray[np.int64]] = []
        self._clock = _NEVER
        self._until = _NEVER
        self._exhausted = False

    def take_until(self, ts: int) -> FxColumns:
        """FX ticks not taken yet with event time at or before ``ts`` (never less than before)."""
        self._until = max(self._until, ts)
        while not self._exhausted and self._clock <= self._until:
            batch = next(self._batches, None)
            if batch is None:
                self._exhausted = True
                break
            clock = np.maximum.accumulate(np.maximum(batch.ts_event, self._clock))
            self._clock = int(clock[-1]) if clock.size else self._clock
            self._held.append(batch)
            self._held_clock.append(clock)
        held, clock = FxColumns.concat(self._held), np.concatenate([_NO_TIMES, *self._held_clock])
        cut = int(np.searchsorted(clock, self._until, "right"))
        self._held, self._held_clock = [held.take(slice(cut, None))], [clock[cut:]]
        return held.take(slice(0, cut))

    def rest(self) -> FxColumns:
        """Every FX tick not taken yet (end of stream)."""
        remaining = [*self._held, *self._batches]
        self._held, self._held_clock, self._exhausted = [], [], True
        return FxColumns.concat(remaining)


class CurrencySink:
    """A ``LevelSink`` that passes base levels on with their currency variants merged in.

    Each batch of base levels takes the FX ticks up to its latest event time from the feed;
    ``close()`` translates the FX ticks left after the last base level.

    Parameters
    ----------
    translator : CurrencyTranslator
        Makes the variant levels.
    sink : LevelSink
        Receives base and variant levels as one stream in event-time order.
    fx : FxFeed
        The FX ticks.
    conflate_ns : int, optional
        Conflate the merged stream (the pipeline must then not conflate).
    """

    def __init__(
        self,
        translator: CurrencyTranslator,
        sink: LevelSink,
        fx: FxFeed,
        *,
        conflate_ns: int | None = None,
    ) -> None:
        self.translator = translator
        self.sink = sink
        self.fx = fx
        self.conflator = Conflator(conflate_ns) if conflate_ns is not None else None
        self.levels_out = 0

    def write(self, levels: LevelColumns) -> None:
        """Take one batch of base levels (tick order, unconflated)."""
        if len(levels):
            fx = self.fx.take_until(int(levels.ts_event.max()))
            self._publish(self.translator.translate_merged(levels, fx))

    def close(self) -> None:
        """End of stream: translate the FX ticks left, release conflated levels."""
        self._publish(self.translator.translate_merged(LevelColumns.empty(), self.fx.rest()))
        if self.conflator is not None:
            self._deliver(self.conflator.flush())

    def _publish(self, levels: LevelColumns) -> None:
        self._deliver(self.conflator.push(levels) if self.conflator is not None else levels)

    def _deliver(self, levels: LevelColumns) -> None:
        if len(levels):
            self.levels_out += len(levels)
            self.sink.write(levels)
