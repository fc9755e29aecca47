"""FX tick files and currency variant files, and the replay glue that merges FX into levels.

FX tick files are CSV with a header containing ``ts,pair,rate`` in any order (extra columns
ignored) or JSON Lines with the same keys, either optionally gzipped. ``ts`` is integer
nanoseconds since the epoch or ISO-8601 with offset; ``pair`` is e.g. ``HKDUSD`` (``HKD/USD``
and lower case are accepted) and ``rate`` units of the variant currency per unit of the index
currency. Rows that cannot be used (wrong number of columns, bad JSON, bad timestamp, a pair no
variant uses, a rate that is not a number in (0, 1e12]) are skipped, counted and reported as
``FILE:LINE: reason: detail``; with ``strict=True`` the first one raises ``InputFileError``.

Variants file: CSV ``index,base_index,currency,fx_pair,prev_close_level,fx_prev_close``, e.g.
``HSI_USD,HSI,USD,HKDUSD,3315.3,0.1285``; problems stop with ``file:line: problem``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import IO, TextIO

import msgspec
import numpy as np
from numpy.typing import NDArray

from engine.columns import LevelColumns
from engine.conflation import Conflator
from engine.currency import (
    CurrencyTranslator,
    CurrencyVariant,
    FxColumns,
    FxRejectReason,
    normalise_pair,
)
from engine.errors import ReferenceDataError
from engine.pipeline import LevelSink
from engine.reference_data import MAX_LEVEL, _bounded, _rows
from engine.timestamps import parse_timestamps
from producers.chunked_file import BadRows, ChunkedFileReader, ProgressCallback
from producers.reject_log import RejectLog, short

REQUIRED_COLUMNS = ("ts", "pair", "rate")
VARIANTS_HEADER = (
    *("index", "base_index", "currency", "fx_pair"),
    *("prev_close_level", "fx_prev_close"),
)
MAX_FX_RATE = 1e12
_NEVER = int(np.iinfo(np.int64).min)
_NO_TIMES = np.empty(0, dtype=np.int64)


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


def concat_fx(parts: Sequence[FxColumns]) -> FxColumns:
    """Join FX batches in order; ``origin`` survives only if every part has it."""
    if not parts:
        return FxColumns.empty()
    origins = [p.origin for p in parts if p.origin is not None]
    return FxColumns(
        np.concatenate([p.ts_event for p in parts]),
        np.concatenate([p.pair for p in parts]),
        np.concatenate([p.rate for p in parts]),
        np.concatenate(origins) if len(origins) == len(parts) else None,
    )


class FxFeed:
    """FX batches (e.g. an ``FxFileReader``) handed out in time slices that follow base levels.

    The feed's clock is the running maximum of the ticks' timestamps, so a slice is always a
    prefix of what is left; it reads ahead at most one batch past the requested time.

    Parameters
    ----------
    batches : iterable of FxColumns
        FX ticks in event order.
    """

    def __init__(self, batches: Iterable[FxColumns]) -> None:
        self._batches = iter(batches)
        self._held: list[FxColumns] = []
        self._held_clock: list[NDArray[np.int64]] = []
        self._clock = _NEVER
        self._until = _NEVER
        self._exhausted = False

    def take_until(self, ts: int) -> FxColumns:
        """FX ticks not taken yet with event time at or before ``ts`` (never less than before)."""
        self._until = max(self._until, ts)
        while not self._exhausted and self._clock <= self._until:
            batch = next(self._batches, None)
            if batch is None:
                self._exhausted = True
                break
            clock = np.maximum.accumulate(np.maximum(batch.ts_event, self._clock))
            self._clock = int(clock[-1]) if clock.size else self._clock
            self._held.append(batch)
            self._held_clock.append(clock)
        held, clock = concat_fx(self._held), np.concatenate([_NO_TIMES, *self._held_clock])
        cut = int(np.searchsorted(clock, self._until, "right"))
        self._held, self._held_clock = [held.take(slice(cut, None))], [clock[cut:]]
        return held.take(slice(0, cut))

    def rest(self) -> FxColumns:
        """Every FX tick not taken yet (end of stream)."""
        remaining = [*self._held, *self._batches]
        self._held, self._held_clock, self._exhausted = [], [], True
        return concat_fx(remaining)


class CurrencySink:
    """A ``LevelSink`` that passes base levels on with their currency variants merged in.

    Each batch of base levels takes the FX ticks up to its latest event time from the feed;
    ``close()`` translates the FX ticks left after the last base level.

    Parameters
    ----------
    translator : CurrencyTranslator
        Makes the variant levels.
    sink : LevelSink
        Receives base and variant levels as one stream in event-time order.
    fx : FxFeed
        The FX ticks.
    conflate_ns : int, optional
        Conflate the merged stream (the pipeline must then not conflate).
    """

    def __init__(
        self,
        translator: CurrencyTranslator,
        sink: LevelSink,
        fx: FxFeed,
        *,
        conflate_ns: int | None = None,
    ) -> None:
        self.translator = translator
        self.sink = sink
        self.fx = fx
        self.conflator = Conflator(conflate_ns) if conflate_ns is not None else None
        self.levels_out = 0

    def write(self, levels: LevelColumns) -> None:
        """Take one batch of base levels (tick order, unconflated)."""
        if len(levels):
            fx = self.fx.take_until(int(levels.ts_event.max()))
            self._publish(self.translator.translate_merged(levels, fx))

    def close(self) -> None:
        """End of stream: translate the FX ticks left, release conflated levels."""
        self._publish(self.translator.translate_merged(LevelColumns.empty(), self.fx.rest()))
        if self.conflator is not None:
            self._deliver(self.conflator.flush())

    def _publish(self, levels: LevelColumns) -> None:
        self._deliver(self.conflator.push(levels) if self.conflator is not None else levels)

    def _deliver(self, levels: LevelColumns) -> None:
        if len(levels):
            self.levels_out += len(levels)
            self.sink.write(levels)


def load_variants(
    path: str | Path, index_codes: Sequence[str] | None = None
) -> list[CurrencyVariant]:
    """Read a variants file (CSV, header ``VARIANTS_HEADER``, extra columns after it ignored).

    Parameters
    ----------
    path : str or Path
        The CSV file.
    index_codes : sequence of str, optional
        The universe's index codes, to check ``base_index`` and code clashes line by line.

    Returns
    -------
    list of CurrencyVariant

    Raises
    ------
    ReferenceDataError
        Naming file, line and problem (duplicate or clashing code, unknown base index,
        non-positive close, a pair not quoting the variant currency, ...).
    """
    where = Path(path)
    known = set(index_codes or ())
    seen: dict[str, int] = {}
    out = []
    for line, row in _rows(where, VARIANTS_HEADER):
        code, base, currency = row["index"], row["base_index"], row["currency"].upper()
        pair = normalise_pair(row["fx_pair"])
        problem = None
        if not (code and base and currency and pair):
            problem = "index, base_index, currency and fx_pair must not be empty"
        elif code in seen:
            problem = f"duplicate index {code} (first on line {seen[code]})"
        elif code in known:
            problem = f"index {code} is already an index of the universe"
        elif index_codes is not None and base not in known:
            problem = f"unknown base_index {base}"
        elif not pair.endswith(currency):
            problem = f"fx_pair {pair} must quote {currency} per unit of the index currency"
        if problem is not None:
            raise ReferenceDataError(str(where), line, problem)
        seen[code] = line
        level = _bounded(where, line, "prev_close_level", row["prev_close_level"], MAX_LEVEL)
        rate = _bounded(where, line, "fx_prev_close", row["fx_prev_close"], MAX_FX_RATE)
        out.append(CurrencyVariant(code, base, currency, pair, level, rate))
    return out
