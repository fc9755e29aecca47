"""The text reports of ``tickindex bench``: the core run and the Kafka run."""

from __future__ import annotations

from typing import Any

from tickindex.bench.analytics import AnalyticsBenchResult
from tickindex.bench.core import CoreBenchResult
from tickindex.bench.kafka_figures import KafkaBenchResult, MechanismFigures, TickToLevelFigures


def format_result(result: CoreBenchResult, core: int | None) -> str:
    """Human-readable report."""
    where = f"pinned to CPU core {core}" if core is not None else "all cores"
    if result.naive_ticks_per_s is None or result.ratio is None:
        naive = ["naive  : not run (--naive-ticks 0)"]
    else:
        naive = [
            f"naive  : {result.naive_ticks:>10,} ticks, per-tick full recompute: "
            f"{result.naive_ticks_per_s:>14,.0f} ticks/s",
            f"ratio  : {result.ratio:,.1f}x (engine vs naive, same run); "
            f"max relative difference of their levels {result.naive_max_rel_diff:.1e}",
        ]
    return "\n".join(
        [
            f"universe: {result.securities} securities, {result.indices} indices, "
            f"{result.levels_per_tick:.2f} levels per tick ({where})",
            f"engine : {result.ticks:>10,} ticks in batches of {result.batch_size:,}: "
            f"{result.ticks_per_s:>14,.0f} ticks/s",
            *naive,
            f"memory : peak traced {result.peak_traced_bytes / 1e6:.1f} MB during a "
            f"{20 * result.batch_size:,}-tick pass, max RSS {result.max_rss_bytes / 1e6:.1f} MB",
        ]
    )


def format_analytics_result(result: AnalyticsBenchResult) -> str:
    """Human-readable report of the pipeline with and without analytics."""
    live, replay = result.live, result.replay
    return "\n".join(
        [
            f"pipeline : {result.ticks:>10,} ticks in batches of {result.batch_size:,} through "
            f"IndexPipeline: {result.plain_ticks_per_s:>14,.0f} ticks/s without analytics",
            f"analytics: live clock (event time at the engine's {live.event_rate:,.0f} ticks/s): "
            f"{live.ticks_per_s:,.0f} ticks/s, analytics ratio {live.ratio:.2f}x "
            f"({_spread(live.part_ratios)}; {live.boundaries:,} boundaries, {live.records:,} "
            "records)",
            f"analytics: replay clock ({replay.event_rate:,.0f} ticks/s of event time): "
            f"{replay.ticks_per_s:,.0f} ticks/s, analytics ratio {replay.ratio:.2f}x "
            f"({_spread(replay.part_ratios)}; {replay.boundaries:,} boundaries, "
            f"{replay.records:,} records); "
            f"{result.us_per_boundary:,.0f} us per boundary, i.e. "
            f"{result.us_per_boundary / 1e4:.2f}% of a core at one boundary a second",
        ]
    )


def _spread(ratios: tuple[float, ...]) -> str:
    """The range of per-part ratios, e.g. ``parts 0.84-0.93x``."""
    return f"parts {min(ratios):.2f}-{max(ratios):.2f}x" if ratios else "no parts"


def format_kafka_result(result: KafkaBenchResult) -> str:
    """Human-readable report of the Kafka benchmark."""
    s, b, lat, run = result.service, result.batch, result.latency, result.settings
    return "\n".join(
        [
            f"raw aiokafka: {result.raw_messages:>9,} single-tick messages "
            f"{result.raw_msgs_per_s:>12,.0f} msgs/s",
            f"service     : {s.ticks:>9,} ticks {result.service_ticks_per_s:>12,.0f} ticks/s, "
            f"ratio {result.ratio:.2f} of raw ({s.consumed_ticks_per_s:,.0f} ticks/s to the last "
            f"tick consumed, then {s.drain_ms:.0f} ms until every level is acknowledged and the "
            f"checkpoint saved; {s.stop_ms:.0f} ms more to close, not timed)",
            f"batch       : {b.ticks:>9,} ticks {result.batch_ticks_per_s:>12,.0f} ticks/s in "
            f"tick_batch messages of {run['ticks_per_message']:,} ticks",
            f"latency     : {lat.ticks:>9,} ticks at {run['latency_rate']:,.0f}/s, "
            f"{lat.measured_levels:,} levels after {run['warmup_seconds']:g} s warm-up: event to "
            f"publish p50 {lat.publish_p50_ms:.2f} ms p99 {lat.publish_p99_ms:.2f} ms (max "
            f"{lat.publish_max_ms:.1f}); to receive p50 {lat.receive_p50_ms:.2f} ms p99 "
            f"{lat.receive_p99_ms:.2f} ms (max {lat.receive_max_ms:.1f})",
            f"levels      : computed/published/expected: service {s.levels:,}/"
            f"{s.published_levels:,}/{s.expected_levels:,}, batch {b.levels:,}/"
            f"{b.published_levels:,}/{b.expected_levels:,}, latency {lat.service_levels:,}/"
            f"{lat.received_levels:,}/{lat.expected_levels:,}; seq gaps or duplicates "
            f"{s.gaps + b.gaps + lat.gaps}",
            *(f"{key:<12}: {_brief(run[key])}" for key in SETTINGS_SHOWN),
            *(tick_to_level_line(f) for f in result.tick_to_level),
            *(_mechanism_line(m) for m in result.mechanisms),
            *([] if result.analytics is None else [_analytics_line(result.analytics)]),
        ]
    )


def _per_round(figures: MechanismFigures) -> str:
    """Ticks/s with/without of each round."""
    pairs = zip(figures.on_ticks_per_s, figures.off_ticks_per_s, strict=True)
    return ", ".join(f"{a:,.0f}/{b:,.0f}" for a, b in pairs)


def _analytics_line(figures: MechanismFigures) -> str:
    on, off = figures.on, figures.off
    return (
        f"analytics   : adds {100 * (1 / figures.speedup - 1):+.1f}% to the service run's time "
        f"(event time at the service's ticks/s, a live feed's clock): "
        f"{on.ticks_per_s:,.0f} ticks/s with --analytics, {off.ticks_per_s:,.0f} with --sessions "
        f"alone (which analytics imply; fastest of each, same run; with/without per round "
        f"{_per_round(figures)})"
    )


def _mechanism_line(figures: MechanismFigures) -> str:
    on, off = figures.on, figures.off
    rounds = _per_round(figures)
    return (
        f"{figures.setting:<16}: speed-up {figures.speedup:.2f}x: {on.ticks_per_s:,.0f} ticks/s "
        f"with it, {off.ticks_per_s:,.0f} without (fastest of each, same run; with/without per "
        f"round {rounds}); levels published/expected {on.published_levels:,}/"
        f"{off.published_levels:,}/{on.expected_levels:,}, seq gaps or duplicates "
        f"{on.gaps + off.gaps}"
    )


SETTINGS_SHOWN = ("service", "batch_service", "latency_service")
TUNABLES = (
    "delivery", "level_messages", "max_batch_ticks", "poll_timeout_ms", "linger_ms",
    "max_in_flight_batches", "checkpoint_interval_ms",
)  # fmt: skip


def _brief(config: dict[str, Any]) -> str:
    return " ".join(f"{key}={config[key]}" for key in TUNABLES)


def tick_to_level_line(f: TickToLevelFigures) -> str:
    """One line of tick-to-level latency figures at one rate."""
    return (
        f"tick->level : {f.rate:>9,.0f} ticks/s ({f.ticks:,} ticks, {f.broker_ticks_per_s:,.0f}/s "
        f"on the broker), {f.levels:,} levels after warm-up, broker append times: p50 "
        f"{f.p50_ms:.1f} ms p99 {f.p99_ms:.1f} ms p99.9 {f.p999_ms:.1f} ms (max {f.max_ms:.0f}); "
        f"raw echo p50 {f.echo_p50_ms:.1f} ms p99 {f.echo_p99_ms:.1f} ms p99.9 "
        f"{f.echo_p999_ms:.1f} ms; levels without their tick {f.unmatched}"
    )
