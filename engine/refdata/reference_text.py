"""Reading a small reference CSV file (indices, composition, calendar, variants) as rows.

Every problem names the file and, where there is one, the line: a missing file or a
directory, invalid UTF-8 (the line of the first bad byte), bad CSV quoting or a cell over the
CSV field limit.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

from engine.core.errors import ReferenceDataError


def read_reference_text(path: Path) -> str:
    """The file decoded as UTF-8 (a BOM is dropped).

    Raises
    ------
    ReferenceDataError
        When the file cannot be read (a directory, say) or is not UTF-8.
    """
    if path.is_dir():
        raise ReferenceDataError(str(path), None, "cannot open: is a directory")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ReferenceDataError(str(path), None, f"cannot open: {exc.strerror}") from exc
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - data.rfind(b"\n", 0, exc.start)
        raise ReferenceDataError(str(path), line, f"invalid UTF-8 at column {column}") from None


def reference_rows(path: Path, text: str) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) of each CSV row of ``text``, the header included.

    Raises
    ------
    ReferenceDataError
        When a row is not CSV (a cell over the field limit) or runs over more than one line
        (a quote left open).
    """
    reader = csv.reader(io.StringIO(text, newline=""))
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise ReferenceDataError(str(path), start, f"not CSV: {exc}") from None
        if reader.line_num != start:
            raise ReferenceDataError(
                str(path), start, f"a quoted cell runs on to line {reader.line_num}"
            )
        yield start, cells
