"""The bars and analytics of an in-memory replay (``tickindex.replay(ohlc=..., analytics=...)``).

The replay writes them as ``tickindex replay --ohlc/--analytics`` does, to files in a temporary
folder, and they are read back: one implementation of both outputs, and the files' numbers are
exact (shortest round-trip decimals, JSON v1 records).
"""

from __future__ import annotations

import csv
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from os import PathLike, fspath
from pathlib import Path

import numpy as np

from engine.analytics.records import AnalyticsRecord
from engine.wire import WireCodec
from tickindex.frames import Bars


@dataclass(frozen=True)
class OutputFiles:
    """Where the replay writes its bars and analytics (None: not asked for)."""

    ohlc: str | None
    analytics: str | None
    analytics_config: str | None

    def bars(self) -> Bars | None:
        """The bars written, None when not asked for."""
        return None if self.ohlc is None else read_bars(Path(self.ohlc))

    def records(self) -> tuple[AnalyticsRecord, ...]:
        """The analytics records written, in order (none when not asked for)."""
        if self.analytics is None:
            return ()
        codec = WireCodec("json")
        with open(self.analytics, "rb") as handle:
            return tuple(codec.decode_analytics(line) for line in handle if line.strip())


@contextmanager
def output_files(ohlc: bool, analytics: bool | str | PathLike[str]) -> Iterator[OutputFiles]:
    """A temporary folder for the outputs asked for (removed afterwards).

    Parameters
    ----------
    ohlc : bool
        Daily bars wanted.
    analytics : bool, str or path-like
        Analytics records wanted: True for the default settings, a path for a settings file
        (``tickindex replay --analytics-config``).
    """
    with tempfile.TemporaryDirectory(prefix="tickindex-replay-") as folder:
        yield OutputFiles(
            ohlc=str(Path(folder) / "bars.csv") if ohlc else None,
            analytics=str(Path(folder) / "analytics.jsonl") if analytics is not False else None,
            analytics_config=(
                None if isinstance(analytics, bool) else fspath(analytics)  # a settings file
            ),
        )


def read_bars(path: Path) -> Bars:
    """A bars file (``date,index,open,high,low,close,count``; empty price: NaN)."""
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))

    def prices(column: str) -> np.ndarray[tuple[int], np.dtype[np.float64]]:
        return np.array([float(row[column] or "nan") for row in rows], dtype=np.float64)

    return Bars(
        date=np.array([row["date"] for row in rows], dtype=np.str_),
        index=np.array([row["index"] for row in rows], dtype=np.str_),
        open=prices("open"),
        high=prices("high"),
        low=prices("low"),
        close=prices("close"),
        count=np.array([int(row["count"]) for row in rows], dtype=np.int64),
    )
