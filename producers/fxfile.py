"""FX tick files read as column batches.

FX tick files are CSV with a header containing ``ts,pair,rate`` in any order (extra columns
ignored) or JSON Lines with the same keys, either optionally gzipped. ``ts`` is integer
nanoseconds since the epoch or ISO-8601 with offset; ``pair`` is e.g. ``HKDUSD`` (``HKD/USD``
and lower case are accepted) and ``rate`` units of the variant currency per unit of the index
currency. Rows that cannot be used (wrong number of columns, bad JSON, bad timestamp, a pair no
variant uses, a rate that is not a number in (0, 1e12]) are skipped, counted and reported as
``FILE:LINE: reason: detail``; with ``strict=True`` the first one raises ``InputFileError``.
Rows it passes on can still be rejected by the currency step (a rate outside [1e-9, 1e9]:
``rate_out_of_range``, ``engine.currency.fx_ticks``); ``tickindex replay`` reports those by
line too (``producers.reject_log.FxLineRejects``, through ``origin``).

"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TextIO

import msgspec
import numpy as np

from engine.core.bounds import MAX_FX_RATE
from engine.core.timestamps import parse_timestamps
from engine.currency.translator import (
    CurrencyTranslator,
    FxColumns,
    FxRejectReason,
    normalise_pair,
)
from engine.pipeline.fx_merge import FxFeed
from producers.chunked_file import (
    BadRows,
    ChunkedFileReader,
    ProgressCallback,
    RowStats,
    parse_floats,
)

REQUIRED_COLUMNS = ("ts", "pair", "rate")


class FxRecord(msgspec.Struct, frozen=True):
    """One FX tick of a JSON Lines file; unknown keys are ignored."""

    ts: int | str
    pair: str
    rate: float | str


@dataclass
class FxReadStats(RowStats[FxRejectReason]):
    """What a reader saw: rows read, rows skipped by reason, unknown pairs."""

    unknown_pairs: Counter[str] = field(default_factory=Counter)


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
        for (ts, pairs, rates), lines, bad in self._csv_columns(handle, REQUIRED_COLUMNS):
            yield self._columns(ts, pairs, rates, lines, bad)

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
        rate = parse_floats(rates)
        reasons = np.zeros(len(ts), dtype=np.uint8)
        reasons[~(rate > 0.0)] = FxRejectReason.NON_POSITIVE_RATE
        reasons[rate > MAX_FX_RATE] = FxRejectReason.RATE_OUT_OF_RANGE
        reasons[~np.isfinite(rate)] = FxRejectReason.NON_FINITE_RATE
        reasons[pair < 0] = FxRejectReason.UNKNOWN_PAIR
        reasons[stamps < 0] = FxRejectReason.BAD_TIMESTAMP
        unknown = np.flatnonzero(reasons == FxRejectReason.UNKNOWN_PAIR).tolist()
        self.stats.unknown_pairs.update(normalise_pair(pairs[position]) for position in unknown)
        shown = {FxRejectReason.BAD_TIMESTAMP: ts, FxRejectReason.UNKNOWN_PAIR: pairs}
        self.stats.note_chunk(
            reasons, lines, bad, undecodable=FxRejectReason.UNDECODABLE, shown=shown, others=rates
        )
        good = reasons == FxRejectReason.ACCEPTED
        origin = np.array(lines, dtype=np.int64)
        return FxColumns(stamps, pair, rate, origin).take(good)


class FxFileFeed(FxFeed):
    """The ``FxFeed`` of an FX file, whose skipped rows are reported in line order.

    The file's log is held (``RejectLog.hold``): the rows the reader skips and those the
    currency step rejects (``FxLineRejects``) go out together, up to the last row handed out,
    at the next hand-out (the translator has taken that row in by then). ``release()`` sends
    the rest at the end.

    Parameters
    ----------
    reader : FxFileReader
        The FX file.
    """

    def __init__(self, reader: FxFileReader) -> None:
        super().__init__(reader)
        self.log = reader.rejects
        self.log.hold()
        self._through = 0

    def take_until(self, ts: int) -> FxColumns:
        """``FxFeed.take_until``, after the lines of the rows handed out before go out."""
        self.log.release(self._through)
        fx = super().take_until(ts)
        if len(fx) and fx.origin is not None:
            self._through = int(fx.origin[-1])
        return fx

    def release(self) -> None:
        """End of the replay: every held line goes out, in line order."""
        self.log.release()
