"""Analytics records as JSON Lines files, one record per line in its wire form (JSON v1).

``AnalyticsFileWriter`` writes one file (``replay --analytics``); ``DailyAnalyticsFiles`` one
file per Hong Kong date of the records' event time, ``DIR/YYYY-MM-DD/analytics.jsonl``
(``record --analytics``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path

from consumers.closing import ClosingSink
from consumers.day_files import DayFiles
from consumers.levelfile import open_output_file
from engine.analytics.records import AnalyticsRecord
from engine.calendar.sessions import TradingCalendar, day_date
from engine.wire import WireCodec

DAILY_FILE_NAME = "analytics.jsonl"


class AnalyticsFileWriter(ClosingSink):
    """An ``AnalyticsSink`` writing each record as the analytics topic carries it.

    Parameters
    ----------
    path : str or Path
        The file (``.gz``: compressed).
    """

    def __init__(self, path: str | Path) -> None:
        self._handle = open_output_file(path, "w")
        self._codec = WireCodec("json")
        self.records = 0

    def write_analytics(self, records: Sequence[AnalyticsRecord]) -> None:
        """Write the records of one cut, one line each."""
        encode = self._codec.encode_analytics
        self._handle.write("".join(encode(record).decode() + "\n" for record in records))
        self.records += len(records)

    def close(self) -> None:
        """Close the file."""
        self._handle.close()


class DailyAnalyticsFiles(ClosingSink):
    """An ``AnalyticsSink`` appending each record to the file of its day.

    A record goes to ``out_dir/YYYY-MM-DD/analytics.jsonl`` for the Hong Kong date of its
    ``ts_event`` (UTC+8, ``TradingCalendar.trading_day``), in the order given, one JSON v1 line
    each: what the analytics topic carries in the JSON wire format. Files are appended to, so a
    restarted recorder continues the day's file; every call is flushed before it returns.

    Parameters
    ----------
    out_dir : str or Path
        Folder of the day folders (created if missing).
    """

    def __init__(self, out_dir: str | Path) -> None:
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.records = 0
        self._calendar = TradingCalendar()
        self._codec = WireCodec("json")
        self._days = DayFiles(self.path_for)

    def path_for(self, day: date) -> Path:
        """The file of one day, e.g. ``DIR/2026-11-23/analytics.jsonl``."""
        return self.out_dir / day.isoformat() / DAILY_FILE_NAME

    def write_analytics(self, records: Sequence[AnalyticsRecord]) -> None:
        """Append the records, each to its day's file, and flush."""
        if not records:
            return
        days = self._calendar.trading_day([record.ts_event for record in records]).tolist()
        lines: dict[int, list[bytes]] = {}
        for day, record in zip(days, records, strict=True):
            lines.setdefault(day, []).append(self._codec.encode_analytics(record) + b"\n")
        for day, day_lines in lines.items():
            handle = self._days.handle(day_date(day))
            handle.write(b"".join(day_lines))
            handle.flush()
        self.records += len(records)

    @property
    def files(self) -> dict[date, Path]:
        """The file of every day written to."""
        return self._days.files

    def close(self) -> None:
        """Close every open file."""
        self._days.close()
