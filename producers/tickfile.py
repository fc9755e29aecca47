"""Historical tick files (CSV or JSON Lines, optionally gzipped) read as column batches.

CSV: header with at least ``ts,security,price`` in any order; extra columns (``volume``,
``seq``...) are ignored. JSON Lines: one object per line with the same keys. ``ts`` is integer
nanoseconds since the epoch or ISO-8601 with offset. Rows that cannot be read (wrong number of
columns, bad JSON, bad timestamp) are skipped and counted with the line number of the first few;
unknown securities and bad prices are passed on to be rejected by screening.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import msgspec
import numpy as np

from engine.columns import TickColumns
from engine.errors import TickInputError
from engine.screening import RejectReason
from engine.timestamps import BAD_TIMESTAMP, parse_timestamps
from engine.universe import Universe
from producers.chunked_file import ChunkedFileReader, ProgressCallback, file_format

REQUIRED_COLUMNS = ("ts", "security", "price")
MAX_EXAMPLES = 10


class TickRecord(msgspec.Struct, frozen=True):
    """One tick of a JSON Lines file; unknown keys are ignored."""

    ts: int | str
    security: str
    price: float | str


@dataclass
class ReadStats:
    """What a reader saw: rows read, rows it could not read (by reason) and unknown codes."""

    rows: int = 0
    skipped: Counter[RejectReason] = field(default_factory=Counter)
    unknown_codes: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    def note(self, reason: RejectReason, line: int, detail: str) -> None:
        """Count one unreadable row and keep the first few as examples."""
        self.skipped[reason] += 1
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(f"line {line}: {reason.label}: {detail}")


def tick_file_format(path: str | Path) -> str:
    """``csv`` or ``jsonl`` from the file name (a ``.gz`` suffix is allowed)."""
    return file_format(path, "tick")


class TickFileReader(ChunkedFileReader[TickColumns]):
    """Iterates a tick file as ``TickColumns`` batches of roughly ``chunk_bytes`` each.

    Parameters
    ----------
    path : str or Path
        The file; ``.csv``, ``.jsonl``, either optionally ``.gz``.
    universe : Universe
        Resolves security codes (unknown codes get id -1 and are counted in ``stats``).
    chunk_bytes : int
        Approximate bytes of input per batch.
    progress : callable, optional
        Called as ``progress(bytes_done, bytes_total)`` after each batch.
    """

    what = "tick"

    def __init__(
        self,
        path: str | Path,
        universe: Universe,
        *,
        chunk_bytes: int = 4 << 20,
        progress: ProgressCallback | None = None,
    ) -> None:
        super().__init__(path, chunk_bytes=chunk_bytes, progress=progress)
        self.universe = universe
        self.stats = ReadStats()

    def _csv(self, handle: IO[bytes]) -> Iterator[TickColumns]:
        header_line = handle.readline().decode("utf-8-sig")
        header = [name.strip() for name in next(csv.reader([header_line]), [])]
        missing = [name for name in REQUIRED_COLUMNS if name not in header]
        if missing:
            raise TickInputError(
                f"{self.path}:1: header lacks {','.join(missing)} "
                f"(needs {','.join(REQUIRED_COLUMNS)}, got {','.join(header) or 'nothing'})"
            )
        ts_col, sec_col, px_col = (header.index(name) for name in REQUIRED_COLUMNS)
        width = len(header)
        for first_line, lines in self._lines(handle):
            rows = list(csv.reader(line.decode("utf-8") for line in lines))
            ts: list[str] = []
            codes: list[str] = []
            prices: list[str] = []
            lines_kept: list[int] = []
            for offset, row in enumerate(rows):
                if len(row) == width:
                    ts.append(row[ts_col])
                    codes.append(row[sec_col].strip())
                    prices.append(row[px_col])
                    lines_kept.append(first_line + 1 + offset)
                elif row and any(cell.strip() for cell in row):
                    self.stats.note(
                        RejectReason.UNDECODABLE,
                        first_line + 1 + offset,
                        f"expected {width} columns, got {len(row)}",
                    )
            yield self._columns(ts, codes, prices, lines_kept)

    def _jsonl(self, handle: IO[bytes]) -> Iterator[TickColumns]:
        def undecodable(line: int, detail: str) -> None:
            self.stats.note(RejectReason.UNDECODABLE, line, detail)

        for records, kept in self._json_records(handle, TickRecord, undecodable):
            yield self._columns(
                [r.ts for r in records],
                [r.security for r in records],
                [str(r.price) for r in records],
                kept,
            )

    def _columns(
        self, ts: list[str] | list[int | str], codes: list[str], prices: list[str], lines: list[int]
    ) -> TickColumns:
        self.stats.rows += len(ts)
        stamps = parse_timestamps(ts)
        bad = np.flatnonzero(stamps == BAD_TIMESTAMP)
        for position in bad:
            self.stats.note(RejectReason.BAD_TIMESTAMP, lines[position], repr(ts[position]))
        security = self.universe.security_ids(codes)
        unknown = np.flatnonzero(security < 0)
        if unknown.size:
            self.stats.unknown_codes.update(codes[i] for i in unknown)
        columns = TickColumns(stamps, security, _parse_prices(prices))
        if bad.size:
            columns = columns.take(stamps != BAD_TIMESTAMP)
        return columns


def _parse_prices(values: list[str]) -> np.ndarray[tuple[int], np.dtype[np.float64]]:
    """Floats; text that is not a number becomes NaN so screening rejects it as a bad price."""
    try:
        return np.array(values, dtype=np.float64)
    except ValueError:
        out = np.empty(len(values), dtype=np.float64)
        for position, text in enumerate(values):
            try:
                out[position] = float(text)
            except ValueError:
                out[position] = np.nan
        return out
