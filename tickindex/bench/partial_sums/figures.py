"""Figures of a partial-sum run, from its topics read back after the run.

Latency of a tick: the broker append time of the first partial (then of the first reduced
message) whose watermark for the tick's partition is past the tick's offset, minus the tick
record's append time; every tick of a record counts. Throughput end to end: ticks over the span
from the first tick's append to the last reduced message's.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from engine.maintenance.composition_edits import describe
from tickindex.bench.partial_sums.maths import (
    REDUCED_DECODER,
    WORKER_DECODER,
    Partials,
    ReducedLevels,
)
from tickindex.bench.partial_sums.processes import END_KEY, TICK_DECODER, ReducerStats, WorkerStats
from tickindex.bench.partial_sums.settings import PartialSumSettings
from tickindex.bench.partial_sums.world import SimulationWorld, check_levels

QUANTILES = (0.5, 0.99, 0.999)


@dataclass(frozen=True)
class ReadBack:
    """The records of a run's topics: ticks per partition, partials, reduced levels."""

    ticks: list[list[Any]]
    partials: list[Any]
    reduced: list[Any]


@dataclass(frozen=True)
class PartialSumFigures:
    """What one ``bench --partial-sums`` run measured (latencies in ms, broker clock)."""

    seed: int
    workers: int
    securities: int
    indices: int
    memberships: int
    ticks: int
    events: list[str]
    rate: float
    deaf_worker: int | None
    hold_events: bool
    ticks_per_s: float
    publish_ticks_per_s: float
    wall_seconds: float
    tick_to_partial_ms: list[float]
    tick_to_reduced_ms: list[float]
    reducer_hop_ms: list[float]
    unmatched_ticks: int
    worker_ticks_per_cpu_s: list[float]
    worker_ticks_per_process_cpu_s: list[float]
    reducer_index_partials_per_cpu_s: float
    reducer_index_partials_per_process_cpu_s: float
    partial_bytes_per_tick: float
    index_partials_per_tick: float
    worker_stats: list[dict[str, Any]]
    reducer_stats: dict[str, Any]
    max_rel_diff: float
    mismatched_indices: int
    worst_index: str
    largest_step: float
    largest_step_index: str
    missing_barriers: dict[int, list[int]]

    @property
    def levels_match(self) -> bool:
        """Every final reduced level equals the engine's within 1e-9 relative."""
        return self.mismatched_indices == 0


def reduced_records(records: list[Any]) -> list[tuple[int, ReducedLevels]]:
    """(append ms, decoded message) of each reduced-level record."""
    return [(int(r.timestamp), REDUCED_DECODER.decode(r.value)) for r in records]


def _quantiles(values: NDArray[np.int64]) -> list[float]:
    if values.size == 0:
        return [float("nan")] * len(QUANTILES)
    return [float(q) for q in np.quantile(values, QUANTILES)]


def first_past(
    watermarks: NDArray[np.int64], appended: NDArray[np.int64], offsets: NDArray[np.int64]
) -> NDArray[np.int64]:
    """Append time of the first message whose watermark passes each offset (-1: none)."""
    reached = np.maximum.accumulate(watermarks) if watermarks.size else watermarks
    at = np.searchsorted(reached, offsets, side="right")
    found = at < reached.size
    out = np.full(offsets.size, -1, dtype=np.int64)
    out[found] = appended[at[found]]
    return out


def tick_latencies(read: ReadBack, workers: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Per tick: ms to its first partial and to its first reduced level (-1: never)."""
    partials = [(int(r.timestamp), WORKER_DECODER.decode(r.value)) for r in read.partials]
    reduced = reduced_records(read.reduced)
    reduced_at = np.array([at for at, _ in reduced], dtype=np.int64)
    reduced_marks = np.array([m.watermarks for _, m in reduced], dtype=np.int64).reshape(
        -1, workers
    )
    to_partial, to_reduced = [], []
    for partition, records in enumerate(read.ticks):
        ticks = [r for r in records if r.key != END_KEY]
        offsets = np.array([r.offset for r in ticks], dtype=np.int64)
        appended = np.array([r.timestamp for r in ticks], dtype=np.int64)
        counts = np.array([len(TICK_DECODER.decode(r.value).security) // 8 for r in ticks])
        mine = [
            (at, m.watermark)
            for at, m in partials
            if isinstance(m, Partials) and m.worker == partition
        ]
        partial_at = np.array([at for at, _ in mine], dtype=np.int64)
        partial_marks = np.array([mark for _, mark in mine], dtype=np.int64)
        first_partial = first_past(partial_marks, partial_at, offsets)
        first_reduced = first_past(reduced_marks[:, partition], reduced_at, offsets)
        to_partial.append(
            np.repeat(np.where(first_partial < 0, -1, first_partial - appended), counts)
        )
        to_reduced.append(
            np.repeat(np.where(first_reduced < 0, -1, first_reduced - appended), counts)
        )
    return np.concatenate(to_partial), np.concatenate(to_reduced)


def final_levels(
    read: ReadBack, initial: NDArray[np.float64]
) -> tuple[NDArray[np.float64], float, int]:
    """Last reduced level per index, the largest relative step between two, and its index."""
    levels = initial.copy()
    largest, where = 0.0, 0
    for _, message in reduced_records(read.reduced):
        index = np.frombuffer(message.index, dtype=np.int32)
        level = np.frombuffer(message.level)
        if index.size:
            steps = np.abs(level / levels[index] - 1.0)
            k = int(np.argmax(steps))
            if steps[k] > largest:
                largest, where = float(steps[k]), int(index[k])
            levels[index] = level
    return levels, largest, where


def figures_of_run(
    settings: PartialSumSettings,
    world: SimulationWorld,
    read: ReadBack,
    *,
    reference: NDArray[np.float64],
    workers: list[WorkerStats],
    reducer: ReducerStats,
    wall_seconds: float,
) -> PartialSumFigures:
    """Every figure of the run and the level check."""
    universe = world.universe
    initial = np.array([spec.prev_close_level for spec in universe.indices], dtype=np.float64)
    levels, step, step_index = final_levels(read, initial)
    check = check_levels(universe, levels, reference)
    to_partial, to_reduced = tick_latencies(read, settings.workers)
    matched = (to_partial >= 0) & (to_reduced >= 0)
    tick_times = [int(r.timestamp) for records in read.ticks for r in records]
    first_tick, last_tick = min(tick_times), max(tick_times)
    last_reduced = max(int(r.timestamp) for r in read.reduced)
    n_ticks = len(world.ticks)
    partial_bytes = sum(w.bytes_out for w in workers)
    return PartialSumFigures(
        seed=settings.seed,
        workers=settings.workers,
        securities=universe.n_securities,
        indices=len(universe.indices),
        memberships=len(universe.membership),
        ticks=n_ticks,
        events=[f"{describe(e)} at {e.effective}" for e in world.events],
        rate=settings.rate,
        deaf_worker=settings.deaf_worker,
        hold_events=settings.hold_events,
        ticks_per_s=n_ticks / max((last_reduced - first_tick) / 1e3, 1e-3),
        publish_ticks_per_s=n_ticks / max((last_tick - first_tick) / 1e3, 1e-3),
        wall_seconds=wall_seconds,
        tick_to_partial_ms=_quantiles(to_partial[matched]),
        tick_to_reduced_ms=_quantiles(to_reduced[matched]),
        reducer_hop_ms=_quantiles(to_reduced[matched] - to_partial[matched]),
        unmatched_ticks=int(np.count_nonzero(~matched)),
        worker_ticks_per_cpu_s=[w.ticks / max(w.cpu_s, 1e-9) for w in workers],
        worker_ticks_per_process_cpu_s=[w.ticks / max(w.process_cpu_s, 1e-9) for w in workers],
        reducer_index_partials_per_cpu_s=reducer.index_partials_in / max(reducer.cpu_s, 1e-9),
        reducer_index_partials_per_process_cpu_s=(
            reducer.index_partials_in / max(reducer.process_cpu_s, 1e-9)
        ),
        partial_bytes_per_tick=partial_bytes / n_ticks,
        index_partials_per_tick=reducer.index_partials_in / n_ticks,
        worker_stats=[dataclasses.asdict(w) for w in workers],
        reducer_stats=dataclasses.asdict(reducer),
        max_rel_diff=check.max_rel_diff,
        mismatched_indices=check.mismatched,
        worst_index=check.worst_index,
        largest_step=step,
        largest_step_index=universe.indices[step_index].code,
        missing_barriers=reducer.missing_barriers,
    )


def format_partial_sums(figures: PartialSumFigures) -> str:
    """The figures as text."""
    f = figures
    rate = "as fast as the publisher goes" if not f.rate else f"paced at {f.rate:,.0f} ticks/s"
    deaf = "none" if f.deaf_worker is None else f"worker {f.deaf_worker} ignores the control topic"
    lines = [
        f"partial sums: {f.workers} workers + 1 reducer over the broker, seed {f.seed}",
        f"world      : {f.securities:,} securities, {f.indices:,} indices, "
        f"{f.memberships:,} memberships; {f.ticks:,} ticks {rate}",
        f"events     : {'; '.join(f.events)} (broadcast; deaf: {deaf}; "
        f"reducer {'holds' if f.hold_events else 'does not hold'} an event's indices)",
        f"throughput : {f.ticks_per_s:,.0f} ticks/s end to end (broker clock), publisher "
        f"{f.publish_ticks_per_s:,.0f} ticks/s, wall {f.wall_seconds:.1f} s",
        "latency ms : tick->partial p50/p99/p99.9 "
        + "/".join(f"{v:g}" for v in f.tick_to_partial_ms)
        + ", tick->reduced "
        + "/".join(f"{v:g}" for v in f.tick_to_reduced_ms)
        + ", reducer hop "
        + "/".join(f"{v:g}" for v in f.reducer_hop_ms)
        + f" ({f.unmatched_ticks} ticks unmatched)",
        "workers    : "
        + ", ".join(f"{rate:,.0f}" for rate in f.worker_ticks_per_cpu_s)
        + " ticks per CPU-second of their own work ("
        + ", ".join(f"{rate:,.0f}" for rate in f.worker_ticks_per_process_cpu_s)
        + " of the whole process, Kafka client included)",
        f"reducer    : {f.reducer_index_partials_per_cpu_s:,.0f} index partials per CPU-second "
        f"of its own work ({f.reducer_index_partials_per_process_cpu_s:,.0f} whole process); "
        f"{f.index_partials_per_tick:.2f} index partials and {f.partial_bytes_per_tick:.1f} "
        "partial bytes per tick",
        f"levels     : {'MATCH' if f.levels_match else 'MISMATCH'}: {f.mismatched_indices} of "
        f"{f.indices:,} final levels differ from the single-process engine by more than 1e-9 "
        f"(max relative difference {f.max_rel_diff:.3e}, {f.worst_index}); largest step "
        f"between two reduced levels {f.largest_step:.3%} ({f.largest_step_index})",
    ]
    for event, workers in f.missing_barriers.items():
        lines.append(
            f"held       : event {event} never completed: worker(s) "
            f"{', '.join(map(str, workers))} passed its effective time without its barrier"
        )
    return "\n".join(lines)
