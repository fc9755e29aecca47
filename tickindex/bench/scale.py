"""``tickindex bench --scale``: a calculation agent's world beside the built-in family, one run.

The seeded world (``scale_world``) is written to temporary files by a child process, so this
process's peak RSS after loading is the loading's own, then LOADED from those files (timed).
Simulated ticks go through the engine on both universes in batches, timed the same way (wall
clock and CPU time), the two families taking turns in ``ROUNDS`` parts so that both run under
the same load from the rest of the machine; a sample of final levels is recomputed plainly
(``math.fsum`` of P x IS x FAF x CF / divisor) and a difference beyond ``LEVEL_TOLERANCE``
relative fails the run.
"""

from __future__ import annotations

import math
import multiprocessing
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from engine.core.errors import TickIndexError
from engine.kernel.calculator import IndexCalculator
from engine.kernel.columns import TickColumns
from engine.refdata.builtin import load_builtin_universe
from engine.refdata.reference_files import load_universe
from engine.refdata.universe import Universe, rows_by_index
from tickindex.bench.core import EngineRun, max_rss_bytes, simulated_ticks
from tickindex.bench.scale_world import WorldFiles, WorldShape, write_world

LEVEL_TOLERANCE = 1e-9
CHECKED_INDICES = 50
ROUNDS = 8
"""Each family applies its ticks in this many parts (whole batches), the families in turn."""


class LevelCheckError(TickIndexError):
    """An engine level differs from its plain recomputation beyond ``LEVEL_TOLERANCE``."""


@dataclass(frozen=True)
class FamilyFigures:
    """Engine throughput on one universe."""

    securities: int
    indices: int
    memberships: int
    ticks: int
    levels: int
    seconds: float
    ticks_per_s: float
    levels_per_s: float
    levels_per_tick: float
    cpu_seconds: float
    levels_per_cpu_s: float
    checked_indices: int
    max_rel_diff: float


@dataclass(frozen=True)
class ScaleBenchResult:
    """Figures of one ``bench --scale`` run (both universes timed in the same process)."""

    seed: int
    batch_size: int
    write_s: float
    load_s: float
    rss_before_load_bytes: int
    rss_after_load_bytes: int
    scale: FamilyFigures
    builtin: FamilyFigures
    ratio: float
    cpu_ratio: float
    max_rss_bytes: int


def run_scale_benchmark(shape: WorldShape, ticks: int, batch_size: int) -> ScaleBenchResult:
    """Write, load and run the world of ``shape`` and the built-in family on ``ticks`` ticks."""
    with tempfile.TemporaryDirectory(prefix="tickindex-scale-") as folder:
        started = time.perf_counter()
        files = _write_in_child(shape, Path(folder))
        write_s = time.perf_counter() - started
        rss_before = max_rss_bytes()
        started = time.perf_counter()
        universe = load_universe(files.indices, files.composition)
        load_s = time.perf_counter() - started
        rss_after = max_rss_bytes()
    runs = [
        EngineRun(IndexCalculator(family), simulated_ticks(family, ticks, shape.seed), batch_size)
        for family in (universe, load_builtin_universe())
    ]
    part = batch_size * max(1, math.ceil(ticks / batch_size / ROUNDS))
    for _ in range(0, ticks, part):
        for run in runs:
            run.advance(part)
    scale_figures, builtin_figures = (family_figures(run, shape.seed) for run in runs)
    return ScaleBenchResult(
        seed=shape.seed,
        batch_size=batch_size,
        write_s=write_s,
        load_s=load_s,
        rss_before_load_bytes=rss_before,
        rss_after_load_bytes=rss_after,
        scale=scale_figures,
        builtin=builtin_figures,
        ratio=scale_figures.levels_per_s / builtin_figures.levels_per_s,
        cpu_ratio=scale_figures.levels_per_cpu_s / builtin_figures.levels_per_cpu_s,
        max_rss_bytes=max_rss_bytes(),
    )


def _write_in_child(shape: WorldShape, folder: Path) -> WorldFiles:
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(write_world, shape, folder).result()


def family_figures(run: EngineRun, seed: int) -> FamilyFigures:
    """Figures of a finished run; a sample of its final levels checked (``check_levels``)."""
    universe, ticks = run.calculator.universe, run.ticks
    n_indices = len(universe.indices)
    sample = np.random.default_rng(seed).choice(
        n_indices, size=min(CHECKED_INDICES, n_indices), replace=False
    )
    prices = last_prices(universe, ticks)
    diff = check_levels(universe, run.calculator.levels, prices, np.sort(sample))
    return FamilyFigures(
        securities=universe.n_securities,
        indices=n_indices,
        memberships=len(universe.membership),
        ticks=len(ticks),
        levels=run.levels,
        seconds=run.seconds,
        ticks_per_s=len(ticks) / run.seconds,
        levels_per_s=run.levels / run.seconds,
        levels_per_tick=run.levels / len(ticks),
        cpu_seconds=run.cpu_seconds,
        levels_per_cpu_s=run.levels / run.cpu_seconds,
        checked_indices=int(sample.size),
        max_rel_diff=diff,
    )


def last_prices(universe: Universe, ticks: TickColumns) -> NDArray[np.float64]:
    """Price per security after ``ticks``: its last tick, else its previous close."""
    prices = universe.prev_close.astype(np.float64, copy=True)
    reversed_security = ticks.security[::-1]
    traded, first_from_end = np.unique(reversed_security, return_index=True)
    prices[traded] = ticks.price[::-1][first_from_end]
    return prices


def check_levels(
    universe: Universe,
    levels: NDArray[np.float64],
    prices: NDArray[np.float64],
    sample: NDArray[np.int64],
) -> float:
    """Largest relative difference of ``levels`` from a plain recomputation on ``sample``.

    Raises
    ------
    LevelCheckError
        When an index differs by more than ``LEVEL_TOLERANCE`` relative.
    """
    m = universe.membership
    rows_of = rows_by_index(m.index, len(universe.indices))
    worst = 0.0
    for index_id in sample.tolist():
        rows = rows_of(index_id)
        terms = prices[m.security[rows]] * m.issued_shares[rows] * m.faf[rows] * m.cap_factor[rows]
        expected = math.fsum(terms.tolist()) / float(universe.divisors[index_id])
        diff = abs(float(levels[index_id]) - expected) / abs(expected)
        if not diff <= LEVEL_TOLERANCE:
            code = universe.indices[index_id].code
            raise LevelCheckError(
                f"level check failed: {code} is {float(levels[index_id])!r}, a plain "
                f"recomputation gives {expected!r} (relative difference {diff:.3e})"
            )
        worst = max(worst, diff)
    return worst
