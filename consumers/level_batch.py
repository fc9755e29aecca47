"""``LevelBatch``: the new levels of one poll of the level topic, as columns."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from engine.core.columnar import Columnar
from engine.kernel.columns import LevelColumns
from engine.refdata.universe import Universe

NO_SEQ = int(np.iinfo(np.int64).min)


@dataclass(frozen=True)
class LevelBatch(Columnar):
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
    count : ndarray of int64, optional
        How many levels of its index each level stands for (1 unless the level topic is
        conflated: ``tickindex serve --publication``).
    """

    codes: tuple[str, ...]
    index: NDArray[np.int32]
    level: NDArray[np.float64]
    change: NDArray[np.float64]
    seq: NDArray[np.int64]
    ts_event: NDArray[np.int64]
    ts_published: NDArray[np.int64]
    duplicates: int = 0
    count: NDArray[np.int64] | None = None

    def index_codes(self) -> list[str]:
        """Index code per level."""
        return np.array(self.codes, dtype=object)[self.index].tolist() if len(self) else []

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
