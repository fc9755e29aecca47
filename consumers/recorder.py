"""Level files rolled per trading day: ``levels-YYYY-MM-DD.csv`` (or ``.jsonl``) in a folder.

A level goes to the file of the Hong Kong date of its ``ts_event`` (UTC+8, no daylight saving;
``engine.calendar.sessions.TradingCalendar.trading_day``), whatever the day. Columns are those of
``consumers.levelfile``: CSV ``ts,index,level,seq,security`` (or JSON Lines with those keys),
``level`` in shortest round-trip repr. ``security`` is empty: the level topic does not carry the
tick that moved a level. Within a batch, rows are written in event-time order. Files are
appended to, so a restarted recorder continues the day's file (the header is written only to a
new file); every batch is flushed before ``write`` returns, so it is ``durable`` after every
write. Parquet (``levels-YYYY-MM-DD.parquet``, then ``levels-YYYY-MM-DD.1.parquet``..., the same
columns) cannot be appended to: a day is written as parts, each under a temporary ``.partial``
name until finished (at least every ``part_seconds``), and the recorder is ``durable`` only when
every level written is in a finished part (``consumers.daily_parquet``, imported, with pyarrow,
only for Parquet). A consumer commits the offsets of what it wrote only when ``durable``.
"""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import msgspec
import numpy as np

from consumers.closing import ClosingSink
from consumers.day_files import PART_SECONDS, DayFiles
from consumers.level_batch import LevelBatch
from consumers.levelfile import CSV_HEADER, LevelRecord
from engine.calendar.sessions import TradingCalendar, day_date

if TYPE_CHECKING:
    from consumers.daily_parquet import DailyParquetLevels

log = logging.getLogger(__name__)

RecordFormat = Literal["csv", "jsonl", "parquet"]


class DailyLevelRecorder(ClosingSink):
    """Appends batches of levels to one file per Hong Kong date.

    Parameters
    ----------
    out_dir : str or Path
        Folder of the files (created if missing).
    fmt : {"csv", "jsonl", "parquet"}
        File format (Parquet: ``consumers.daily_parquet``, parts finished in time).
    prefix : str
        File name prefix.
    part_seconds : float
        Parquet: open parts are finished once the oldest is this old (checked at each
        ``write``, also of an empty batch).
    """

    def __init__(
        self,
        out_dir: str | Path,
        fmt: RecordFormat = "csv",
        *,
        prefix: str = "levels",
        part_seconds: float = PART_SECONDS,
    ) -> None:
        if fmt not in ("csv", "jsonl", "parquet"):
            raise ValueError(f"unknown record format {fmt!r}, expected csv, jsonl or parquet")
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.format = fmt
        self._calendar = TradingCalendar()
        self.prefix = prefix
        self.rows_written = 0
        self._days = DayFiles(self.path_for, CSV_HEADER.encode() + b"\n" if fmt == "csv" else b"")
        self._parquet = self._parquet_parts(part_seconds) if fmt == "parquet" else None
        self._encoder = msgspec.json.Encoder()

    def _parquet_parts(self, part_seconds: float) -> DailyParquetLevels:
        from consumers.daily_parquet import (  # noqa: PLC0415 (pyarrow only for Parquet)
            DailyParquetLevels,
            remove_unfinished_parts,
        )

        for leftover in remove_unfinished_parts(self.out_dir, self.prefix):
            log.warning("removed %s, a part a stopped recorder left unfinished", leftover)
        return DailyParquetLevels(self.path_for, part_seconds=part_seconds)

    @property
    def durable(self) -> bool:
        """Whether every level written is in a finished file (CSV/JSON Lines: always, flushed
        at each write; Parquet: once the open parts are finished)."""
        return self._parquet is None or self._parquet.durable

    def path_for(self, day: date) -> Path:
        """The file of one day, e.g. ``levels-2026-11-20.csv``."""
        return self.out_dir / f"{self.prefix}-{day.isoformat()}.{self.format}"

    def write(self, batch: LevelBatch) -> None:
        """Append one batch, each level to its day's file, and flush (Parquet: to the day's
        open part; then the open parts are finished if due).

        Parameters
        ----------
        batch : LevelBatch
            Levels (already deduplicated by the subscriber); may be empty.
        """
        if len(batch):
            self._write_days(batch)
        if self._parquet is not None:
            self._parquet.finish_due()

    def _write_days(self, batch: LevelBatch) -> None:
        ordered = batch.take(np.argsort(batch.ts_event, kind="stable"))
        day_of_row = self._calendar.trading_day(ordered.ts_event)
        codes = np.array(ordered.codes, dtype=object)
        starts = np.flatnonzero(np.diff(day_of_row, prepend=-1))
        ends = np.append(starts[1:], len(ordered))
        for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
            rows = slice(start, end)
            day = day_date(int(day_of_row[start]))
            if self._parquet is not None:
                self._parquet.write(day, ordered.take(rows))
                self.rows_written += end - start
                continue
            handle = self._days.handle(day)
            handle.write(
                self._encode(
                    ordered.ts_event[rows].tolist(),
                    codes[ordered.index[rows]].tolist(),
                    ordered.level[rows].tolist(),
                    ordered.seq[rows].tolist(),
                )
            )
            handle.flush()
            self.rows_written += end - start

    def _encode(self, ts: list[int], index: list[str], level: list[float], seq: list[int]) -> bytes:
        if self.format == "csv":
            return "".join(
                f"{t},{i},{lv!r},{q},\n" for t, i, lv, q in zip(ts, index, level, seq, strict=True)
            ).encode()
        records = [
            LevelRecord(t, i, lv, q, "") for t, i, lv, q in zip(ts, index, level, seq, strict=True)
        ]
        return self._encoder.encode_lines(records)

    @property
    def files(self) -> dict[date, Path]:
        """The file of every day written to (Parquet: the day's last part)."""
        return self._days.files if self._parquet is None else self._parquet.files

    def close(self) -> None:
        """Close every open file."""
        self._days.close()
        if self._parquet is not None:
            self._parquet.close()
