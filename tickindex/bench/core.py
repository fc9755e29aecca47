"""Core throughput benchmark: the vectorised calculator against a naive per-tick recompute."""

from __future__ import annotations

import time
import tracemalloc
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from engine.kernel.calculator import IndexCalculator
from engine.kernel.columns import TickColumns
from engine.refdata.universe import Universe


class NaiveRecompute:
    """The baseline: after each tick, recompute every affected index from all its constituents.

    A Python loop over ticks with one numpy dot product per affected index: what a first
    implementation would do, and a check on the engine's numbers.
    """

    def __init__(self, universe: Universe) -> None:
        m = universe.membership
        self.prices = universe.prev_close.copy()
        self.divisors = universe.divisors
        weights = universe.weights()
        self.members = [np.flatnonzero(m.index == k) for k in range(len(universe.indices))]
        self.member_security = [m.security[rows] for rows in self.members]
        self.member_weight = [weights[rows] for rows in self.members]
        self.indices_of = [
            np.unique(m.index[m.security == s]).tolist() for s in range(len(universe.securities))
        ]

    def run(self, security: NDArray[np.int64], price: NDArray[np.float64]) -> list[float]:
        """Levels after every tick, in the engine's (tick, index id) order."""
        levels: list[float] = []
        prices = self.prices
        for s, p in zip(security.tolist(), price.tolist(), strict=True):
            prices[s] = p
            for k in self.indices_of[s]:
                capitalisation = float(prices[self.member_security[k]] @ self.member_weight[k])
                levels.append(capitalisation / self.divisors[k])
        return levels


@dataclass(frozen=True)
class CoreBenchResult:
    """Figures of one core benchmark run (all measured in the same process)."""

    securities: int
    indices: int
    ticks: int
    batch_size: int
    levels_per_tick: float
    ticks_per_s: float
    naive_ticks: int
    naive_ticks_per_s: float
    ratio: float
    naive_max_rel_diff: float
    peak_traced_bytes: int
    max_rss_bytes: int


def run_core_benchmark(
    universe: Universe, ticks: TickColumns, batch_size: int, naive_ticks: int
) -> CoreBenchResult:
    """Time the engine over all ``ticks`` and the naive recompute over the first ``naive_ticks``.

    Both start from the same state. The naive levels are compared with the engine's on the
    shared prefix (``naive_max_rel_diff``). Peak memory is traced in a separate pass so that
    tracing does not distort the timing.
    """
    calculator = IndexCalculator(universe)
    n = len(ticks)
    levels = 0
    started = time.perf_counter()
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        levels += len(calculator.apply(ticks.security[start:stop], ticks.price[start:stop]))
    engine_s = time.perf_counter() - started

    naive_n = min(naive_ticks, n)
    naive = NaiveRecompute(universe)
    started = time.perf_counter()
    naive_levels = naive.run(ticks.security[:naive_n], ticks.price[:naive_n])
    naive_s = time.perf_counter() - started

    check = IndexCalculator(universe).apply(ticks.security[:naive_n], ticks.price[:naive_n])
    diff = np.abs(check.level - np.array(naive_levels)) / np.abs(check.level)

    tracemalloc.start()
    traced = IndexCalculator(universe)
    for start in range(0, min(n, 20 * batch_size), batch_size):
        stop = min(start + batch_size, n)
        traced.apply(ticks.security[start:stop], ticks.price[start:stop])
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    ticks_per_s = n / engine_s
    naive_ticks_per_s = naive_n / naive_s
    return CoreBenchResult(
        securities=len(universe.securities),
        indices=len(universe.indices),
        ticks=n,
        batch_size=batch_size,
        levels_per_tick=levels / n,
        ticks_per_s=ticks_per_s,
        naive_ticks=naive_n,
        naive_ticks_per_s=naive_ticks_per_s,
        ratio=ticks_per_s / naive_ticks_per_s,
        naive_max_rel_diff=float(diff.max()) if diff.size else 0.0,
        peak_traced_bytes=peak,
        max_rss_bytes=_max_rss_bytes(),
    )


def _max_rss_bytes() -> int:
    # Unix only, so imported here: the CLI imports this module on Windows too.
    import resource  # noqa: PLC0415

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
