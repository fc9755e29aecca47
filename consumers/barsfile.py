"""Daily OHLC bars as a CSV file: ``date,index,open,high,low,close,count``.

Prices are written as Python's shortest round-trip repr (reading the file back gives the exact
float64 values). An index that did not trade that day (``count`` 0) has empty ``open``, ``high``
and ``low`` cells and its previous close carried as ``close``; a close that is not known (no
earlier day, no previous closing level) is empty too. A cell is never ``nan``.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

from consumers.closing import ClosingSink
from consumers.levelfile import open_output_file
from engine.calendar.ohlc import OhlcBars

BARS_HEADER = ("date", "index", "open", "high", "low", "close", "count")
PRICE_COLUMNS = frozenset({"open", "high", "low", "close"})


def price_cell(value: float) -> str:
    """A price as its shortest round-trip repr, empty when there is none (NaN)."""
    return "" if math.isnan(value) else repr(value)


class BarsFileWriter(ClosingSink):
    """A ``BarsSink`` appending each finished day's bars (see the module docstring)."""

    def __init__(self, path: str | Path, index_codes: tuple[str, ...]) -> None:
        # The writer owns the file until close(); it is itself the context manager.
        self._handle = open_output_file(path, "w")
        self._writer = csv.writer(self._handle, lineterminator="\n")
        self._writer.writerow(BARS_HEADER)
        self._codes = index_codes

    def write_bars(self, bars: OhlcBars) -> None:
        """Write one day's bars."""
        self._writer.writerows(
            [
                price_cell(record[column]) if column in PRICE_COLUMNS else record[column]
                for column in BARS_HEADER
            ]
            for record in bars.records(self._codes)
        )
        self._handle.flush()

    def close(self) -> None:
        """Close the file."""
        self._handle.close()
