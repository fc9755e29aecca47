"""Files kept per day, appended to: the open handles of the recorders' daily files."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import IO

MAX_OPEN_FILES = 3
PART_SECONDS = 60.0
"""Parquet recordings: open parts are finished once the oldest is this old (seconds;
``consumers.daily_parquet``)."""


class DayFiles:
    """Append handles of one file per day, at most ``MAX_OPEN_FILES`` open at once.

    A day's file is opened for appending when first written (its folder created), so a
    restarted recorder continues it; ``header`` goes only to a file that is new or empty. The
    least recently written file is closed when one more is needed (it is reopened if late
    records come for its day).

    Parameters
    ----------
    path_for : callable
        The file of a day.
    header : bytes
        First bytes of a new file (e.g. a CSV header line).
    """

    def __init__(self, path_for: Callable[[date], Path], header: bytes = b"") -> None:
        self.path_for = path_for
        self.header = header
        self.files: dict[date, Path] = {}
        self._handles: OrderedDict[date, IO[bytes]] = OrderedDict()

    def handle(self, day: date) -> IO[bytes]:
        """The open file of ``day``."""
        handle = self._handles.get(day)
        if handle is not None:
            self._handles.move_to_end(day)
            return handle
        path = self.path_for(day)
        path.parent.mkdir(parents=True, exist_ok=True)
        new = not path.exists() or path.stat().st_size == 0
        handle = self._handles[day] = path.open("ab")
        if new and self.header:
            handle.write(self.header)
        self.files[day] = path
        if len(self._handles) > MAX_OPEN_FILES:
            _, oldest = self._handles.popitem(last=False)
            oldest.close()
        return handle

    def close(self) -> None:
        """Close every open file."""
        while self._handles:
            _, handle = self._handles.popitem()
            handle.close()
