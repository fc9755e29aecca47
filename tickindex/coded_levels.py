"""Levels with their codes numbered: what ``restate`` compares, without a string per row.

A day of levels is millions of rows over a few index and security codes. As ``Levels`` (one
fixed-width string per row and code) two runs of 2M ticks took 2.5 GB and most of restate's
time went to copying and sorting those strings. Here each row holds positions in two small
tables of codes; the engine's own ids and a Parquet file's dictionaries give them directly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from tickindex.levels import LevelCollector, Levels

__all__ = ["CodedLevels"]


@dataclass(frozen=True)
class CodedLevels:
    """Rows of levels, tick order; ``index`` and ``security`` are positions in
    ``index_codes`` and ``security_codes``."""

    ts_event: NDArray[np.int64]
    index: NDArray[np.intp]
    level: NDArray[np.float64]
    seq: NDArray[np.int64]
    security: NDArray[np.intp]
    index_codes: NDArray[np.str_]
    security_codes: NDArray[np.str_]

    def __len__(self) -> int:
        return int(self.ts_event.size)

    @classmethod
    def from_levels(cls, levels: Levels) -> CodedLevels:
        """``levels`` with their codes numbered (by hashing: no sort of the strings)."""
        from tickindex.arrow_tables import factorize  # noqa: PLC0415 (pyarrow)

        index_codes, index = factorize(levels.index)
        security_codes, security = factorize(levels.security)
        return cls(
            levels.ts_event, index, levels.level, levels.seq, security, index_codes, security_codes
        )

    @classmethod
    def taken_from(cls, collector: LevelCollector) -> CodedLevels:
        """The levels ``collector`` kept (then forgotten there), with its code tables: the
        engine's ids are the positions."""
        columns = collector.take_columns()
        return cls(
            columns.ts_event,
            columns.index.astype(np.intp),
            columns.level,
            columns.seq,
            columns.security.astype(np.intp),
            collector.index_codes,
            collector.security_codes,
        )

    def to_levels(self) -> Levels:
        """The rows with their codes as strings."""
        return Levels(
            self.ts_event,
            self.index_codes[self.index],
            self.level,
            self.seq,
            self.security_codes[self.security],
        )
