"""``tickindex replay``: a historical tick file straight through the engine to a level file."""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from consumers.level_writers import open_level_writer
from consumers.levelfile import LevelFileWriter
from engine.core.errors import InputFileError
from engine.core.file_formats import columnar_format
from engine.refdata.universe import Universe
from producers.tick_readers import open_tick_file
from producers.tickfile import TickFileReader
from tickindex.cli.command import Subcommands, add_command
from tickindex.cli.common import (
    BAD_ROWS_HELP,
    add_bad_row_arguments,
    add_progress_arguments,
    add_universe_arguments,
    progress_bar,
    rejects_file,
    universe_from_args,
)
from tickindex.index_engine import conflation_ns
from tickindex.replaying import ReplaySettings, run_replay

if TYPE_CHECKING:
    from consumers.columnar_levels import ColumnarLevelWriter
    from producers.columnar_ticks import ColumnarTickReader

REJECTS_SUFFIX = ".rejects"
"""Without ``--rejects``, skipped rows are listed in the output file's name + this suffix."""


def register(subcommands: Subcommands) -> None:
    """Add the ``replay`` sub-command."""
    parser = add_command(
        subcommands,
        "replay",
        summary="replay a tick file through the engine into a level file",
        description="Replay historical ticks (CSV or JSON Lines, optionally .gz or .zst; Parquet; "
        "Arrow IPC .arrow/.feather/.arrows) offline and "
        "write one level per (tick, affected index) in tick order. " + BAD_ROWS_HELP + " "
        "Ticks the engine itself rejects (outside the trading sessions), FX ticks the currency "
        "step rejects (a rate outside [1e-9, 1e9]) and events that fail to apply are reported "
        "by line the same way. Without --rejects, every skipped row is listed in "
        f"OUT{REJECTS_SUFFIX} (written only when a row was skipped; each file's rows in line "
        "order). The summary adds up: ticks read = applied + skipped and FX rows read = "
        "applied + skipped, each reason counted; events read = applied + failed + not reached.",
        examples=[
            (
                "the built-in Hang Seng family, Parquet ticks to Parquet levels (or .csv.gz, "
                ".arrow...)",
                "tickindex replay --ticks ticks.parquet --out levels.parquet",
            ),
            (
                "with maintenance events, daily OHLC bars and analytics records",
                "tickindex replay --ticks ticks.csv --out levels.jsonl --events events.jsonl "
                "--ohlc bars.csv --analytics analytics.jsonl",
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
        help="the tick file to replay: columns ts,security,price[,volume] (.csv/.jsonl, optionally "
        ".gz/.zst; .parquet; .arrow/.feather/.arrows)",
    )
    parser.add_argument(
        "--out",
        required=True,
        metavar="FILE",
        help="level file to write (.csv or .jsonl, optionally .gz; .parquet; .arrow/.feather/"
        ".arrows: zstd, or name the codec: levels.snappy.parquet), - for CSV on standard output",
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
        "DIR/<next trading day>/ (with --analytics also analytics-state.msgpack; implies "
        "--sessions)",
    )
    parser.add_argument(
        "--conflate-ms",
        type=_positive_int,
        default=None,
        metavar="N",
        help="write at most one level per index per N ms of event time (Hang Seng: 2000; "
        "default: every level)",
    )
    parser.add_argument(
        "--analytics",
        metavar="FILE",
        help="write index, pair and signal analytics records (JSON Lines, as on the analytics "
        "topic) at every interval of event time and each session close (implies --sessions)",
    )
    parser.add_argument(
        "--analytics-config",
        metavar="FILE",
        help="analytics settings, TOML or JSON: interval, indices, pairs, signal rules "
        "(e.g. deploy/analytics/smallcap-sleeve.toml); default: every index each second",
    )
    parser.add_argument(
        "--analytics-state",
        metavar="FILE",
        help="start the analytics from this state (the analytics-state.msgpack --eod-dir writes "
        "with --analytics into each next day's folder): rolling windows, turnover averages, "
        "signal states and dated pair bases carry over",
    )
    add_progress_arguments(parser)


def _positive_int(text: str) -> int:
    value = int(text)
    try:
        conflation_ns(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a positive number of milliseconds, got {text}"
        ) from None
    return value


def replay_command(args: argparse.Namespace) -> int:
    """Run a replay from parsed arguments; exit code 0 even when ticks were skipped (2 when
    ``--strict`` and a row is bad, or a file cannot be read)."""
    if args.rejects is not None or args.out == "-":
        with rejects_file(args.rejects) as rejects:
            return _replay(args, rejects, args.rejects)
    path = Path(f"{args.out}{REJECTS_SUFFIX}")
    with rejects_beside_output(path) as rejects:
        return _replay(args, rejects, str(path))


@contextlib.contextmanager
def rejects_beside_output(path: Path) -> Iterator[TextIO]:
    """Rejects spooled to a temporary file and saved as ``path`` when there are any; a
    ``path`` left by an earlier replay is removed when there are none (it would mislead).

    Raises
    ------
    InputFileError
        When ``path`` cannot be written or removed.
    """
    with tempfile.TemporaryFile("w+", encoding="utf-8", errors="backslashreplace") as spool:
        yield spool
        try:
            if spool.tell() == 0:
                path.unlink(missing_ok=True)
                return
            spool.seek(0)
            with path.open("w", encoding="utf-8", errors="backslashreplace") as saved:
                shutil.copyfileobj(spool, saved)
        except OSError as exc:
            raise InputFileError(str(path), None, f"cannot write: {exc.strerror}") from exc


def _replay(args: argparse.Namespace, rejects: TextIO | None, rejects_path: str | None) -> int:
    universe = universe_from_args(args)
    bar = progress_bar(args, "replay", unit="rows" if columnar_format(args.ticks) else "bytes")

    def open_ticks(final: Universe) -> TickFileReader | ColumnarTickReader:
        return open_tick_file(args.ticks, final, progress=bar, strict=args.strict, rejects=rejects)

    def open_levels(
        index_codes: Sequence[str], security_codes: Sequence[str]
    ) -> LevelFileWriter | ColumnarLevelWriter:
        return open_level_writer(
            args.out, universe, index_codes=index_codes, security_codes=security_codes
        )

    # Every setting is the flag of the same name.
    settings = ReplaySettings(**{f.name: getattr(args, f.name) for f in fields(ReplaySettings)})
    report = run_replay(universe, open_ticks, open_levels, settings, rejects=rejects)
    for line in report.notes():
        print(line, file=sys.stderr)
    if bar is not None:
        bar.finish()
    for line in report.lines():
        print(line, file=sys.stderr)
    if rejects_path is not None and report.rows_skipped:
        print(f"every skipped row: {rejects_path}", file=sys.stderr)
    return 0
