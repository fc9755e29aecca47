"""Analytics records as a JSON Lines file, one record per line in its wire form (JSON v1)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from consumers.closing import ClosingSink
from consumers.levelfile import open_output_file
from engine.analytics.records import AnalyticsRecord
from engine.wire import WireCodec


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
