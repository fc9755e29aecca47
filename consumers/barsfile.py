"""Daily OHLC bars as a CSV file: ``date,index,open,high,low,close,count``."""

from __future__ import annotations

import csv
from pathlib import Path

from consumers.closing import ClosingSink
from consumers.levelfile import open_output_file
from engine.calendar.ohlc import OhlcBars

BARS_HEADER = ("date", "index", "open", "high", "low", "close", "count")


class BarsFileWriter(ClosingSink):
    """A ``BarsSink`` appending each finished day's bars, full float precision."""

    def __init__(self, path: str | Path, index_codes: tuple[str, ...]) -> None:
        # The writer owns the file until close(); it is itself the context manager.
        self._handle = open_output_file(path, "w")
        self._writer = csv.writer(self._handle, lineterminator="\n")
        self._writer.writerow(BARS_HEADER)
        self._codes = index_codes

    def write_bars(self, bars: OhlcBars) -> None:
        """Write one day's bars."""
        self._writer.writerows(
            [record[column] for column in BARS_HEADER] for record in bars.records(self._codes)
        )
        self._handle.flush()

    def close(self) -> None:
        """Close the file."""
        self._handle.close()
