"""``tickindex bench``: core throughput vs a naive recompute; ``--kafka``: the live service."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
from typing import Any

from engine.live.config import ConfigError, ServiceConfig, load_config
from tickindex.bench.analytics import run_analytics_benchmark
from tickindex.bench.core import run_core_benchmark, simulated_ticks
from tickindex.bench.kafka import run_kafka_bench, run_tick_to_level_bench
from tickindex.bench.kafka_figures import KafkaBenchSettings
from tickindex.bench.partial_sums.figures import format_partial_sums
from tickindex.bench.partial_sums.run import run_partial_sums
from tickindex.bench.partial_sums.settings import PartialSumSettings
from tickindex.bench.report import (
    format_analytics_result,
    format_kafka_result,
    format_result,
    tick_to_level_line,
)
from tickindex.cli.bench_gateway import add_gateway_load_arguments, gateway_load_command
from tickindex.cli.bench_offline import (
    add_scale_arguments,
    pin_to_one_core,
    replay_io_command,
    scale_bench_command,
)
from tickindex.cli.command import Subcommands, add_command
from tickindex.cli.common import DEFAULT_BOOTSTRAP, add_universe_arguments, universe_from_args


def register(subcommands: Subcommands) -> None:
    """Add the ``bench`` sub-command."""
    parser = add_command(
        subcommands,
        "bench",
        summary="measure engine throughput against a naive per-tick recompute",
        description="Simulated ticks on the universe go through the vectorised engine in "
        "batches and, for a prefix, through a naive per-tick full recompute; both are timed in "
        "the same run on one CPU core; then the pipeline with and without analytics (default "
        "AnalyticsConfig) on the same ticks. With --kafka: the live service on a real broker "
        "instead (raw aiokafka consumption vs the service, tick_batch throughput, paced latency, "
        "and tick-to-level latency on the broker's clocks at 1,000, 10,000 and 50,000 "
        "ticks/s). With --scale: a seeded world of 10,000 indices loaded from files, beside the "
        "built-in family.",
        examples=[
            ("the engine against the naive recompute, as JSON", "tickindex bench --json"),
            (
                "the live service on a local broker",
                "tickindex bench --kafka --bootstrap 127.0.0.1:9092",
            ),
        ],
        handler=bench_command,
    )
    add_universe_arguments(parser)
    defaults = KafkaBenchSettings()
    parser.add_argument(
        "--ticks",
        type=int,
        default=2_000_000,
        metavar="N",
        help="simulated ticks the engine computes (default: %(default)s)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=10_000,
        metavar="N",
        help="ticks per engine batch (default: %(default)s)",
    )
    parser.add_argument(
        "--naive-ticks",
        type=int,
        default=20_000,
        metavar="N",
        help="ticks of the prefix the naive recompute computes (default: %(default)s)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=7,
        help="simulator seed: the same seed gives the same ticks (default: %(default)s)",
    )
    parser.add_argument(
        "--all-cores",
        action="store_true",
        help="do not pin the process to one CPU core (default: pinned, on Linux; "
        "--replay-io runs on all cores unless --one-core)",
    )
    parser.add_argument(
        "--one-core",
        action="store_true",
        help="--replay-io: pin the process to one CPU core, so the level writer's thread "
        "shares the engine's core (default: all cores, as a replay runs)",
    )
    parser.add_argument(
        "--no-analytics",
        action="store_true",
        help="skip the pipeline run with and without analytics (default: run after the engine, "
        "same ticks: the live-clock and replay-clock analytics ratios)",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    parser.add_argument(
        "--replay-io",
        action="store_true",
        help="replay the same --ticks seeded ticks three ways in one run: engine only (in "
        "memory), Parquet in -> Parquet levels out, CSV in -> Parquet levels out; ticks/s and "
        "ratios to engine-only, wall time and CPU time (on all cores unless --one-core)",
    )
    add_scale_arguments(parser)
    _add_partial_sum_arguments(parser)
    add_gateway_load_arguments(parser)
    kafka = parser.add_argument_group(
        "Kafka", "--kafka measures the live service on a real broker instead (fresh topics)"
    )
    kafka.add_argument(
        "--kafka", action="store_true", help="run the Kafka benchmark instead of the core one"
    )
    kafka.add_argument(
        "--bootstrap",
        default=DEFAULT_BOOTSTRAP,
        metavar="HOST:PORT",
        help="Kafka broker(s) to connect to (default: %(default)s)",
    )
    kafka.add_argument(
        "--messages",
        type=int,
        default=defaults.ticks,
        metavar="N",
        help="single-tick messages consumed raw and by the service (default: %(default)s)",
    )
    kafka.add_argument(
        "--batch-ticks",
        type=int,
        default=defaults.batch_ticks,
        metavar="N",
        help="ticks of the tick_batch throughput run (default: %(default)s)",
    )
    kafka.add_argument(
        "--ticks-per-message",
        type=int,
        default=defaults.ticks_per_message,
        metavar="N",
        help="ticks per tick_batch message of that run (default: %(default)s)",
    )
    kafka.add_argument(
        "--latency-rate",
        type=float,
        default=defaults.latency_rate,
        metavar="TICKS_PER_S",
        help="pace of the latency run, ticks per second (default: %(default)s)",
    )
    kafka.add_argument(
        "--latency-seconds",
        type=float,
        default=defaults.latency_seconds,
        metavar="SECONDS",
        help="length of the latency run (default: %(default)s)",
    )
    kafka.add_argument(
        "--warmup-seconds",
        type=float,
        default=defaults.warmup_seconds,
        metavar="SECONDS",
        help="start of the latency run left out of the latency figures (default: %(default)s)",
    )
    kafka.add_argument(
        "--service-setting",
        action="append",
        default=[],
        metavar="SETTING=VALUE",
        help="serve setting of the single-tick and batch runs (repeatable), e.g. linger_ms=2",
    )
    kafka.add_argument(
        "--batch-setting",
        action="append",
        default=[],
        metavar="SETTING=VALUE",
        help="serve setting of the batch run (repeatable; default max_batch_ticks=10000)",
    )
    kafka.add_argument(
        "--latency-setting",
        action="append",
        default=[],
        metavar="SETTING=VALUE",
        help="serve setting of the latency run (repeatable), e.g. poll_timeout_ms=1",
    )
    kafka.add_argument(
        "--keep-topics",
        action="store_true",
        help="keep the benchmark's topics afterwards (default: deleted)",
    )
    kafka.add_argument(
        "--tick-to-level-rates",
        type=_rates,
        default=defaults.tick_to_level_rates,
        metavar="R1,R2,...",
        help="paced ticks per second of the tick-to-level runs, whose latency is measured on the "
        "broker's clocks (default: 1000,10000,50000)",
    )
    kafka.add_argument(
        "--tick-to-level-seconds",
        type=float,
        default=defaults.tick_to_level_seconds,
        metavar="SECONDS",
        help="length of each tick-to-level run (default: %(default)s)",
    )
    kafka.add_argument(
        "--tick-to-level-only",
        action="store_true",
        help="run only the tick-to-level runs",
    )
    kafka.add_argument(
        "--mechanisms",
        action="store_true",
        help="also time the single-tick service run with each speed mechanism (output_process, "
        "fetched_records) on and off, back to back, and report each speed-up "
        "(fastest run with it / without it)",
    )
    kafka.add_argument(
        "--mechanism-rounds",
        type=int,
        default=defaults.mechanism_rounds,
        help="on/off pairs per mechanism with --mechanisms (default 5; more rounds, less noise)",
    )
    kafka.add_argument(
        "--analytics-rounds",
        type=int,
        default=defaults.analytics_rounds,
        help="with/without pairs of the single-tick service run with serve --analytics, to report "
        "the time the analytics topic adds (default %(default)s; 0: not run)",
    )


def _add_partial_sum_arguments(parser: argparse.ArgumentParser) -> None:
    partial, plan = (
        parser.add_argument_group(
            "partial sums",
            "--partial-sums simulates the plan beyond one reader on the broker (--bootstrap): W "
            "workers, one tick partition each, publish per-index partial sums; a reducer adds "
            "them up; final levels are checked against the single-process engine",
        ),
        PartialSumSettings(bootstrap=DEFAULT_BOOTSTRAP),
    )
    partial.add_argument(
        "--partial-sums", action="store_true", help="run the partial-sum simulation instead"
    )
    for flag, default, text in (
        ("--partial-workers", plan.workers, "workers (tick partitions)"),
        ("--partial-securities", plan.securities, "securities of the seeded world"),
        ("--partial-indices", plan.indices, "indices of the seeded world, 50-500 members each"),
        ("--partial-ticks", plan.ticks, "ticks published"),
    ):
        partial.add_argument(
            flag, type=int, default=default, metavar="N", help=f"{text} (default: %(default)s)"
        )
    partial.add_argument(
        "--partial-rate",
        type=float,
        default=plan.rate,
        metavar="TICKS_PER_S",
        help="publishing pace; 0 publishes as fast as it can (default: %(default)s)",
    )
    partial.add_argument(
        "--deaf-worker",
        type=int,
        default=None,
        metavar="W",
        help="worker W never reads the broadcast events (shows what breaks; exit code 1)",
    )
    partial.add_argument(
        "--no-event-hold",
        action="store_true",
        help="the reducer publishes an event's indices before every worker's barrier is in",
    )


def bench_command(args: argparse.Namespace) -> int:
    """Run the core benchmark (or with ``--kafka`` the Kafka one) and print its figures."""
    if args.kafka:
        return kafka_bench_command(args)
    if args.gateway_load:
        return gateway_load_command(args)
    if args.scale:
        return scale_bench_command(args)
    if args.partial_sums:
        return partial_sums_command(args)
    if args.replay_io:
        return replay_io_command(args)
    core = None if args.all_cores else pin_to_one_core()
    universe = universe_from_args(args)
    ticks = simulated_ticks(universe, args.ticks, args.seed)
    result = run_core_benchmark(universe, ticks, args.batch_size, args.naive_ticks)
    analytics = (
        None if args.no_analytics else run_analytics_benchmark(universe, ticks, args.batch_size)
    )
    if args.json:
        payload = dataclasses.asdict(result) | {"cpu_core": core, "seed": args.seed}
        payload["analytics"] = None if analytics is None else dataclasses.asdict(analytics)
        print(json.dumps(payload))
    else:
        print(format_result(result, core))
        if analytics is not None:
            print(format_analytics_result(analytics))
    return 0


def partial_sums_command(args: argparse.Namespace) -> int:
    """Run ``bench --partial-sums``; exit code 1 when the final levels do not match."""
    if not args.partial_workers > 0 or not (
        args.deaf_worker is None or 0 <= args.deaf_worker < args.partial_workers
    ):
        raise ConfigError("--partial-workers must be positive, --deaf-worker one of the workers")
    settings = PartialSumSettings(
        bootstrap=args.bootstrap,
        workers=args.partial_workers,
        securities=args.partial_securities,
        indices=args.partial_indices,
        ticks=args.partial_ticks,
        rate=args.partial_rate,
        seed=args.seed,
        deaf_worker=args.deaf_worker,
        hold_events=not args.no_event_hold,
        keep_topics=args.keep_topics,
    )
    figures = run_partial_sums(settings)
    payload = dataclasses.asdict(figures) | {"levels_match": figures.levels_match}
    print(json.dumps(payload) if args.json else format_partial_sums(figures))
    return 0 if figures.levels_match else 1


def kafka_bench_command(args: argparse.Namespace) -> int:
    """Run the Kafka benchmark and print its figures."""
    settings = KafkaBenchSettings(
        bootstrap=args.bootstrap,
        ticks=args.messages,
        batch_ticks=args.batch_ticks,
        ticks_per_message=args.ticks_per_message,
        latency_rate=args.latency_rate,
        latency_seconds=args.latency_seconds,
        warmup_seconds=args.warmup_seconds,
        seed=args.seed,
        service=_settings(args.service_setting),
        batch_service=KafkaBenchSettings().batch_service | _settings(args.batch_setting),
        latency_service=_settings(args.latency_setting),
        indices=args.indices,
        composition=args.composition,
        keep_topics=args.keep_topics,
        mechanisms=args.mechanisms,
        mechanism_rounds=args.mechanism_rounds,
        analytics_rounds=args.analytics_rounds,
        tick_to_level_rates=args.tick_to_level_rates,
        tick_to_level_seconds=args.tick_to_level_seconds,
    )
    if args.tick_to_level_only:
        figures = asyncio.run(run_tick_to_level_bench(settings, universe_from_args(args)))
        payload = {"tick_to_level": [dataclasses.asdict(f) for f in figures]}
        print(json.dumps(payload) if args.json else "\n".join(map(tick_to_level_line, figures)))
        return 0
    result = asyncio.run(run_kafka_bench(settings, universe_from_args(args)))
    print(json.dumps(dataclasses.asdict(result)) if args.json else format_kafka_result(result))
    return 0


def _rates(text: str) -> tuple[float, ...]:
    """``--tick-to-level-rates``: positive ticks per second, comma-separated."""
    try:
        rates = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected rates such as 1000,10000") from None
    if not rates or min(rates) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: rates must be positive")
    return rates


def _settings(pairs: list[str]) -> dict[str, Any]:
    """``SETTING=VALUE`` pairs as ``ServiceConfig`` values (converted and checked)."""
    raw: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or key not in ServiceConfig.__struct_fields__:
            raise ConfigError(f"{pair!r}: expected SETTING=VALUE with a serve setting")
        raw[key] = value
    config = load_config(overrides=raw)
    return {key: getattr(config, key) for key in raw}
