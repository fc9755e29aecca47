"""``tickindex run``: the embedded demo, simulator -> calculator -> live board, in real time."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from consumers.board import IndexBoard
from engine.kernel.calculator import IndexCalculator
from engine.pipeline.chain import IndexPipeline
from engine.refdata.universe import Universe
from producers.simulator import DEFAULT_RATE, NS_PER_SECOND, MarketSimulator
from tickindex.cli.command import Subcommands, add_command
from tickindex.cli.common import (
    add_duration_argument,
    add_refresh_argument,
    add_simulator_arguments,
    add_universe_arguments,
    seed_from_args,
    universe_from_args,
)

DEFAULT_STEP_S = 0.1


def register(subcommands: Subcommands) -> None:
    """Add the ``run`` sub-command to the ``tickindex`` parser."""
    parser = add_command(
        subcommands,
        "run",
        summary="simulate a market and show every index live (no broker needed)",
        description=(
            "Generate a realistic tick stream for every constituent, compute every index level "
            "after every tick and show them on a live board. Stops after --duration or Ctrl-C."
        ),
        examples=[
            ("the Hang Seng family live until Ctrl-C", "tickindex run"),
            (
                "30 s of the market of seed 7 (the same on every run)",
                "tickindex run --duration 30 --seed 7",
            ),
        ],
        handler=run_command,
    )
    add_duration_argument(parser, until="Ctrl-C")
    add_simulator_arguments(parser)
    add_universe_arguments(parser)
    add_refresh_argument(parser)


@dataclass(frozen=True)
class RunSummary:
    """Totals of one embedded run.

    Attributes
    ----------
    ticks : int
        Ticks generated and applied.
    levels : int
        Index levels published.
    elapsed_s : float
        Wall time of the run, seconds.
    seed : int
        Simulator seed; the same seed replays the same market.
    """

    ticks: int
    levels: int
    elapsed_s: float
    seed: int

    @property
    def ticks_per_s(self) -> float:
        """Ticks applied per second of wall time."""
        return self.ticks / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def line(self) -> str:
        """One human-readable summary line."""
        return (
            f"tickindex run: {self.ticks:,d} ticks, {self.levels:,d} levels in "
            f"{self.elapsed_s:.2f} s ({self.ticks_per_s:,.0f} ticks/s), seed {self.seed}"
        )


def simulate_live(
    universe: Universe,
    board: IndexBoard,
    *,
    seed: int,
    rate: float = DEFAULT_RATE,
    duration_s: float | None = None,
    step_s: float = DEFAULT_STEP_S,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> RunSummary:
    """Run the simulated market through the index pipeline in real time until done or Ctrl-C.

    Every ``step_s`` the ticks of the wall time elapsed since the previous step are generated
    and applied as one batch, so event time tracks wall time whatever the processing cost.

    Parameters
    ----------
    universe : Universe
        The index family.
    board : IndexBoard
        Receives every level and is redrawn as it sees fit; drawn once more at the end.
    seed : int
        Simulator seed.
    rate : float
        Ticks per second over all securities.
    duration_s : float, optional
        Stop after this much wall time; by default run until interrupted.
    step_s : float
        Wall time between batches, seconds.
    clock, sleep : callable, optional
        Monotonic clock and sleep, injectable for tests.

    Returns
    -------
    RunSummary
        Totals; a ``KeyboardInterrupt`` ends the run normally.
    """
    start_ns = time.time_ns()
    simulator = MarketSimulator(universe, seed, start_ns=start_ns, rate=rate)
    pipeline = IndexPipeline(IndexCalculator(universe), board)
    started = clock()
    try:
        while True:
            step_began = clock()
            elapsed = step_began - started
            if duration_s is not None:
                elapsed = min(elapsed, duration_s)
            span_ns = start_ns + round(elapsed * NS_PER_SECOND) - simulator.now_ns
            if span_ns > 0:
                ticks = simulator.batch_for(span_ns)
                if len(ticks):
                    pipeline.process(ticks)
            board.refresh()
            if duration_s is not None and elapsed >= duration_s:
                break
            pause = step_s - (clock() - step_began)
            if duration_s is not None:
                pause = min(pause, started + duration_s - clock())
            if pause > 0:
                sleep(pause)
    except KeyboardInterrupt:
        pass
    elapsed_s = clock() - started
    pipeline.close()
    board.refresh(force=True)
    return RunSummary(
        ticks=pipeline.stats.ticks_applied,
        levels=pipeline.stats.levels_out,
        elapsed_s=elapsed_s,
        seed=seed,
    )


def run_command(args: argparse.Namespace) -> int:
    """Handler of ``tickindex run``; returns the exit code."""
    universe = universe_from_args(args)
    seed = seed_from_args(args)
    board = IndexBoard(universe, sys.stdout, refresh_s=args.refresh)
    summary = simulate_live(universe, board, seed=seed, rate=args.rate, duration_s=args.duration)
    print(summary.line(), flush=True)
    return 0
