"""``tickindex simulate``: a seeded simulated market published to a Kafka tick topic in real time.

Every step (0.1 s) the ticks of the wall time elapsed since the previous step are generated in
one batch (``MarketSimulator.batch_for``) and published by ``TickPublisher``, keyed by security;
``ts_event`` is wall-clock nanoseconds. Sequence numbers continue across runs: a security's
n-th tick of a run started at ``T`` ns carries ``T // 1000 + n``, so a service that remembers
the previous run's numbers does not take a new run's ticks for duplicates.

With ``--session-aware`` ticks are only published during HKEX continuous trading (09:30-12:00,
13:00-16:00 Hong Kong time, weekdays; holidays and half days from ``--calendar``); outside them
the command says so and sleeps. The simulator then runs on trading time: its clock stops at the
close and resumes at the next open, so prices do not jump over lunch or overnight.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import functools
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from engine.calendar.sessions import NS_PER_SECOND, TradingCalendar
from engine.kernel.columns import TickColumns
from engine.refdata.universe import Universe
from producers.pacing import StopControl, continuous_session, describe_hkt
from producers.simulator import DEFAULT_RATE, MarketSimulator
from tickindex.cli.command import Subcommands, add_command
from tickindex.cli.common import (
    add_duration_argument,
    add_kafka_arguments,
    add_simulator_arguments,
    add_tick_message_arguments,
    add_universe_arguments,
    seed_from_args,
    universe_from_args,
)
from tickindex.cli.kafka_clients import kafka_producer, send_ticks, tick_publisher
from tickindex.cli.kafka_security import security_from_args

DEFAULT_STEP_S = 0.1
_FOREVER_NS = 1 << 62

Publish = Callable[[TickColumns], Awaitable[None]]


def register(subcommands: Subcommands) -> None:
    """Add the ``simulate`` sub-command to the ``tickindex`` parser."""
    parser = add_command(
        subcommands,
        "simulate",
        summary="publish a simulated market to a Kafka tick topic in real time",
        description="Generate a realistic seeded tick stream for every constituent and publish "
        "it to Kafka as it happens (ts_event = wall clock), keyed by security. Stops after "
        "--duration, Ctrl-C or SIGTERM and prints a summary.",
        examples=[
            ("2,000 ticks/s onto topic ticks until Ctrl-C", "tickindex simulate --rate 2000"),
            (
                "only in HKEX trading hours, holidays from a file, on a remote broker",
                "tickindex simulate --calendar holidays.csv --bootstrap broker:9092",
            ),
        ],
        handler=simulate_command,
    )
    add_kafka_arguments(parser, topic="ticks", role="Kafka topic to publish the ticks to")
    add_simulator_arguments(parser)
    add_duration_argument(parser)
    add_tick_message_arguments(parser)
    parser.add_argument(
        "--session-aware",
        action="store_true",
        help="publish only during HKEX continuous trading hours (09:30-12:00, 13:00-16:00 "
        "Hong Kong time, weekdays) and sleep outside them",
    )
    parser.add_argument(
        "--calendar",
        metavar="FILE",
        help="holidays and half days (CSV date,kind with kind holiday or half_day); implies "
        "--session-aware",
    )
    parser.add_argument(
        "--no-seq",
        action="store_true",
        help="publish ticks without sequence numbers (the service then checks neither "
        "duplicates nor order)",
    )
    add_universe_arguments(parser)


@dataclass(frozen=True)
class SimulationSummary:
    """Totals of one ``simulate`` run.

    Attributes
    ----------
    ticks, messages, bytes : int
        Ticks published, Kafka messages and bytes of message values.
    elapsed_s : float
        Wall time of the run, seconds.
    seed : int
        Simulator seed.
    topic : str
        Where the ticks went.
    """

    ticks: int
    messages: int
    bytes: int
    elapsed_s: float
    seed: int
    topic: str

    def line(self) -> str:
        """One human-readable summary line."""
        rate = self.ticks / self.elapsed_s if self.elapsed_s > 0 else 0.0
        return (
            f"tickindex simulate: {self.ticks:,d} ticks in {self.messages:,d} messages "
            f"({self.bytes / 1e6:.1f} MB) to {self.topic} in {self.elapsed_s:.2f} s "
            f"({rate:,.0f} ticks/s), seed {self.seed}"
        )


async def simulate_market(
    universe: Universe,
    publish: Publish,
    *,
    seed: int,
    rate: float = DEFAULT_RATE,
    stop: StopControl,
    calendar: TradingCalendar | None = None,
    step_s: float = DEFAULT_STEP_S,
    with_seq: bool = True,
    wall_ns: Callable[[], int] = time.time_ns,
    notify: Callable[[str], None] | None = None,
) -> int:
    """Generate and publish ticks in real time until ``stop`` says so.

    Parameters
    ----------
    universe : Universe
        The securities to simulate.
    publish : callable
        Awaited with every non-empty batch (ticks time-stamped with the wall clock).
    seed : int
        Simulator seed.
    rate : float
        Ticks per second over all securities (of trading time).
    stop : StopControl
        Its ``sleep`` paces the loop and says when to stop (signal or wall-time budget).
    calendar : TradingCalendar, optional
        Publish only during its continuous trading sessions, and sleep outside them.
    step_s : float
        Wall time between batches, seconds.
    with_seq : bool
        Give ticks per-security sequence numbers (continuing across runs, see the module).
    wall_ns : callable
        Wall clock in nanoseconds since the epoch; injectable for tests.
    notify : callable, optional
        Receives the closed/open announcements (default: standard error).

    Returns
    -------
    int
        Ticks published.
    """
    say = notify or (lambda text: print(text, file=sys.stderr, flush=True))
    reached = wall_ns()
    simulator = MarketSimulator(universe, seed, start_ns=reached, rate=rate)
    seq_base = reached // 1000
    published = 0
    announced_open: int | None = None
    while True:
        left = stop.remaining()
        deadline = _FOREVER_NS if left is None else wall_ns() + round(left * NS_PER_SECOND)
        now = min(wall_ns(), deadline)
        step_began = stop.clock()
        window_end = now
        if calendar is not None:
            open_ns, close_ns = continuous_session(calendar, reached)
            if open_ns > reached:
                if open_ns > now:
                    if now >= deadline:
                        break
                    if announced_open != open_ns:
                        announced_open = open_ns
                        say(
                            "simulate: outside HKEX trading hours, sleeping until "
                            f"{describe_hkt(open_ns)}"
                        )
                    if await stop.sleep((open_ns - now) / NS_PER_SECOND):
                        break
                    continue
                if announced_open == open_ns:
                    say(f"simulate: market open ({describe_hkt(open_ns)}), publishing")
                reached = open_ns
            window_end = min(now, close_ns)
        if window_end > reached:
            shift = reached - simulator.now_ns
            ticks = simulator.batch_for(window_end - reached)
            reached = window_end
            if len(ticks):
                seq = ticks.seq + seq_base if with_seq and ticks.seq is not None else None
                await publish(dataclasses.replace(ticks, ts_event=ticks.ts_event + shift, seq=seq))
                published += len(ticks)
        if reached >= deadline or stop.stopped:
            break
        if window_end < now:
            continue
        # Past the budget the next round publishes up to the deadline and ends; a signal ends now.
        if await stop.sleep(step_s - (stop.clock() - step_began)) and stop.interrupted:
            break
    return published


async def _simulate(
    args: argparse.Namespace, universe: Universe, seed: int, calendar: TradingCalendar | None
) -> SimulationSummary:
    stop = StopControl(args.duration)
    stop.install_signal_handlers()
    started = time.monotonic()
    try:
        async with kafka_producer(args.bootstrap, security_from_args(args)) as producer:
            publisher = tick_publisher(producer, args, universe)
            await simulate_market(
                universe,
                functools.partial(send_ticks, publisher),
                seed=seed,
                rate=args.rate,
                stop=stop,
                calendar=calendar,
                with_seq=not args.no_seq,
            )
            await publisher.flush()
    finally:
        stop.remove_signal_handlers()
    stats = publisher.stats
    return SimulationSummary(
        stats.ticks, stats.messages, stats.bytes, time.monotonic() - started, seed, args.topic
    )


def _calendar(args: argparse.Namespace) -> TradingCalendar | None:
    if args.calendar is not None:
        return TradingCalendar.from_csv(args.calendar)
    return TradingCalendar() if args.session_aware else None


def simulate_command(args: argparse.Namespace) -> int:
    """Handler of ``tickindex simulate``; 0 also after Ctrl-C or SIGTERM."""
    universe = universe_from_args(args)
    seed = seed_from_args(args)
    summary = asyncio.run(_simulate(args, universe, seed, _calendar(args)))
    print(summary.line(), flush=True)
    return 0
