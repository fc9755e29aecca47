"""``tickindex.replay``: a tick file or in-memory ticks through ``run_replay``, levels (and the
bars and analytics records when asked) returned in memory."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from os import PathLike, fspath
from typing import TYPE_CHECKING

from engine.analytics.records import AnalyticsRecord
from engine.kernel.columns import TickColumns
from engine.pipeline.chain import LevelSink
from engine.refdata.universe import Universe
from engine.wire import Tick, TickBatch
from producers.tick_readers import open_tick_file
from producers.tickfile import ReadStats
from tickindex.frames import AnalyticsKind, Bars
from tickindex.levels import LevelCollector, Levels
from tickindex.reference_data import load_universe
from tickindex.replay_outputs import output_files
from tickindex.replaying import OpenTicks, ReplaySettings, run_replay
from tickindex.tick_input import tick_columns

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["MEMORY_BATCH_TICKS", "ReplayResult", "Ticks", "replay", "tick_opener"]

Ticks = str | PathLike[str] | TickBatch | Iterable[tuple[int, str, float] | Tick]
"""Ticks to replay: a tick file, a ``TickBatch`` of columns, or ticks one by one."""
MEMORY_BATCH_TICKS = 65_536


@dataclass(frozen=True)
class ReplayResult:
    """The levels of a replay and what it did with the ticks.

    Attributes
    ----------
    levels : Levels
        Every level in tick order (conflated when asked), keyed by index and security code.
    ticks_read : int
        Ticks given (rows of a tick file).
    ticks_applied : int
        Ticks the engine applied.
    skipped : dict of str to int
        Ticks not applied, by reason (``unknown_security``, ``non_positive_price``, ...).
    events_applied : int
        Maintenance events applied.
    events_failed : tuple of str
        Events that could not be applied, each as ``SOURCE: event at EFFECTIVE: error``.
    summary : tuple of str
        The summary ``tickindex replay`` prints, one fact a line.
    bars : Bars, optional
        Daily OHLC bars per index, when asked for (``ohlc=True``).
    analytics : tuple of analytics records
        ``IndexAnalytics``, ``PairAnalytics`` and ``SignalEvent`` records in order, when asked
        for (``analytics=``); see ``analytics_table``.
    """

    levels: Levels
    ticks_read: int
    ticks_applied: int
    skipped: dict[str, int]
    events_applied: int
    events_failed: tuple[str, ...]
    summary: tuple[str, ...]
    bars: Bars | None = None
    analytics: tuple[AnalyticsRecord, ...] = ()

    def analytics_table(self, kind: AnalyticsKind = "index") -> pa.Table:
        """The analytics records of one kind as an Arrow table (``.to_pandas()`` for pandas,
        ``polars.from_arrow`` for polars).

        Parameters
        ----------
        kind : {"index", "pair", "signal"}
            Index figures, pair figures or signal events.

        Returns
        -------
        pyarrow.Table
            One row per record, one column per field (``tickindex.arrow_tables``).
        """
        from tickindex.arrow_tables import analytics_table  # noqa: PLC0415

        return analytics_table(self.analytics, kind)


def replay(
    ticks: Ticks,
    *,
    indices: str | PathLike[str] | None = None,
    composition: str | PathLike[str] | None = None,
    events: str | PathLike[str] | None = None,
    conflate_ms: int | None = None,
    ohlc: bool = False,
    analytics: bool | str | PathLike[str] = False,
) -> ReplayResult:
    """Historical ticks through the engine: the levels ``tickindex replay`` writes, in memory.

    Ticks that cannot be applied (an unknown security code, a bad price; for a file also a bad
    timestamp or a malformed row) are skipped and counted in ``skipped``, as the command does;
    they never stop the replay.

    Parameters
    ----------
    ticks : path, TickBatch or iterable of (int, str, float) or Tick
        A tick file (CSV or JSON Lines with ``ts,security,price``, optionally gzipped or zstd;
        Parquet or Arrow IPC with those columns), a
        ``TickBatch`` of columns, or ticks one by one as ``(ts_event, security, price)`` tuples
        or ``Tick`` messages; event times are integer nanoseconds since the epoch.
    indices, composition : str or path-like, optional
        Reference data files; neither: the built-in Hang Seng family (``load_universe``).
    events : str or path-like, optional
        Maintenance events file (JSON Lines or CSV), applied at their effective times.
    conflate_ms : int, optional
        At most one level per index per this many milliseconds of event time.
    ohlc : bool
        Also the daily OHLC bars (``bars``); the replay then follows HKEX trading sessions,
        as ``tickindex replay --ohlc`` does (ticks outside them are skipped).
    analytics : bool, str or path-like
        Also the analytics records (``analytics``): True for the default settings, or a
        settings file (``tickindex replay --analytics-config``); sessions as with ``ohlc``.

    Returns
    -------
    ReplayResult
        The levels, bitwise those of ``tickindex replay`` on the same ticks.

    Raises
    ------
    ReferenceDataError
        When a reference or events file is unusable (``FILE:LINE: problem``).
    InputFileError
        When the tick file cannot be read at all.
    TypeError
        When in-memory times are not integers, codes not strings or prices not numbers.
    ValueError
        When ``conflate_ms`` is not positive, or only one reference file is given.
    """
    universe = load_universe(indices, composition)
    collectors: list[LevelCollector] = []

    def collect(
        index_codes: Sequence[str], security_codes: Sequence[str]
    ) -> AbstractContextManager[LevelSink]:
        collectors.append(LevelCollector(index_codes, security_codes))
        return nullcontext(collectors[-1])

    with output_files(ohlc, analytics) as outputs:
        settings = ReplaySettings(
            events=None if events is None else fspath(events),
            conflate_ms=conflate_ms,
            ohlc=outputs.ohlc,
            analytics=outputs.analytics,
            analytics_config=outputs.analytics_config,
        )
        report = run_replay(universe, tick_opener(ticks), collect, settings)
        bars, records = outputs.bars(), outputs.records()
    stats = report.pipeline
    return ReplayResult(
        levels=collectors[-1].take(),
        ticks_read=report.read.rows,
        ticks_applied=stats.ticks_applied,
        skipped=report.skipped,
        events_applied=stats.events_applied,
        events_failed=tuple(str(failure) for failure in stats.events_failed),
        summary=tuple(report.lines()),
        bars=bars,
        analytics=records,
    )


def tick_opener(ticks: Ticks) -> OpenTicks:
    """How to read ``ticks`` once the universe is known."""
    if isinstance(ticks, str | PathLike):
        path = fspath(ticks)
        return lambda universe: open_tick_file(path, universe)
    if isinstance(ticks, TickBatch):
        columns = (ticks.ts_event, ticks.security, ticks.price)
    else:
        rows = [(t.ts_event, t.security, t.price) if isinstance(t, Tick) else t for t in ticks]
        columns = ([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])
    return lambda universe: _MemoryTicks(universe, *columns)


class _MemoryTicks:
    """In-memory ticks as batches; unknown codes go on as id -1 for the engine to reject."""

    def __init__(
        self, universe: Universe, ts_event: list[int], security: list[str], price: list[float]
    ) -> None:
        self.ticks, codes = tick_columns(universe, ts_event, security, price)
        self.stats = ReadStats(rows=len(self.ticks))
        self.stats.unknown_codes.update(codes[self.ticks.security < 0].tolist())

    def __iter__(self) -> Iterator[TickColumns]:
        for start in range(0, len(self.ticks), MEMORY_BATCH_TICKS):
            yield self.ticks.slice(start, start + MEMORY_BATCH_TICKS)
