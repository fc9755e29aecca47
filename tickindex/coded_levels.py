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

__all__ = ["CodedLevels", "factorize", "renumber"]


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


def factorize(values: NDArray[np.str_]) -> tuple[NDArray[np.str_], NDArray[np.intp]]:
    """The distinct values, sorted, and the position of each value among them: what
    ``np.unique(values, return_inverse=True)`` gives, by hashing instead of sorting strings
    (8.6M codes: 1 s, not 10 s)."""
    if not values.size:
        return np.empty(0, np.str_), np.empty(0, np.intp)
    import pyarrow as pa  # noqa: PLC0415  (restate's parser, like every command's, loads none)
    import pyarrow.compute as pc  # noqa: PLC0415

    strings = pa.array(values, type=pa.string())
    if isinstance(strings, pa.ChunkedArray):  # pyarrow converts a large array in chunks
        strings = strings.combine_chunks()
    encoded = pc.dictionary_encode(strings)
    found = np.array(encoded.dictionary.to_pylist(), dtype=np.str_)
    return renumber(found, encoded.indices.to_numpy())


def renumber(
    table: NDArray[np.str_], positions: NDArray[np.integer]
) -> tuple[NDArray[np.str_], NDArray[np.intp]]:
    """Positions in ``table`` (distinct codes, any order) as positions in its sorted copy."""
    rank = np.argsort(table, kind="stable")
    sorted_position = np.empty(table.size, np.intp)
    sorted_position[rank] = np.arange(table.size)
    return table[rank], sorted_position[positions]
