"""Recorded levels in Parquet, each Hong Kong day as parts finished at least every minute.

A Parquet file is readable only once its footer is written, and cannot be appended to. So a
day's levels go to parts: ``levels-2026-11-20.parquet``, then ``levels-2026-11-20.1.parquet``,
``.2``... A part is written under a temporary name (``levels-2026-11-20.1.parquet.partial``) and
finished together with every other open part (footer written, the file synced to disk, renamed
into place atomically, the folder synced) once the oldest open part is ``part_seconds`` old, once
one holds ``part_rows`` levels (after the batch that took it there), and when the recorder
closes; the least recently written day's part is finished too when more than ``MAX_OPEN_FILES``
days are open. A finished part is never written again: later levels start the day's next part.

``durable`` says when every level written is in a finished part: then, and only then, may the
consumer offsets of those levels be committed (``tickindex record --group-id``), so a recorder
killed outright loses the levels of its unfinished parts from the files, not from the topic: a
restart re-reads them from the committed offsets. The ``.partial`` file a killed recorder leaves
is never read as a part; ``remove_unfinished_parts`` deletes it at the next start. A level may
then be in two parts (a kill between a part's rename and the commit): readers drop a level seen
twice by ``(index, seq)``, as ``consumers.gateway.day_history.DayHistory`` does.
"""

from __future__ import annotations

import os
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from consumers.columnar_levels import LEVEL_SCHEMA, PARQUET_LAYOUT
from consumers.day_files import MAX_OPEN_FILES, PART_SECONDS
from consumers.level_batch import LevelBatch

GROUP_ROWS = 65_536
"""Levels per row group of a part."""
PART_ROWS = 1_000_000
"""Open parts are finished once one holds this many levels."""
PARTIAL_SUFFIX = ".partial"
"""Added to a part's name while it is written."""

_NO_SECURITY = pa.array([""], type=pa.string())


def remove_unfinished_parts(folder: Path, prefix: str) -> list[Path]:
    """Delete the ``PREFIX-*.partial`` files a killed recorder left in ``folder`` (one recorder
    writes a folder); returns them."""
    leftovers = sorted(folder.glob(f"{prefix}-*{PARTIAL_SUFFIX}"))
    for path in leftovers:
        path.unlink(missing_ok=True)
    return leftovers


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _Part:
    """One day's part written under its temporary name, and the levels not yet in it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.partial = path.with_name(path.name + PARTIAL_SUFFIX)
        self.writer = pq.ParquetWriter(
            str(self.partial), LEVEL_SCHEMA, compression="zstd", **PARQUET_LAYOUT
        )
        self.pending: list[pa.RecordBatch] = []
        self.pending_rows = 0
        self.rows = 0

    def add(self, batch: pa.RecordBatch, group_rows: int) -> None:
        self.pending.append(batch)
        self.pending_rows += batch.num_rows
        self.rows += batch.num_rows
        if self.pending_rows >= group_rows:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.writer.write_table(pa.Table.from_batches(self.pending, schema=LEVEL_SCHEMA))
            self.pending, self.pending_rows = [], 0

    def finish(self) -> None:
        """Footer, sync, rename into place, sync the folder (the rename itself)."""
        self.flush()
        self.writer.close()
        _fsync(self.partial)
        os.replace(self.partial, self.path)
        _fsync(self.path.parent)


class DailyParquetLevels:
    """Parquet parts of levels per day, finished in time (see the module's docstring).

    Parameters
    ----------
    path_for : callable
        The first part of a day (``levels-2026-11-20.parquet``); later parts insert ``.1``,
        ``.2``... before the suffix.
    group_rows : int
        Levels per row group.
    part_seconds : float
        Open parts are finished once the oldest is this old (``finish_due``).
    part_rows : int
        Open parts are finished once one holds this many levels (``finish_due``).
    clock : callable
        Seconds, monotonic (tests pass their own).
    """

    def __init__(
        self,
        path_for: Callable[[date], Path],
        *,
        group_rows: int = GROUP_ROWS,
        part_seconds: float = PART_SECONDS,
        part_rows: int = PART_ROWS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if part_seconds <= 0 or part_rows < 1:
            raise ValueError(f"parts need a positive age and size, got {part_seconds}, {part_rows}")
        self.path_for = path_for
        self.group_rows = group_rows
        self.part_seconds = part_seconds
        self.part_rows = part_rows
        self.clock = clock
        self.files: dict[date, Path] = {}
        self.parts_finished = 0
        self._open: OrderedDict[date, _Part] = OrderedDict()
        self._first_open_at = 0.0

    @property
    def durable(self) -> bool:
        """Whether every level written is in a finished part."""
        return not self._open

    def write(self, day: date, levels: LevelBatch) -> None:
        """Add levels of one day to its open part; their security is empty (the level topic
        has none)."""
        n = len(levels)
        if n == 0:
            return
        security = pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)), _NO_SECURITY)
        index = pa.DictionaryArray.from_arrays(
            pa.array(levels.index.astype(np.int32)), pa.array(levels.codes, type=pa.string())
        )
        columns = [pa.array(levels.ts_event), index, pa.array(levels.level), pa.array(levels.seq)]
        batch = pa.RecordBatch.from_arrays([*columns, security], schema=LEVEL_SCHEMA)
        self._part(day).add(batch, self.group_rows)

    def finish_due(self) -> bool:
        """Finish the open parts if the oldest is ``part_seconds`` old or one holds
        ``part_rows`` levels; whether it did."""
        if not self._open:
            return False
        aged = self.clock() - self._first_open_at >= self.part_seconds
        if aged or max(part.rows for part in self._open.values()) >= self.part_rows:
            self.finish()
            return True
        return False

    def finish(self) -> None:
        """Finish every open part (then ``durable``)."""
        while self._open:
            _, part = self._open.popitem(last=False)
            self._finish(part)

    def _finish(self, part: _Part) -> None:
        part.finish()
        self.parts_finished += 1

    def _part(self, day: date) -> _Part:
        part = self._open.get(day)
        if part is not None:
            self._open.move_to_end(day)
            return part
        if not self._open:
            self._first_open_at = self.clock()
        first = self.path_for(day)
        first.parent.mkdir(parents=True, exist_ok=True)
        path, number = first, 0
        while path.exists() or path.with_name(path.name + PARTIAL_SUFFIX).exists():
            number += 1
            path = first.with_suffix(f".{number}{first.suffix}")
        part = self._open[day] = _Part(path)
        self.files[day] = path
        if len(self._open) > MAX_OPEN_FILES:
            _, oldest = self._open.popitem(last=False)
            self._finish(oldest)
        return part

    def close(self) -> None:
        """Finish every open part."""
        self.finish()
