"""The offline benchmarks' options and commands: ``--scale`` and ``--replay-io``; and pinning
the process to one core, as every offline benchmark does unless ``--all-cores``, but
``--replay-io``: a replay writes its level file on a thread of its own, so that benchmark runs
on all cores unless ``--one-core`` (its CPU-time ratios are there for the one-core cost).

``--replay-io`` writes and reads Parquet: its benchmark (and pyarrow) is imported when it runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os

from tickindex.bench.scale import run_scale_benchmark
from tickindex.bench.scale_report import format_scale_result, scale_payload
from tickindex.bench.scale_world import WorldShape
from tickindex.cli.common import universe_from_args


def pin_to_one_core() -> int | None:
    """Restrict this process to one CPU core (Linux); returns the core, None if unsupported."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    core = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    return core


def add_scale_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``--scale`` group."""
    scale = parser.add_argument_group(
        "scale", "--scale runs a synthetic world of many indices, loaded from files, instead"
    )
    scale.add_argument(
        "--scale",
        action="store_true",
        help="a seeded world of power-law indices (each security in 1-10 of them) written to "
        "temporary files and loaded, beside the built-in family in the same run; a sample of "
        "final levels is checked against a plain recomputation",
    )
    scale.add_argument(
        "--scale-securities",
        type=int,
        default=WorldShape().securities,
        metavar="N",
        help="securities of the scale world (default: %(default)s)",
    )
    scale.add_argument(
        "--scale-indices",
        type=int,
        default=WorldShape().indices,
        metavar="N",
        help="indices of the scale world, 50-500 members each (default: %(default)s)",
    )
    scale.add_argument(
        "--scale-ticks",
        type=int,
        default=2_000_000,
        metavar="N",
        help="simulated ticks run on each universe (default: %(default)s)",
    )


def replay_io_command(args: argparse.Namespace) -> int:
    """Run ``bench --replay-io`` and print its figures; exit code 1 when the ways' levels
    differ."""
    from tickindex.bench.replay_io import (  # noqa: PLC0415
        format_replay_io,
        run_replay_io_benchmark,
    )

    core = pin_to_one_core() if args.one_core else None
    result = run_replay_io_benchmark(universe_from_args(args), args.ticks, args.seed)
    if args.json:
        print(json.dumps(dataclasses.asdict(result) | {"cpu_core": core}))
    else:
        print(format_replay_io(result, core))
    return 0 if result.same_levels else 1


def scale_bench_command(args: argparse.Namespace) -> int:
    """Run ``bench --scale`` and print its figures."""
    core = None if args.all_cores else pin_to_one_core()
    shape = WorldShape(securities=args.scale_securities, indices=args.scale_indices, seed=args.seed)
    result = run_scale_benchmark(shape, args.scale_ticks, args.batch_size)
    payload = scale_payload(result, core)
    print(json.dumps(payload) if args.json else format_scale_result(result, core))
    return 0
