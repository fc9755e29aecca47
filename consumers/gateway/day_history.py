"""``DayHistory``: the levels of one index from the day files ``tickindex record`` writes.

``tickindex record --out-dir DIR`` keeps one file per Hong Kong date, ``levels-YYYY-MM-DD.csv``
(columns ``ts,index,level,seq,security``) or ``.jsonl``, or with ``--format parquet`` the day's
finished parts ``levels-YYYY-MM-DD.parquet``, ``levels-YYYY-MM-DD.1.parquet``...
(``consumers.recorder``, ``consumers.daily_parquet``); a part still being written
(``.partial``) is not read. Only the files of the dates a query spans are read, in a worker thread
(a day's file can be large); of a Parquet part only the columns needed and the rows of the index
and time asked (pyarrow's filters: row groups outside the time range are skipped), pyarrow
being imported only then. A level in two files (a recorder killed between finishing a part and
committing its offsets records it again) is served once, by ``(index, seq)``.
"""

from __future__ import annotations

import re
from datetime import date
from itertools import groupby
from operator import itemgetter
from pathlib import Path

import msgspec

from consumers.gateway.book import Level
from consumers.levelfile import CSV_HEADER, LevelRecord
from engine.calendar.sessions import TradingCalendar, day_date

_DAY_FILE = re.compile(r"levels-(\d{4}-\d{2}-\d{2})(\.(csv|jsonl)|(\.\d+)?\.parquet)")
_PARQUET_COLUMNS = ["ts", "level", "seq"]


class DayHistory:
    """The recorded levels in a folder of day files.

    Parameters
    ----------
    folder : str or Path
        The folder ``tickindex record --out-dir`` writes (it may not exist yet).
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self._calendar = TradingCalendar()
        self._decoder = msgspec.json.Decoder(LevelRecord)

    def files(self) -> list[tuple[date, Path]]:
        """The day files of the folder, by date (then by name: Parquet parts, CSV, JSON
        Lines)."""
        if not self.folder.is_dir():
            return []
        found = [
            (date.fromisoformat(match[1]), path)
            for path in self.folder.iterdir()
            if (match := _DAY_FILE.fullmatch(path.name)) is not None
        ]
        return sorted(found)

    def levels(
        self, code: str, from_ns: int | None, to_ns: int | None, most: int | None = None
    ) -> list[Level]:
        """The recorded levels of ``code`` with ``from_ns <= ts_event <= to_ns`` (bounds
        optional), by event time then seq; a level recorded twice (two files) once, by
        ``(index, seq)``. With ``most``, the files of later dates are not read once more than
        that many are found (the caller cuts the list)."""
        first = None if from_ns is None else self._day(from_ns)
        last = None if to_ns is None else self._day(to_ns)
        low = -(2**63) if from_ns is None else from_ns
        high = 2**63 - 1 if to_ns is None else to_ns
        found: list[Level] = []
        for day, files in groupby(self.files(), key=itemgetter(0)):
            if (first is not None and day < first) or (last is not None and day > last):
                continue
            of_day: dict[int, Level] = {}
            for _, path in files:
                for level in self._read(path, code, low, high):
                    of_day.setdefault(level.seq, level)
            in_range = [lv for lv in of_day.values() if low <= lv.ts_event <= high]
            found.extend(sorted(in_range, key=lambda level: (level.ts_event, level.seq)))
            if most is not None and len(found) > most:
                break
        return found

    def _day(self, ts_ns: int) -> date:
        return day_date(int(self._calendar.trading_day([ts_ns])[0]))

    def _read(self, path: Path, code: str, low: int, high: int) -> list[Level]:
        if path.suffix == ".parquet":
            return _parquet_levels(path, code, low, high)
        jsonl = path.suffix == ".jsonl"
        marker = f'"index":"{code}"' if jsonl else f",{code},"
        lines = [line for line in path.read_bytes().decode().splitlines() if marker in line]
        parse = self._json_level if jsonl else _csv_level
        return [level for level in map(parse, lines) if level is not None and level.index == code]

    def _json_level(self, line: str) -> Level | None:
        try:
            record = self._decoder.decode(line)
        except msgspec.DecodeError:
            return None  # a line cut short by a recorder stopped mid-write
        return Level(record.index, record.level, record.seq, record.ts)


def _csv_level(line: str) -> Level | None:
    fields = line.split(",")
    if len(fields) != len(CSV_HEADER.split(",")):
        return None  # a line cut short by a recorder stopped mid-write
    ts, index, level, seq, _ = fields
    try:
        return Level(index, float(level), int(seq), int(ts))
    except ValueError:
        return None


def _parquet_levels(path: Path, code: str, low: int, high: int) -> list[Level]:
    """The levels of ``code`` with ``low <= ts <= high`` in a finished Parquet part."""
    import pyarrow.parquet as pq  # noqa: PLC0415 (only when a Parquet part is read)

    table = pq.read_table(
        path,
        columns=_PARQUET_COLUMNS,
        filters=[("index", "==", code), ("ts", ">=", low), ("ts", "<=", high)],
    )
    ts, level, seq = (table.column(name).to_numpy().tolist() for name in _PARQUET_COLUMNS)
    return [Level(code, lv, q, t) for t, lv, q in zip(ts, level, seq, strict=True)]
