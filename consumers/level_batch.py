"""``LevelBatch``: the new levels of one poll of the level topic, as columns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from engine.kernel.columns import LevelColumns
from engine.refdata.universe import Universe

NO_SEQ = int(np.iinfo(np.int64).min)
LEVEL_COLUMNS = ("index", "level", "change", "seq", "ts_event", "ts_published")


@dataclass(frozen=True)
class LevelBatch:
    """The new levels of one poll, in topic order (per index in ``seq`` order).

    Attributes
    ----------
    codes : tuple of str
        Index code of each id used in ``index`` (the subscriber's ids, in order first seen).
    index : ndarray of int32
        Index id per level, a position in ``codes``.
    level, change : ndarray of float64
        The level, and the level minus the index's previous close.
    seq : ndarray of int64
        Per-index sequence number.
    ts_event, ts_published : ndarray of int64
        Event time of the tick that moved the level, and when the service published it (ns).
    duplicates : int
        Levels of this poll dropped as already seen.
    """

    codes: tuple[str, ...]
    index: NDArray[np.int32]
    level: NDArray[np.float64]
    change: NDArray[np.float64]
    seq: NDArray[np.int64]
    ts_event: NDArray[np.int64]
    ts_published: NDArray[np.int64]
    duplicates: int = 0

    def __len__(self) -> int:
        return int(self.index.size)

    def index_codes(self) -> list[str]:
        """Index code per level."""
        return np.array(self.codes, dtype=object)[self.index].tolist() if len(self) else []

    def take(self, rows: NDArray[np.intp] | NDArray[np.bool_]) -> LevelBatch:
        """The selected levels, order kept."""
        return replace(self, **{name: getattr(self, name)[rows] for name in LEVEL_COLUMNS})

    @staticmethod
    def concat(batches: Sequence[LevelBatch], duplicates: int | None = None) -> LevelBatch:
        """Join (at least one) batches of one subscriber in order; its ``codes`` only grow.

        ``duplicates`` of the result is the sum over ``batches`` unless given.
        """
        columns = {
            name: np.concatenate([getattr(b, name) for b in batches]) for name in LEVEL_COLUMNS
        }
        total = sum(b.duplicates for b in batches) if duplicates is None else duplicates
        return LevelBatch(max((b.codes for b in batches), key=len), **columns, duplicates=total)

    @staticmethod
    def empty(codes: tuple[str, ...] = (), duplicates: int = 0) -> LevelBatch:
        """No levels."""
        ints, floats = np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
        index = np.empty(0, dtype=np.int32)
        return LevelBatch(codes, index, floats, floats, ints, ints, ints, duplicates)

    def to_columns(self, universe: Universe) -> tuple[LevelColumns, int]:
        """The levels as engine ``LevelColumns`` with ``universe``'s index ids.

        Returns
        -------
        (LevelColumns, int)
            The columns (``security`` -1: not on the wire) and how many levels were left out
            because ``universe`` does not know their index.
        """
        ids = {code: position for position, code in enumerate(universe.index_codes)}
        lookup = np.array([ids.get(code, -1) for code in self.codes], dtype=np.int32)
        index = lookup[self.index] if len(self) else np.empty(0, dtype=np.int32)
        known = index >= 0
        columns = LevelColumns(
            self.ts_event, index, self.level, self.seq, np.full(len(self), -1, dtype=np.int64)
        )
        unknown = int(len(self) - np.count_nonzero(known))
        return (columns.take(known) if unknown else columns), unknown
