"""The divisor audit log as a CSV file: ``ts,index,old_divisor,new_divisor,level,cause``."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from consumers.closing import ClosingSink
from consumers.levelfile import open_output_file
from engine.maintenance.adjustments import DivisorChange

AUDIT_HEADER = ("ts", "index", "old_divisor", "new_divisor", "level", "cause")


class AuditFileWriter(ClosingSink):
    """An ``AuditSink`` appending every divisor change to a CSV file, full float precision."""

    def __init__(self, path: str | Path) -> None:
        # The writer owns the file until close(); it is itself the context manager.
        self._handle = open_output_file(path, "w")
        self._writer = csv.writer(self._handle, lineterminator="\n")
        self._writer.writerow(AUDIT_HEADER)
        self.records = 0

    def record(self, changes: Sequence[DivisorChange]) -> None:
        """Write the changes of one event."""
        self._writer.writerows(
            (c.ts, c.index, repr(c.old_divisor), repr(c.new_divisor), repr(c.level), c.cause)
            for c in changes
        )
        self._handle.flush()
        self.records += len(changes)

    def close(self) -> None:
        """Close the file."""
        self._handle.close()
