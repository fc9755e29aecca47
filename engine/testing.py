"""In-memory source and sink so a whole pipeline runs in a unit test in a few lines."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from engine.kernel.columns import LevelColumns, TickColumns
from engine.pipeline.buffers import LevelBuffer
from engine.refdata.universe import Universe


class TestingSource:
    """Ticks given as ``(ts_event, security_code, price)`` tuples, served in fixed-size batches.

    Parameters
    ----------
    universe : Universe
        Resolves security codes to ids (unknown codes become -1 and are rejected downstream).
    ticks : iterable of (int, str, float)
        The ticks in event order.
    batch_size : int
        Ticks per batch.
    """

    __test__ = False

    def __init__(
        self, universe: Universe, ticks: Iterable[tuple[int, str, float]], batch_size: int = 1000
    ) -> None:
        rows = list(ticks)
        self.batch_size = batch_size
        codes = [code for _, code, _ in rows]
        self.ticks = TickColumns(
            ts_event=np.array([ts for ts, _, _ in rows], dtype=np.int64),
            security=universe.security_ids(codes),
            price=np.array([price for _, _, price in rows], dtype=np.float64),
        )

    def __iter__(self) -> Iterator[TickColumns]:
        for start in range(0, len(self.ticks), self.batch_size):
            yield self.ticks.take(np.arange(start, min(start + self.batch_size, len(self.ticks))))


class TestingSink(LevelBuffer):
    """Collects every level batch; ``rows()`` gives ``(ts, index_code, level, seq)`` tuples."""

    __test__ = False

    def __init__(self, index_codes: Sequence[str]) -> None:
        super().__init__()
        self.index_codes = tuple(index_codes)

    @property
    def levels(self) -> LevelColumns:
        """Everything written so far, in order."""
        return LevelColumns.concat(self.batches)

    def rows(self) -> list[tuple[int, str, float, int]]:
        """Everything written so far as plain tuples."""
        out = self.levels
        return [
            (int(ts), self.index_codes[int(ix)], float(level), int(seq))
            for ts, ix, level, seq in zip(out.ts_event, out.index, out.level, out.seq, strict=True)
        ]
