"""Recorded levels in one Parquet file per day, written in row groups.

A Parquet file cannot be appended to: a day's file is finished (its footer written) when the
recorder closes, or when more than ``MAX_OPEN_FILES`` days are open and it is the least recently
written. Levels that come later for a finished day, or a restarted recorder, start the next
part: ``levels-2026-11-20.parquet``, then ``levels-2026-11-20.1.parquet``... Levels are
buffered up to ``group_rows`` per day before a row group is written; a recorder killed
outright loses the open files (no footer), unlike the CSV files flushed at every batch.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from consumers.columnar_levels import LEVEL_SCHEMA, PARQUET_LAYOUT
from consumers.day_files import MAX_OPEN_FILES
from consumers.level_batch import LevelBatch

GROUP_ROWS = 65_536
"""Levels per row group of a day's file."""

_NO_SECURITY = pa.array([""], type=pa.string())


class _DayFile:
    """One day's open Parquet file and the levels not yet written to it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.writer = pq.ParquetWriter(
            str(path), LEVEL_SCHEMA, compression="zstd", **PARQUET_LAYOUT
        )
        self.pending: list[pa.RecordBatch] = []
        self.rows = 0

    def flush(self) -> None:
        if self.pending:
            self.writer.write_table(pa.Table.from_batches(self.pending, schema=LEVEL_SCHEMA))
            self.pending, self.rows = [], 0

    def close(self) -> None:
        self.flush()
        self.writer.close()


class DailyParquetLevels:
    """Parquet files of levels per day.

    Parameters
    ----------
    path_for : callable
        The first file of a day (``levels-2026-11-20.parquet``); later parts insert ``.1``,
        ``.2``... before the suffix.
    group_rows : int
        Levels per row group.
    """

    def __init__(self, path_for: Callable[[date], Path], group_rows: int = GROUP_ROWS) -> None:
        self.path_for = path_for
        self.group_rows = group_rows
        self.files: dict[date, Path] = {}
        self._open: OrderedDict[date, _DayFile] = OrderedDict()

    def write(self, day: date, levels: LevelBatch) -> None:
        """Add levels of one day; their security is empty (the level topic has none)."""
        day_file = self._day_file(day)
        n = len(levels)
        security = pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)), _NO_SECURITY)
        index = pa.DictionaryArray.from_arrays(
            pa.array(levels.index.astype(np.int32)), pa.array(levels.codes, type=pa.string())
        )
        columns = [pa.array(levels.ts_event), index, pa.array(levels.level), pa.array(levels.seq)]
        day_file.pending.append(
            pa.RecordBatch.from_arrays([*columns, security], schema=LEVEL_SCHEMA)
        )
        day_file.rows += n
        if day_file.rows >= self.group_rows:
            day_file.flush()

    def _day_file(self, day: date) -> _DayFile:
        day_file = self._open.get(day)
        if day_file is not None:
            self._open.move_to_end(day)
            return day_file
        first = self.path_for(day)
        first.parent.mkdir(parents=True, exist_ok=True)
        path, part = first, 0
        while path.exists():
            part += 1
            path = first.with_suffix(f".{part}{first.suffix}")
        day_file = self._open[day] = _DayFile(path)
        self.files[day] = path
        if len(self._open) > MAX_OPEN_FILES:
            _, oldest = self._open.popitem(last=False)
            oldest.close()
        return day_file

    def close(self) -> None:
        """Finish every open file."""
        while self._open:
            _, day_file = self._open.popitem()
            day_file.close()
