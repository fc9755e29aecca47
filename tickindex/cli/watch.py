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
from tickindex.cli.board_options import add_board_arguments, board_from_args, once_duration
from tickindex.cli.command import Subcommands, add_command
from tickindex.cli.common import (
    add_duration_argument,
    add_kafka_arguments,
    add_refresh_argument,
    add_universe_arguments,
    universe_from_args,
)
from tickindex.cli.kafka_clients import level_subscriber, next_levels

ONCE_DURATION_S = 2.0


def register(subcommands: Subcommands) -> None:
    """Add the ``watch`` sub-command to the ``tickindex`` parser."""
    parser = add_command(
        subcommands,
        "watch",
        summary="live board of the index levels published on Kafka",
        description="Show every index of the universe on a live terminal board, fed by the "
        "level topic of the service. Stops after --duration, Ctrl-C or SIGTERM.",
        examples=[
            (
                "the whole topic of a remote broker, for one minute",
                "tickindex watch --bootstrap broker:9092 --from-beginning --duration 60",
            ),
            ("one board of the levels of the next 2 s, for a script", "tickindex watch --once"),
        ],
        handler=watch_command,
    )
    add_kafka_arguments(parser, topic="index-levels", role="Kafka topic to read the levels from")
    parser.add_argument(
        "--from-beginning",
        action="store_true",
        help="replay the topic from its first level (default: only new levels)",
    )
    add_duration_argument(parser)
    add_refresh_argument(parser)
    add_board_arguments(parser, once_duration_s=ONCE_DURATION_S)
    add_universe_arguments(parser)


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
        The board; refreshed after every poll (at most ``kafka_clients.POLL_S`` apart), so it
        also redraws while no level arrives.
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
        batch = await next_levels(subscriber, stop)
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
    stop = StopControl(once_duration(args, ONCE_DURATION_S))
    stop.install_signal_handlers()
    board = board_from_args(args, universe)
    subscriber = level_subscriber(args, start="earliest" if args.from_beginning else "latest")
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
