"""Historical tick files (CSV or JSON Lines, optionally gzipped) read as column batches.

CSV: header with at least ``ts,security,price`` in any order, and optionally ``volume``; other
columns (``seq``...) are ignored. JSON Lines: one object per line with the same keys. ``ts`` is
integer nanoseconds since the epoch (0 to 2**63-1) or ISO-8601 with offset. ``volume`` is shares
traded: a blank cell or a missing key is a tick without volume (NaN); a volume that is not a
usable number (text, negative, beyond ``MAX_VOLUME``) is screened like the decoder does: the
tick is kept, its volume becomes NaN, counted in ``ReadStats.bad_volumes``. A file without any
volume gives ``TickColumns.volume`` None.

Every row the reader cannot use is skipped, counted by reason and reported as
``FILE:LINE: reason: detail`` (``RejectLog``): wrong number of columns, invalid UTF-8, bad CSV or
JSON, bad timestamp, unknown security, and a price the engine would reject (``screen_ticks``).
With ``strict=True`` the first such row raises ``InputFileError`` instead. Blank lines are
ignored; every other line is a row read, so ``rows == rows used + sum(skipped)``. Each batch
carries the file line of every tick as ``TickColumns.origin``, so rejects of the engine itself
(``outside_session``...) are reported by line too (``producers.reject_log.LineRejects``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from operator import itemgetter
from pathlib import Path
from typing import IO, TextIO

import msgspec
import numpy as np
from numpy.typing import NDArray

from engine.core.timestamps import parse_timestamps
from engine.kernel.columns import TickColumns
from engine.kernel.screening import RejectReason, screen_ticks
from engine.refdata.universe import Universe
from producers.chunked_file import (
    BadRows,
    ChunkedFileReader,
    ProgressCallback,
    parse_floats,
)
from producers.tick_stats import ReadStats

__all__ = [
    "REQUIRED_COLUMNS",
    "VOLUME_COLUMN",
    "ReadStats",  # defined in producers.tick_stats, shared with the columnar readers
    "TickFileReader",
    "TickRecord",
]

REQUIRED_COLUMNS = ("ts", "security", "price")
VOLUME_COLUMN = "volume"


class TickRecord(msgspec.Struct, frozen=True):
    """One tick of a JSON Lines file; unknown keys are ignored."""

    ts: int | str
    security: str
    price: float | str
    volume: float | str | None = None


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
        # Arrow's CSV reader (and pyarrow) loads with the first CSV file: JSON Lines need neither.
        from producers.arrow_csv import ArrowCsvBlocks  # noqa: PLC0415
        from producers.tick_arrays import ArrowTickConverter  # noqa: PLC0415

        header = self._csv_header(handle, REQUIRED_COLUMNS)
        wanted = [*REQUIRED_COLUMNS, *([VOLUME_COLUMN] if VOLUME_COLUMN in header else [])]
        blocks = ArrowCsvBlocks(header, wanted, "security")
        arrow = ArrowTickConverter(self.universe, self.stats)
        for first_line, block, count in self._blocks(handle):
            table = blocks.read(block, count)
            if table is not None:
                arrays = [table.column(name).combine_chunks() for name in wanted]
                ts, codes, prices = arrays[:3]
                volumes = arrays[3] if len(arrays) > 3 else None
                yield arrow.convert(ts, codes, prices, volumes, first_line)
            else:
                lines = [line + b"\n" for line in block.split(b"\n")[:count]]
                yield self._csv_columns_of(header, *self._csv_chunk(first_line, lines, len(header)))

    def _csv_columns_of(
        self, header: list[str], rows: list[list[str]], lines: list[int], bad: BadRows
    ) -> TickColumns:
        """The columns of rows parsed by Python's ``csv``."""
        positions = [header.index(name) for name in REQUIRED_COLUMNS]
        volume_at = header.index(VOLUME_COLUMN) if VOLUME_COLUMN in header else None
        ts, codes, prices = (list(map(itemgetter(p), rows)) for p in positions)
        volumes = (
            None if volume_at is None else list(map(str.strip, map(itemgetter(volume_at), rows)))
        )
        return self._columns(ts, list(map(str.strip, codes)), prices, lines, bad, volumes=volumes)

    def _jsonl(self, handle: IO[bytes]) -> Iterator[TickColumns]:
        for records, lines, bad in self._json_records(handle, TickRecord):
            volumes = [r.volume for r in records]
            yield self._columns(
                [r.ts for r in records],
                [r.security for r in records],
                [str(r.price) for r in records],
                lines,
                bad,
                volumes=None
                if volumes.count(None) == len(volumes)
                else ["" if v is None else str(v).strip() for v in volumes],
            )

    def _columns(
        self,
        ts: Sequence[int | str],
        codes: list[str],
        prices: list[str],
        lines: list[int],
        bad: BadRows,
        *,
        volumes: list[str] | None,
    ) -> TickColumns:
        """The usable rows as columns; ``volumes`` are stripped cells ("" for none) or None."""
        self.stats.rows += len(ts) + len(bad)
        stamps = parse_timestamps(ts)
        security = self.universe.security_ids(codes)
        price = parse_floats(prices)
        reasons = screen_ticks(self.universe.n_securities, security, price)
        reasons[stamps < 0] = RejectReason.BAD_TIMESTAMP
        if volumes is not None and volumes.count("") == len(volumes):
            volumes = None
        ticks = TickColumns(
            stamps,
            security,
            price,
            origin=_line_numbers(lines),
            volume=None if volumes is None else parse_floats(volumes),
        )
        blank = None if volumes is None else np.array(volumes) == ""
        if reasons.any() or bad:
            unknown = np.flatnonzero(reasons == RejectReason.UNKNOWN_SECURITY).tolist()
            self.stats.unknown_codes.update(codes[position] for position in unknown)
            shown = {RejectReason.BAD_TIMESTAMP: ts, RejectReason.UNKNOWN_SECURITY: codes}
            self.stats.note_chunk(
                reasons,
                lines,
                bad,
                undecodable=RejectReason.UNDECODABLE,
                shown=shown,
                others=prices,
            )
            accepted = reasons == RejectReason.ACCEPTED
            ticks = ticks.take(accepted)
            blank = None if blank is None else blank[accepted]
        return self.stats.screen_volumes(ticks, blank)


def _line_numbers(lines: list[int]) -> NDArray[np.int64]:
    """``lines`` as an array; a run without gaps (the usual chunk) without reading the list."""
    if lines and lines[-1] - lines[0] == len(lines) - 1:
        return np.arange(lines[0], lines[0] + len(lines), dtype=np.int64)
    return np.array(lines, dtype=np.int64)
