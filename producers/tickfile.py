"""Historical tick files (CSV or JSON Lines, optionally gzipped) read as column batches.

CSV: header with at least ``ts,security,price`` in any order; extra columns (``volume``,
``seq``...) are ignored. JSON Lines: one object per line with the same keys. ``ts`` is integer
nanoseconds since the epoch (0 to 2**63-1) or ISO-8601 with offset.

Every row the reader cannot use is skipped, counted by reason and reported as
``FILE:LINE: reason: detail`` (``RejectLog``): wrong number of columns, invalid UTF-8, bad CSV or
JSON, bad timestamp, unknown security, and a price the engine would reject (``screen_ticks``).
With ``strict=True`` the first such row raises ``InputFileError`` instead. Blank lines are
ignored; every other line is a row read, so ``rows == rows used + sum(skipped)``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import IO, TextIO

import msgspec
import numpy as np

from engine.core.timestamps import parse_timestamps
from engine.kernel.columns import TickColumns
from engine.kernel.screening import RejectReason, screen_ticks
from engine.refdata.universe import Universe
from producers.chunked_file import BadRows, ChunkedFileReader, ProgressCallback
from producers.reject_log import RejectLog, short

REQUIRED_COLUMNS = ("ts", "security", "price")


class TickRecord(msgspec.Struct, frozen=True):
    """One tick of a JSON Lines file; unknown keys are ignored."""

    ts: int | str
    security: str
    price: float | str


@dataclass
class ReadStats:
    """What a reader saw: rows read, rows skipped (by reason) and unknown codes.

    ``rows`` counts every non-blank data line; ``used == rows - sum(skipped.values())``.
    """

    rows: int = 0
    skipped: Counter[RejectReason] = field(default_factory=Counter)
    unknown_codes: Counter[str] = field(default_factory=Counter)
    log: RejectLog = field(default_factory=lambda: RejectLog("-"))

    @property
    def used(self) -> int:
        """Rows passed on as ticks."""
        return self.rows - sum(self.skipped.values())

    def note(self, reason: RejectReason, line: int, detail: str) -> None:
        """Count one skipped row and report it (raises in strict mode)."""
        self.log.note(line, reason.label, detail)
        self.skipped[reason] += 1


class TickFileReader(ChunkedFileReader[TickColumns]):
    """Iterates a tick file as ``TickColumns`` batches of roughly ``chunk_bytes`` each.

    Parameters
    ----------
    path : str or Path
        The file; ``.csv``, ``.jsonl``, either optionally ``.gz``.
    universe : Universe
        Resolves security codes (unknown codes are skipped and counted in ``stats``).
    chunk_bytes : int
        Approximate bytes of input per batch.
    progress : callable, optional
        Called as ``progress(bytes_done, bytes_total)`` after each batch.
    strict : bool
        The first row that cannot be used raises ``InputFileError`` (default: skip it).
    rejects : text stream, optional
        Receives a ``FILE:LINE: reason: detail`` line per skipped row.
    """

    what = "tick"

    def __init__(
        self,
        path: str | Path,
        universe: Universe,
        *,
        chunk_bytes: int = 4 << 20,
        progress: ProgressCallback | None = None,
        strict: bool = False,
        rejects: TextIO | None = None,
    ) -> None:
        super().__init__(
            path, chunk_bytes=chunk_bytes, progress=progress, strict=strict, rejects=rejects
        )
        self.universe = universe
        self.stats = ReadStats(log=self.rejects)

    def _csv(self, handle: IO[bytes]) -> Iterator[TickColumns]:
        header = self._csv_header(handle, REQUIRED_COLUMNS)
        ts_col, sec_col, px_col = (header.index(name) for name in REQUIRED_COLUMNS)
        for rows, lines, bad in self._csv_rows(handle, len(header)):
            yield self._columns(
                list(map(itemgetter(ts_col), rows)),
                list(map(str.strip, map(itemgetter(sec_col), rows))),
                list(map(itemgetter(px_col), rows)),
                lines,
                bad,
            )

    def _jsonl(self, handle: IO[bytes]) -> Iterator[TickColumns]:
        for records, lines, bad in self._json_records(handle, TickRecord):
            yield self._columns(
                [r.ts for r in records],
                [r.security for r in records],
                [str(r.price) for r in records],
                lines,
                bad,
            )

    def _columns(
        self,
        ts: Sequence[int | str],
        codes: list[str],
        prices: list[str],
        lines: list[int],
        bad: BadRows,
    ) -> TickColumns:
        self.stats.rows += len(ts) + len(bad)
        stamps = parse_timestamps(ts)
        security = self.universe.security_ids(codes)
        price = _parse_prices(prices)
        reasons = screen_ticks(self.universe.n_securities, security, price)
        reasons[stamps < 0] = RejectReason.BAD_TIMESTAMP
        rejected = np.flatnonzero(reasons)
        if rejected.size or bad:
            self._note(
                (ts, codes, prices), lines=lines, bad=bad, reasons=reasons, rejected=rejected
            )
            return TickColumns(stamps, security, price).take(reasons == RejectReason.ACCEPTED)
        return TickColumns(stamps, security, price)

    def _note(
        self,
        cells: tuple[Sequence[int | str], list[str], list[str]],
        *,
        lines: list[int],
        bad: BadRows,
        reasons: np.ndarray[tuple[int], np.dtype[np.uint8]],
        rejected: np.ndarray[tuple[int], np.dtype[np.intp]],
    ) -> None:
        """Report skipped rows in line order (so strict mode stops at the first)."""
        ts, codes, prices = cells
        shown: dict[RejectReason, Sequence[object]] = {
            RejectReason.BAD_TIMESTAMP: ts,
            RejectReason.UNKNOWN_SECURITY: codes,
        }
        skipped = [(number, RejectReason.UNDECODABLE, problem) for number, problem in bad]
        for position in rejected.tolist():
            reason = RejectReason(int(reasons[position]))
            value = shown.get(reason, prices)[position]
            skipped.append((lines[position], reason, short(value)))
            if reason is RejectReason.UNKNOWN_SECURITY:
                self.stats.unknown_codes[codes[position]] += 1
        for number, reason, detail in sorted(skipped, key=lambda item: item[0]):
            self.stats.note(reason, number, detail)


def _parse_prices(values: list[str]) -> np.ndarray[tuple[int], np.dtype[np.float64]]:
    """Floats; text that is not a number becomes NaN so screening rejects it as a bad price."""
    try:
        return np.array(values, dtype=np.float64)
    except (ValueError, OverflowError):
        out = np.empty(len(values), dtype=np.float64)
        for position, text in enumerate(values):
            try:
                out[position] = float(text)
            except (ValueError, OverflowError):
                out[position] = np.nan
        return out
