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
from pathlib import Path
from typing import IO, TextIO

import msgspec
import numpy as np

from engine.core.timestamps import parse_timestamps
from engine.kernel.columns import TickColumns
from engine.kernel.screening import RejectReason, screen_ticks
from engine.refdata.universe import Universe
from producers.chunked_file import (
    BadRows,
    ChunkedFileReader,
    ProgressCallback,
    RowStats,
    parse_floats,
)

REQUIRED_COLUMNS = ("ts", "security", "price")


class TickRecord(msgspec.Struct, frozen=True):
    """One tick of a JSON Lines file; unknown keys are ignored."""

    ts: int | str
    security: str
    price: float | str


@dataclass
class ReadStats(RowStats[RejectReason]):
    """What a reader saw: rows read, rows skipped (by reason) and unknown codes."""

    unknown_codes: Counter[str] = field(default_factory=Counter)


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
        for (ts, codes, prices), lines, bad in self._csv_columns(handle, REQUIRED_COLUMNS):
            yield self._columns(ts, list(map(str.strip, codes)), prices, lines, bad)

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
        price = parse_floats(prices)
        reasons = screen_ticks(self.universe.n_securities, security, price)
        reasons[stamps < 0] = RejectReason.BAD_TIMESTAMP
        if not (reasons.any() or bad):
            return TickColumns(stamps, security, price)
        unknown = np.flatnonzero(reasons == RejectReason.UNKNOWN_SECURITY).tolist()
        self.stats.unknown_codes.update(codes[position] for position in unknown)
        shown = {RejectReason.BAD_TIMESTAMP: ts, RejectReason.UNKNOWN_SECURITY: codes}
        self.stats.note_chunk(
            reasons, lines, bad, undecodable=RejectReason.UNDECODABLE, shown=shown, others=prices
        )
        return TickColumns(stamps, security, price).take(reasons == RejectReason.ACCEPTED)
