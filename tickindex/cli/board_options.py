"""The board flags of ``tickindex run`` and ``watch``: width, one frame, stale flag."""

from __future__ import annotations

import argparse
import math
import sys

from consumers.analytics_panel import AnalyticsPanel
from consumers.board import DEFAULT_STALE_AFTER_S, IndexBoard
from consumers.board_layout import MIN_WIDTH
from engine.refdata.universe import Universe
from tickindex.cli.common import positive_float


def board_width(text: str) -> int:
    """``--width``: a whole number of columns, at least ``MIN_WIDTH``."""
    try:
        width = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if width < MIN_WIDTH:
        raise argparse.ArgumentTypeError(f"at least {MIN_WIDTH} columns, not {width}")
    return width


def add_board_arguments(parser: argparse.ArgumentParser, *, once_duration_s: float) -> None:
    """Add ``--width``, ``--once`` and ``--stale-after`` to a board command."""
    parser.add_argument(
        "--width",
        type=board_width,
        metavar="COLUMNS",
        help="draw the board this wide (default: the terminal's width, 80 when standard output "
        f"is not a terminal; at least {MIN_WIDTH}); narrow boards drop columns",
    )
    parser.add_argument(
        "--once",
        action="store_true",
        help="print one whole board at the end and exit, for scripts (stops after --duration, "
        f"by default {once_duration_s:g} s)",
    )
    parser.add_argument(
        "--stale-after",
        type=positive_float,
        default=DEFAULT_STALE_AFTER_S,
        metavar="SECONDS",
        help="flag an index STALE when it has not moved for this much wall time during "
        f"continuous trading (default: {DEFAULT_STALE_AFTER_S:g})",
    )


def once_duration(args: argparse.Namespace, default_s: float) -> float | None:
    """``--duration``, or ``default_s`` with ``--once`` and no ``--duration``."""
    duration: float | None = args.duration
    return default_s if args.once and duration is None else duration


def board_from_args(
    args: argparse.Namespace,
    universe: Universe,
    *,
    panel: AnalyticsPanel | None = None,
    simulated_time: bool = False,
) -> IndexBoard:
    """The board of a command: on standard output, styled by its flags and whether it is a
    terminal (one frame at the end with ``--once``, summary lines when not a terminal)."""
    return IndexBoard(
        universe,
        sys.stdout,
        refresh_s=math.inf if args.once else args.refresh,
        panel=panel,
        simulated_time=simulated_time,
        style="frames" if args.once else None,
        width=args.width,
        stale_after_s=args.stale_after,
    )
