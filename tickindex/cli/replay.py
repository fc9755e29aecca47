"""``tickindex replay``: a historical tick file straight through the engine to a level file."""

from __future__ import annotations

import argparse
import csv
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from consumers.auditfile import AuditFileWriter
from consumers.barsfile import BarsFileWriter
from consumers.levelfile import LevelFileWriter
from consumers.progress import ProgressBar
from engine.calendar.sessions import TradingCalendar
from engine.core.errors import ReferenceDataError, TickIndexError, TickInputError
from engine.currency.translator import CurrencyTranslator
from engine.currency.variant_files import load_variants
from engine.kernel.calculator import IndexCalculator
from engine.kernel.screening import RejectReason
from engine.maintenance.event_files import load_sourced_events
from engine.maintenance.event_queue import PendingEvent
from engine.maintenance.events import securities_named
from engine.pipeline.chain import IndexPipeline, LevelSink, PipelineStats
from engine.pipeline.fx_merge import CurrencySink, FxFeed
from engine.pipeline.trading_day import SessionDriver
from engine.refdata.reference_text import read_reference_text
from producers.fxfile import FxFileReader, FxReadStats
from producers.reject_log import clip
from producers.tickfile import ReadStats, TickFileReader
from tickindex.cli.command import Subcommands, add_command
from tickindex.cli.common import (
    BAD_ROWS_HELP,
    add_bad_row_arguments,
    add_progress_arguments,
    add_universe_arguments,
    rejects_file,
    universe_from_args,
)


def register(subcommands: Subcommands) -> None:
    """Add the ``replay`` sub-command."""
    parser = add_command(
        subcommands,
        "replay",
        summary="replay a tick file through the engine into a level file",
        description="Replay historical ticks (CSV or JSON Lines, optionally .gz) offline and "
        "write one level per (tick, affected index) in tick order. " + BAD_ROWS_HELP,
        examples=[
            (
                "the built-in Hang Seng family, every level to a CSV file",
                "tickindex replay --ticks ticks.csv.gz --out levels.csv",
            ),
            (
                "with maintenance events, trading sessions and daily OHLC bars",
                "tickindex replay --ticks ticks.csv --out levels.jsonl --events events.jsonl "
                "--ohlc bars.csv",
            ),
        ],
        handler=replay_command,
    )
    add_universe_arguments(parser)
    add_bad_row_arguments(parser)
    parser.add_argument(
        "--ticks",
        required=True,
        metavar="FILE",
        help="the tick file to replay: header ts,security,price (.csv/.jsonl, optionally .gz)",
    )
    parser.add_argument(
        "--out",
        required=True,
        metavar="FILE",
        help="level file to write (.csv or .jsonl), - for standard output",
    )
    parser.add_argument(
        "--events",
        metavar="FILE",
        help="maintenance events file (.jsonl or .csv), each applied at its effective time",
    )
    parser.add_argument(
        "--audit", metavar="FILE", help="write every divisor change to this CSV file"
    )
    parser.add_argument(
        "--fx",
        metavar="FILE",
        help="FX tick file (ts,pair,rate) for the currency variants of --variants",
    )
    parser.add_argument(
        "--variants",
        metavar="FILE",
        help="currency variants CSV: index,base_index,currency,fx_pair,prev_close_level,"
        "fx_prev_close; each variant's levels are written too (needs --fx)",
    )
    parser.add_argument(
        "--sessions",
        action="store_true",
        help="HKEX trading sessions: reject ticks outside them, keep daily OHLC, roll each day",
    )
    parser.add_argument(
        "--calendar",
        metavar="FILE",
        help="holidays and half days, CSV date,kind (implies --sessions)",
    )
    parser.add_argument(
        "--ohlc", metavar="FILE", help="write daily OHLC bars to this CSV (implies --sessions)"
    )
    parser.add_argument(
        "--eod-dir",
        metavar="DIR",
        help="at each day's close write the next day's indices.csv and composition.csv into "
        "DIR/<next trading day>/ (implies --sessions)",
    )
    parser.add_argument(
        "--conflate-ms",
        type=_positive_int,
        default=None,
        metavar="N",
        help="write at most one level per index per N ms of event time (Hang Seng: 2000; "
        "default: every level)",
    )
    add_progress_arguments(parser)


def _positive_int(text: str) -> int:
    value = int(text)
    if not 0 < value <= MAX_CONFLATE_MS:
        raise argparse.ArgumentTypeError(f"must be a positive number of milliseconds, got {text}")
    return value


MAX_CONFLATE_MS = 366 * 86_400_000


@dataclass(frozen=True)
class ReplayReport:
    """What one replay did."""

    read: ReadStats
    pipeline: PipelineStats
    elapsed_s: float
    fx: FxReadStats | None = None

    def lines(self) -> list[str]:
        """Human-readable summary, one fact a line: read = applied + skipped."""
        p = self.pipeline
        rate = p.ticks_in / self.elapsed_s if self.elapsed_s > 0 else 0.0
        out = [
            f"ticks read {self.read.rows}, applied {p.ticks_applied}, "
            f"skipped {sum(self.read.skipped.values()) + p.ticks_rejected}; "
            f"levels written {p.levels_out}; {self.elapsed_s:.2f} s ({rate:,.0f} ticks/s)"
        ]
        skipped = self.read.skipped + p.rejected
        for reason, count in sorted(skipped.items()):
            detail = ""
            if reason is RejectReason.UNKNOWN_SECURITY:
                top = ", ".join(clip(c) for c, _ in self.read.unknown_codes.most_common(5))
                detail = f" (codes: {top})"
            out.append(f"  skipped {count} {reason.label}{detail}")
        out.extend(f"  {line}" for line in self.read.log.summary())
        if self.fx is not None:
            fx = self.fx
            out.append(
                f"FX rows read {fx.rows}, used {fx.used}, skipped {sum(fx.skipped.values())}"
            )
            out.extend(f"  skipped {n} {r.label}" for r, n in sorted(fx.skipped.items()))
            out.extend(f"  {line}" for line in fx.log.summary())
        if p.events_applied or p.events_failed:
            out.append(f"events applied {p.events_applied}, failed {len(p.events_failed)}")
            out.extend(f"  failed: {failure}" for failure in p.events_failed)
        return out


def replay_command(args: argparse.Namespace) -> int:
    """Run a replay from parsed arguments; exit code 0 even when ticks were skipped (2 when
    ``--strict`` and a row is bad, or a file cannot be read)."""
    with rejects_file(args.rejects) as rejects:
        return _replay(args, rejects)


def _load_events(path: str) -> list[PendingEvent]:
    """The events file, every problem naming the file (and line where the reader knows it)."""
    read_reference_text(Path(path))  # a file that is not UTF-8 fails here, naming the line
    try:
        return load_sourced_events(path)
    except TickIndexError:
        raise
    except (ValueError, OverflowError, RecursionError, csv.Error) as exc:
        raise ReferenceDataError(path, None, f"unreadable events file: {exc}") from None


def _replay(args: argparse.Namespace, rejects: TextIO | None) -> int:
    universe = universe_from_args(args)
    events = _load_events(args.events) if args.events else []
    named = [code for pending in events for code in securities_named(pending.event)]
    universe = universe.with_securities(named)
    show_progress = sys.stderr.isatty() if args.progress is None else args.progress
    bar = ProgressBar("replay") if show_progress else None
    reader = TickFileReader(args.ticks, universe, progress=bar, strict=args.strict, rejects=rejects)
    fx_reader: FxFileReader | None = None
    conflate_ns = args.conflate_ms * 1_000_000 if args.conflate_ms is not None else None
    started = time.perf_counter()
    if (args.fx is None) != (args.variants is None):
        raise TickInputError("--fx and --variants go together")
    with ExitStack() as stack:
        audit = stack.enter_context(AuditFileWriter(args.audit)) if args.audit else None
        sink: LevelSink
        currency: CurrencySink | None = None
        if args.variants:
            variants = load_variants(args.variants, universe.index_codes)
            translator = CurrencyTranslator(
                variants, universe.index_codes, [s.prev_close_level for s in universe.indices]
            )
            writer = stack.enter_context(
                LevelFileWriter(
                    args.out,
                    universe,
                    index_codes=translator.index_codes,
                    security_codes=translator.level_security_codes(universe.securities),
                )
            )
            fx_reader = FxFileReader(args.fx, translator, strict=args.strict, rejects=rejects)
            feed = FxFeed(fx_reader)
            # Variants need every base level: conflation moves behind the translation.
            currency = CurrencySink(translator, writer, feed, conflate_ns=conflate_ns)
            sink, conflate_ns = currency, None
        else:
            sink = writer = stack.enter_context(LevelFileWriter(args.out, universe))
        pipeline = IndexPipeline(
            IndexCalculator(universe), sink, conflate_ns=conflate_ns, audit=audit
        )
        pipeline.schedule(events)
        if args.sessions or args.calendar or args.ohlc or args.eod_dir:
            calendar = (
                TradingCalendar.from_csv(args.calendar) if args.calendar else TradingCalendar()
            )
            bars = (
                stack.enter_context(BarsFileWriter(args.ohlc, universe.index_codes))
                if args.ohlc
                else None
            )
            driver = SessionDriver(
                pipeline,
                calendar,
                bars=bars,
                eod_dir=Path(args.eod_dir) if args.eod_dir else None,
            )
            stats = driver.run(reader)
            for folder in driver.rolled:
                print(f"next day's files: {folder}", file=sys.stderr)
        else:
            stats = pipeline.run(reader)
        if currency is not None:
            currency.close()
            fx = currency.translator.stats
            print(
                f"currency variants: {fx.levels_out} levels from {fx.fx_applied} FX ticks "
                f"({sum(fx.fx_rejected.values())} FX ticks rejected)",
                file=sys.stderr,
            )
    if bar is not None:
        bar.finish()
    report = ReplayReport(
        reader.stats,
        stats,
        time.perf_counter() - started,
        fx_reader.stats if fx_reader is not None else None,
    )
    for line in report.lines():
        print(line, file=sys.stderr)
    return 0
