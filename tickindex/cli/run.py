"""``tickindex run``: the embedded demo, simulator -> calculator -> live board, in real time.

With analytics (the default) the run goes through trading sessions like ``replay --analytics``
and its event clock is a ``MarketClock``: wall time inside HKEX trading hours, else a simulated
trading day from the last session open, said so on the board's title. The records go to the
board's analytics panel. With ``--web`` the levels and records go to the live page's in-process
gateway instead (``tickindex.cli.run_web``).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from consumers.analytics_panel import AnalyticsPanel
from engine.analytics.config import AnalyticsConfig
from engine.calendar.sessions import TradingCalendar
from engine.kernel.calculator import IndexCalculator
from engine.kernel.columns import LevelColumns, TickColumns
from engine.pipeline.analytics_driver import AnalyticsDriver, AnalyticsSink
from engine.pipeline.chain import IndexPipeline
from engine.pipeline.trading_day import SessionDriver
from engine.refdata.universe import Universe
from producers.pacing import describe_hkt
from producers.simulator import DEFAULT_RATE, NS_PER_SECOND, MarketSimulator
from tickindex.analytics_setup import analytics_config, attach_analytics, desk_config
from tickindex.cli.board_options import add_board_arguments, board_from_args, once_duration
from tickindex.cli.command import Subcommands, add_command
from tickindex.cli.common import (
    add_duration_argument,
    add_refresh_argument,
    add_simulator_arguments,
    add_universe_arguments,
    seed_from_args,
    universe_from_args,
)
from tickindex.cli.run_web import GatewayFeed, Sleep, serve_web
from tickindex.market_clock import MarketClock

DEFAULT_STEP_S = 0.1
ONCE_DURATION_S = 1.0


def register(subcommands: Subcommands) -> None:
    """Add the ``run`` sub-command to the ``tickindex`` parser."""
    parser = add_command(
        subcommands,
        "run",
        summary="simulate a market and show every index live (no broker needed)",
        description=(
            "Generate a realistic tick stream for every constituent, compute every index level "
            "after every tick and show them on a live board, with an analytics panel (breadth, "
            "movers, volatility, pairs with beta and futures hedge, signals). Inside HKEX trading "
            "hours event time is wall time; outside them the run simulates a trading day from "
            "the last session open (09:30 HKT), and the board says the time is simulated. "
            "With --web no board: the levels (and analytics) go to an in-process gateway that "
            "serves the live page (a table of every index and a chart) and the gateway's API; "
            "the one-line summary at the end. Stops after --duration or Ctrl-C."
        ),
        examples=[
            (
                "30 s of the market of seed 7 (the same on every run) on the live page, in a "
                "browser at the address it prints",
                "tickindex run --web --duration 30 --seed 7",
            ),
            (
                "one 120-column board after 5 s, with analytics rules of your own",
                "tickindex run --once --duration 5 --width 120 "
                "--analytics-config deploy/analytics/smallcap-sleeve.toml",
            ),
        ],
        handler=run_command,
    )
    parser.add_argument(
        "--web",
        action="store_true",
        help="serve the live page (and the gateway's REST and stream API) instead of the board: "
        "prints its address, live page: http://HOST:PORT/",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="with --web: address to listen on (127.0.0.1)"
    )
    parser.add_argument(
        "--port", type=int, default=8080, help="with --web: port to listen on (8080; 0: any free)"
    )
    add_duration_argument(parser, until="Ctrl-C")
    add_simulator_arguments(parser)
    add_universe_arguments(parser)
    add_refresh_argument(parser)
    add_board_arguments(parser, once_duration_s=ONCE_DURATION_S)
    analytics = parser.add_mutually_exclusive_group()
    analytics.add_argument(
        "--no-analytics",
        dest="analytics",
        action="store_false",
        help="levels only: no sessions, no analytics panel, every tick stamped with wall time",
    )
    analytics.add_argument(
        "--analytics-config",
        metavar="FILE",
        help="analytics settings and signal rules, TOML or JSON (default: every index each "
        "second, returns sampled every 5 s, the default pairs with a HK$50m sleeve hedged "
        "with HSI futures, small-cap sleeve signals)",
    )


class LiveBoard(Protocol):
    """Where an embedded run's levels go: the board, or the live page's gateway."""

    def write(self, levels: LevelColumns) -> None:
        """Take one batch of levels."""

    def refresh(self, *, force: bool = False) -> bool:
        """Redraw if due (or ``force``); whether it drew."""


@dataclass(frozen=True)
class RunAnalytics:
    """The analytics of an embedded run.

    Attributes
    ----------
    config : AnalyticsConfig
        What to compute.
    market : MarketClock
        The run's event clock (live or a simulated trading day) and its calendar.
    sink : AnalyticsSink
        Where the records go (the board's panel).
    """

    config: AnalyticsConfig
    market: MarketClock
    sink: AnalyticsSink


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
    analytics_records: int | None = None
    simulated_from_ns: int | None = None

    @property
    def ticks_per_s(self) -> float:
        """Ticks applied per second of wall time."""
        return self.ticks / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def line(self) -> str:
        """One human-readable summary line."""
        line = (
            f"tickindex run: {self.ticks:,d} ticks, {self.levels:,d} levels in "
            f"{self.elapsed_s:.2f} s ({self.ticks_per_s:,.0f} ticks/s), seed {self.seed}"
        )
        if self.analytics_records is not None:
            line += f", {self.analytics_records:,d} analytics records"
        if self.simulated_from_ns is not None:
            line += f", simulated trading from {describe_hkt(self.simulated_from_ns)}"
        return line


def simulate_live(
    universe: Universe,
    board: LiveBoard,
    *,
    seed: int,
    rate: float = DEFAULT_RATE,
    duration_s: float | None = None,
    step_s: float = DEFAULT_STEP_S,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    analytics: RunAnalytics | None = None,
) -> RunSummary:
    """Run the simulated market through the index pipeline in real time until done or Ctrl-C.

    Every ``step_s`` the ticks of the wall time elapsed since the previous step are generated
    and applied as one batch, so event time tracks wall time whatever the processing cost.
    With ``analytics`` the ticks are stamped by its market clock and go through trading
    sessions and the analytics, whose boundaries also pass when no tick comes.

    Parameters
    ----------
    universe : Universe
        The index family.
    board : LiveBoard
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
    analytics : RunAnalytics, optional
        Analytics, sessions and the market clock; without: levels only, on wall time.

    Returns
    -------
    RunSummary
        Totals; a ``KeyboardInterrupt`` ends the run normally.
    """
    start_ns = analytics.market.start_ns if analytics is not None else time.time_ns()
    simulator = MarketSimulator(universe, seed, start_ns=start_ns, rate=rate)
    pipeline = IndexPipeline(IndexCalculator(universe), board)
    feed: _MarketFeed | None = None
    if analytics is not None:
        sessions = SessionDriver(pipeline, analytics.market.calendar)
        driver = attach_analytics(sessions, analytics.config, analytics.sink)
        feed = _MarketFeed(analytics.market, driver)
    started = clock()
    try:
        while True:
            step_began = clock()
            elapsed = step_began - started
            if duration_s is not None:
                elapsed = min(elapsed, duration_s)
            reached = round(elapsed * NS_PER_SECOND)
            if feed is not None:
                reached = feed.market.trading_elapsed(reached)
            span_ns = start_ns + reached - simulator.now_ns
            if span_ns > 0:
                ticks = simulator.batch_for(span_ns)
                if len(ticks):
                    (pipeline.process if feed is None else feed.process)(ticks)
            if feed is not None:
                feed.advance(reached)
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
        analytics_records=feed.driver.records_out if feed is not None else None,
        simulated_from_ns=start_ns if feed is not None and feed.market.simulated else None,
    )


@dataclass(frozen=True)
class _MarketFeed:
    """Simulated ticks stamped by the market clock, through sessions and analytics."""

    market: MarketClock
    driver: AnalyticsDriver

    def process(self, ticks: TickColumns) -> None:
        """The ticks (simulator times are trading times from the clock's start) at their
        event times."""
        trading = ticks.ts_event - self.market.start_ns
        self.driver.process(dataclasses.replace(ticks, ts_event=self.market.event_times(trading)))

    def advance(self, trading_ns: int) -> None:
        """Analytics boundaries pass up to the event time reached, ticks or not."""
        self.driver.advance_to(self.market.event_time_at(trading_ns))


def _run_web(args: argparse.Namespace, universe: Universe, seed: int) -> RunSummary:
    market = MarketClock.for_wall_time(TradingCalendar(), time.time_ns())

    def run(feed: GatewayFeed, sleep: Sleep) -> RunSummary:
        analytics = None
        if args.analytics:
            config = analytics_config(args.analytics_config, desk_config(universe))
            analytics = RunAnalytics(config, market, feed)
        return simulate_live(
            universe,
            feed,
            seed=seed,
            rate=args.rate,
            duration_s=args.duration,
            sleep=sleep,
            analytics=analytics,
        )

    return asyncio.run(serve_web(universe, args, run))


def run_command(args: argparse.Namespace) -> int:
    """Handler of ``tickindex run``; returns the exit code."""
    universe = universe_from_args(args)
    seed = seed_from_args(args)
    if args.web:
        print(_run_web(args, universe, seed).line(), flush=True)
        return 0
    analytics: RunAnalytics | None = None
    panel: AnalyticsPanel | None = None
    if args.analytics:
        config = analytics_config(args.analytics_config, desk_config(universe))
        market = MarketClock.for_wall_time(TradingCalendar(), time.time_ns())
        panel = AnalyticsPanel()
        analytics = RunAnalytics(config, market, panel)
    board = board_from_args(
        args,
        universe,
        panel=panel,
        simulated_time=analytics is not None and analytics.market.simulated,
    )
    duration_s = once_duration(args, ONCE_DURATION_S)
    summary = simulate_live(
        universe, board, seed=seed, rate=args.rate, duration_s=duration_s, analytics=analytics
    )
    print(summary.line(), flush=True)
    return 0
