"""``tickindex watch``: the live terminal board fed by the level topic.

Levels are read with ``LevelSubscriber`` (read_committed, duplicates dropped by ``(index,
seq)``) and drawn by ``IndexBoard``; index codes are mapped to the universe's indices (the
built-in Hang Seng family unless ``--indices/--composition``), and levels of other indices are
counted and reported.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass

from consumers.board import IndexBoard
from consumers.level_client import LevelSubscriber
from engine.refdata.universe import Universe
from producers.pacing import StopControl
from tickindex.cli.common import (
    add_kafka_arguments,
    add_universe_arguments,
    positive_float,
    universe_from_args,
)
from tickindex.cli.kafka_security import security_from_args

DEFAULT_REFRESH_S = 0.5
POLL_S = 0.2


@dataclass(frozen=True)
class WatchSummary:
    """Totals of one ``watch`` run: levels shown, duplicates dropped, levels of unknown indices."""

    levels: int
    duplicates: int
    unknown: int
    undecodable: int

    def line(self) -> str:
        """One human-readable summary line."""
        return (
            f"tickindex watch: {self.levels:,d} levels, {self.duplicates:,d} duplicates dropped, "
            f"{self.unknown:,d} of unknown indices, {self.undecodable:,d} undecodable"
        )


async def watch_levels(
    subscriber: LevelSubscriber, board: IndexBoard, universe: Universe, stop: StopControl
) -> WatchSummary:
    """Feed the board from the subscriber until ``stop`` says so, then draw it once more.

    Parameters
    ----------
    subscriber : LevelSubscriber
        The level topic (started by its first poll if need be; not closed here).
    board : IndexBoard
        The board; refreshed after every poll (at most ``POLL_S`` apart), so it also redraws
        while no level arrives.
    universe : Universe
        Maps index codes to the board's ids.
    stop : StopControl
        Signal and ``--duration`` budget.

    Returns
    -------
    WatchSummary
        Totals.
    """
    shown = unknown = 0
    while not stop.stopped:
        left = stop.remaining()
        timeout_s = POLL_S if left is None else min(POLL_S, left)
        batch = await subscriber.poll(max(1, round(timeout_s * 1000)))
        columns, missing = batch.to_columns(universe)
        if missing and not unknown:
            print("watch: levels of indices not in the universe are skipped", file=sys.stderr)
        unknown += missing
        shown += len(columns)
        board.write(columns)
        board.refresh()
    board.refresh(force=True)
    stats = subscriber.stats
    return WatchSummary(shown, stats.duplicates, unknown, stats.undecodable)


async def _watch(args: argparse.Namespace, universe: Universe) -> WatchSummary:
    stop = StopControl(args.duration)
    stop.install_signal_handlers()
    board = IndexBoard(universe, sys.stdout, refresh_s=args.refresh)
    subscriber = LevelSubscriber(
        args.bootstrap,
        args.topic,
        wire_format=args.wire_format,
        start="earliest" if args.from_beginning else "latest",
        security=security_from_args(args),
    )
    try:
        await stop.guard(subscriber.start())
        return await watch_levels(subscriber, board, universe, stop)
    finally:
        await subscriber.close()
        stop.remove_signal_handlers()


def watch_command(args: argparse.Namespace) -> int:
    """Handler of ``tickindex watch``; 0 also after Ctrl-C or SIGTERM."""
    universe = universe_from_args(args)
    summary = asyncio.run(_watch(args, universe))
    print(summary.line(), file=sys.stderr, flush=True)
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``watch`` sub-command to the ``tickindex`` parser."""
    parser = subparsers.add_parser(
        "watch",
        help="live board of the index levels published on Kafka",
        description="Show every index of the universe on a live terminal board, fed by the "
        "level topic of the service. Stops after --duration, Ctrl-C or SIGTERM.",
    )
    add_kafka_arguments(parser, topic="index-levels", what="level")
    parser.add_argument(
        "--from-beginning",
        action="store_true",
        help="replay the topic from its first level (default: only new levels)",
    )
    parser.add_argument(
        "--duration",
        type=positive_float,
        metavar="SECONDS",
        help="stop after this many seconds (default: until Ctrl-C)",
    )
    parser.add_argument(
        "--refresh",
        type=positive_float,
        default=DEFAULT_REFRESH_S,
        metavar="SECONDS",
        help=f"board refresh interval (default: {DEFAULT_REFRESH_S})",
    )
    add_universe_arguments(parser)
    parser.set_defaults(handler=watch_command)
