"""FX tick files read as column batches.

FX tick files are CSV with a header containing ``ts,pair,rate`` in any order (extra columns
ignored) or JSON Lines with the same keys, either optionally gzipped. ``ts`` is integer
nanoseconds since the epoch or ISO-8601 with offset; ``pair`` is e.g. ``HKDUSD`` (``HKD/USD``
and lower case are accepted) and ``rate`` units of the variant currency per unit of the index
currency. Rows that cannot be used (wrong number of columns, bad JSON, bad timestamp, a pair no
variant uses, a rate that is not a number in (0, 1e12]) are skipped, counted and reported as
``FILE:LINE: reason: detail``; with ``strict=True`` the first one raises ``InputFileError``.

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
from numpy.typing import NDArray

from engine.core.bounds import MAX_FX_RATE
from engine.core.timestamps import parse_timestamps
from engine.currency.translator import (
    CurrencyTranslator,
    FxColumns,
    FxRejectReason,
    normalise_pair,
)
from producers.chunked_file import BadRows, ChunkedFileReader, ProgressCallback
from producers.reject_log import RejectLog, short

REQUIRED_COLUMNS = ("ts", "pair", "rate")


class FxRecord(msgspec.Struct, frozen=True):
    """One FX tick of a JSON Lines file; unknown keys are ignored."""

    ts: int | str
    pair: str
    rate: float | str


@dataclass
class FxReadStats:
    """What a reader saw: rows read, rows skipped by reason, unknown pairs.

    ``rows`` counts every non-blank data line; ``used == rows - sum(skipped.values())``.
    """

    rows: int = 0
    skipped: Counter[FxRejectReason] = field(default_factory=Counter)
    unknown_pairs: Counter[str] = field(default_factory=Counter)
    log: RejectLog = field(default_factory=lambda: RejectLog("-"))

    @property
    def used(self) -> int:
        """Rows passed on as FX ticks."""
        return self.rows - sum(self.skipped.values())

    def note(self, reason: FxRejectReason, line: int, detail: str) -> None:
        """Count one skipped row and report it (raises in strict mode)."""
        self.log.note(line, reason.label, detail)
        self.skipped[reason] += 1


class FxFileReader(ChunkedFileReader[FxColumns]):
    """Iterates an FX tick file as ``FxColumns`` batches of roughly ``chunk_bytes`` each.

    Parameters
    ----------
    path : str or Path
        The file; ``.csv``, ``.jsonl`` or ``.ndjson``, optionally ``.gz``.
    translator : CurrencyTranslator
        Resolves pair names to ids (``pair_ids``); ticks of pairs no variant uses are skipped.
    chunk_bytes : int
        Approximate bytes of input per batch.
    progress : callable, optional
        Called as ``progress(bytes_done, bytes_total)`` after each batch.
    strict : bool
        The first row that cannot be used raises ``InputFileError`` (default: skip it).
    rejects : text stream, optional
        Receives a ``FILE:LINE: reason: detail`` line per skipped row.

    Notes
    -----
    ``origin`` of each tick is its line number in the file.
    """

    what = "FX"

    def __init__(
        self,
        path: str | Path,
        translator: CurrencyTranslator,
        *,
        chunk_bytes: int = 1 << 20,
        progress: ProgressCallback | None = None,
        strict: bool = False,
        rejects: TextIO | None = None,
    ) -> None:
        super().__init__(
            path, chunk_bytes=chunk_bytes, progress=progress, strict=strict, rejects=rejects
        )
        self.translator = translator
        self.stats = FxReadStats(log=self.rejects)

    def _csv(self, handle: IO[bytes]) -> Iterator[FxColumns]:
        header = self._csv_header(handle, REQUIRED_COLUMNS)
        ts_col, pair_col, rate_col = (header.index(name) for name in REQUIRED_COLUMNS)
        for rows, lines, bad in self._csv_rows(handle, len(header)):
            yield self._columns(
                list(map(itemgetter(ts_col), rows)),
                list(map(itemgetter(pair_col), rows)),
                list(map(itemgetter(rate_col), rows)),
                lines,
                bad,
            )

    def _jsonl(self, handle: IO[bytes]) -> Iterator[FxColumns]:
        for records, lines, bad in self._json_records(handle, FxRecord):
            yield self._columns(
                [r.ts for r in records],
                [r.pair for r in records],
                [r.rate for r in records],
                lines,
                bad,
            )

    def _columns(
        self,
        ts: Sequence[int | str],
        pairs: list[str],
        rates: Sequence[float | str],
        lines: list[int],
        bad: BadRows,
    ) -> FxColumns:
        self.stats.rows += len(ts) + len(bad)
        stamps = parse_timestamps(ts)
        pair = self.translator.pair_ids(pairs)
        rate = _parse_rates(rates)
        reasons = np.zeros(len(ts), dtype=np.uint8)
        reasons[~(rate > 0.0)] = FxRejectReason.NON_POSITIVE_RATE
        reasons[~np.isfinite(rate) | (rate > MAX_FX_RATE)] = FxRejectReason.NON_FINITE_RATE
        reasons[pair < 0] = FxRejectReason.UNKNOWN_PAIR
        reasons[stamps < 0] = FxRejectReason.BAD_TIMESTAMP
        shown: dict[FxRejectReason, Sequence[object]] = {
            FxRejectReason.BAD_TIMESTAMP: ts,
            FxRejectReason.UNKNOWN_PAIR: pairs,
        }
        skipped = [(number, FxRejectReason.UNDECODABLE, problem) for number, problem in bad]
        for position in np.flatnonzero(reasons).tolist():
            reason = FxRejectReason(int(reasons[position]))
            skipped.append((lines[position], reason, short(shown.get(reason, rates)[position])))
            if reason is FxRejectReason.UNKNOWN_PAIR:
                self.stats.unknown_pairs[normalise_pair(pairs[position])] += 1
        for number, reason, detail in sorted(skipped, key=lambda item: item[0]):
            self.stats.note(reason, number, detail)
        good = reasons == FxRejectReason.ACCEPTED
        origin = np.array(lines, dtype=np.int64)
        return FxColumns(stamps, pair, rate, origin).take(good)


def _parse_rates(values: Sequence[float | str]) -> NDArray[np.float64]:
    """Floats; text that is not a number becomes NaN (then skipped as a non-finite rate)."""
    try:
        return np.array(values, dtype=np.float64)
    except (ValueError, OverflowError):
        out = np.empty(len(values), dtype=np.float64)
        for position, value in enumerate(values):
            try:
                out[position] = float(value)
            except (ValueError, OverflowError):
                out[position] = np.nan
        return out
