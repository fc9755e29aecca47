"""Index levels keyed by codes: what the public API returns instead of the engine's integer ids."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from consumers.levelfile import LevelRecord
from engine.kernel.columns import LevelColumns
from tickindex.frames import ArrowFrame

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["LevelCollector", "LevelRecord", "Levels"]


@dataclass(frozen=True)
class Levels(ArrowFrame):
    """Published index levels, one row per (tick, affected index), in tick order.

    The same rows as a level file (``ts,index,level,seq,security``), as parallel columns.

    Attributes
    ----------
    ts_event : ndarray of int64
        Event time of the tick that moved the level, integer nanoseconds since the epoch.
    index : ndarray of str
        Index code (``"HSI"``).
    level : ndarray of float64
        Level just after that tick.
    seq : ndarray of int64
        Per-index sequence number of the level (1, 2, ... without gaps unless conflated).
    security : ndarray of str
        Security code of the tick that moved the level.
    """

    ts_event: NDArray[np.int64]
    index: NDArray[np.str_]
    level: NDArray[np.float64]
    seq: NDArray[np.int64]
    security: NDArray[np.str_]

    def __len__(self) -> int:
        return int(self.ts_event.size)

    def to_arrow(self) -> pa.Table:
        """The rows as an Arrow table: ``ts_event`` (``timestamp[ns, UTC]``), ``index``
        (dictionary-encoded), ``level`` (float64, exactly as computed), ``seq`` (int64) and
        ``security`` (dictionary-encoded)."""
        from tickindex.arrow_tables import levels_table  # noqa: PLC0415

        return levels_table(self.ts_event, self.index, self.level, self.seq, self.security)

    def of(self, index: str) -> Levels:
        """The rows of one index, in tick order.

        Parameters
        ----------
        index : str
            An index code; a code with no rows gives no rows.

        Returns
        -------
        Levels
            Those rows only.
        """
        rows = self.index == index
        return Levels(
            self.ts_event[rows],
            self.index[rows],
            self.level[rows],
            self.seq[rows],
            self.security[rows],
        )

    def last(self) -> dict[str, float]:
        """The last level of each index that has a row.

        Returns
        -------
        dict of str to float
            Index code to its last level here, in order of first appearance.
        """
        return dict(zip(self.index.tolist(), self.level.tolist(), strict=True))

    def records(self) -> list[LevelRecord]:
        """The rows as records, the same as a JSON Lines level file holds.

        Returns
        -------
        list of LevelRecord
            One record (``ts``, ``index``, ``level``, ``seq``, ``security``) per row.
        """
        return [
            LevelRecord(t, i, lv, q, s)
            for t, i, lv, q, s in zip(
                self.ts_event.tolist(),
                self.index.tolist(),
                self.level.tolist(),
                self.seq.tolist(),
                self.security.tolist(),
                strict=True,
            )
        ]


class LevelCollector:
    """A ``LevelSink`` that keeps the engine's level batches and hands them out with codes.

    Parameters
    ----------
    index_codes : sequence of str
        Index code per index id.
    security_codes : sequence of str
        Security code per security id.
    """

    def __init__(self, index_codes: Sequence[str], security_codes: Sequence[str]) -> None:
        self.index_codes = np.array(index_codes, dtype=np.str_)
        self.security_codes = np.array(security_codes, dtype=np.str_)
        self._batches: list[LevelColumns] = []

    def write(self, levels: LevelColumns) -> None:
        """Keep one batch of levels."""
        self._batches.append(levels)

    def take_columns(self) -> LevelColumns:
        """Every level kept since the last call, with the engine's ids; then forget them."""
        columns = LevelColumns.concat(self._batches)
        self._batches = []
        return columns

    def take(self) -> Levels:
        """Every level kept since the last call, with codes for ids; then forget them."""
        columns = self.take_columns()
        return Levels(
            ts_event=columns.ts_event,
            index=self.index_codes[columns.index],
            level=columns.level,
            seq=columns.seq,
            security=self.security_codes[columns.security],
        )
