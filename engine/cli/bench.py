"""``tickindex bench``: core throughput against a naive recompute, measured in one run."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os

from engine.benchmark import CoreBenchResult, run_core_benchmark
from engine.cli.common import add_universe_arguments, universe_from_args
from producers.simulator import MarketSimulator

BENCH_START_NS = 1_795_138_200_000_000_000  # 2026-11-20 09:30 HKT


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``bench`` sub-command."""
    parser = sub.add_parser(
        "bench",
        help="measure engine throughput against a naive per-tick recompute",
        description="Simulated ticks on the universe go through the vectorised engine in "
        "batches and, for a prefix, through a naive per-tick full recompute; both are timed in "
        "the same run on one CPU core.",
    )
    add_universe_arguments(parser)
    parser.add_argument("--ticks", type=int, default=2_000_000, help="ticks for the engine")
    parser.add_argument("--batch-size", type=int, default=10_000, help="ticks per engine batch")
    parser.add_argument(
        "--naive-ticks", type=int, default=20_000, help="ticks for the naive recompute"
    )
    parser.add_argument("--seed", type=int, default=7, help="simulator seed")
    parser.add_argument(
        "--all-cores", action="store_true", help="do not pin the process to one CPU core"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=bench_command)


def pin_to_one_core() -> int | None:
    """Restrict this process to one CPU core (Linux); returns the core, None if unsupported."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    core = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    return core


def bench_command(args: argparse.Namespace) -> int:
    """Run the core benchmark and print its figures."""
    core = None if args.all_cores else pin_to_one_core()
    universe = universe_from_args(args)
    simulator = MarketSimulator(universe, args.seed, start_ns=BENCH_START_NS)
    ticks = simulator.next_batch(args.ticks)
    result = run_core_benchmark(universe, ticks, args.batch_size, args.naive_ticks)
    if args.json:
        payload = dataclasses.asdict(result) | {"cpu_core": core, "seed": args.seed}
        print(json.dumps(payload))
    else:
        print(format_result(result, core))
    return 0


def format_result(result: CoreBenchResult, core: int | None) -> str:
    """Human-readable report."""
    where = f"pinned to CPU core {core}" if core is not None else "all cores"
    return "\n".join(
        [
            f"universe: {result.securities} securities, {result.indices} indices, "
            f"{result.levels_per_tick:.2f} levels per tick ({where})",
            f"engine : {result.ticks:>10,} ticks in batches of {result.batch_size:,}: "
            f"{result.ticks_per_s:>14,.0f} ticks/s",
            f"naive  : {result.naive_ticks:>10,} ticks, per-tick full recompute: "
            f"{result.naive_ticks_per_s:>14,.0f} ticks/s",
            f"ratio  : {result.ratio:,.1f}x (engine vs naive, same run); "
            f"max relative difference of their levels {result.naive_max_rel_diff:.1e}",
            f"memory : peak traced {result.peak_traced_bytes / 1e6:.1f} MB during a "
            f"{20 * result.batch_size:,}-tick pass, max RSS {result.max_rss_bytes / 1e6:.1f} MB",
        ]
    )
