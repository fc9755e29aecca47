"""Core throughput benchmark: the vectorised calculator against a naive per-tick recompute."""

from __future__ import annotations

import time
import tracemalloc
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from engine.kernel.calculator import IndexCalculator
from engine.kernel.columns import TickColumns
from engine.refdata.universe import Universe, rows_by_index
from producers.simulator import MarketSimulator

START_NS = 1_795_138_200_000_000_000  # 2026-11-20 09:30 HKT, event time of the simulated ticks


def simulated_ticks(universe: Universe, n: int, seed: int) -> TickColumns:
    """``n`` seeded simulated ticks over the whole universe, from ``START_NS``."""
    return MarketSimulator(universe, seed, start_ns=START_NS).next_batch(n)


def levels_per_security(universe: Universe) -> NDArray[np.int64]:
    """Levels that one tick of each security id moves (the number of its indices)."""
    return np.bincount(universe.membership.security, minlength=len(universe.securities))


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
        n_indices, n_securities = len(universe.indices), universe.n_securities
        rows_of = rows_by_index(m.index, n_indices)
        self.members = [rows_of(k) for k in range(n_indices)]
        self.member_security = [m.security[rows] for rows in self.members]
        self.member_weight = [weights[rows] for rows in self.members]
        # The indices of each security, ascending: one sort of the (security, index) pairs.
        pairs = np.unique(m.security.astype(np.int64) * n_indices + m.index)
        ends = np.cumsum(np.bincount(pairs // n_indices, minlength=n_securities))
        self.indices_of = [part.tolist() for part in np.split(pairs % n_indices, ends[:-1])]

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
    naive_ticks_per_s: float | None
    ratio: float | None
    naive_max_rel_diff: float
    peak_traced_bytes: int
    max_rss_bytes: int


@dataclass
class EngineRun:
    """A calculator applying ``ticks`` in batches of ``batch_size``, a part at a time, timed.

    Both clocks run only while the engine does: wall clock, and this process's CPU time (what
    one core spent on it, whatever else the machine runs meanwhile).
    """

    calculator: IndexCalculator
    ticks: TickColumns
    batch_size: int
    applied: int = 0
    levels: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0

    def advance(self, n: int) -> None:
        """Apply the next ``n`` ticks (fewer if fewer are left), batched as in one pass."""
        stop = min(self.applied + n, len(self.ticks))
        started, cpu_started = time.perf_counter(), time.process_time()
        self.levels += _apply_in_batches(
            self.calculator, self.ticks, self.batch_size, self.applied, stop
        )
        self.seconds += time.perf_counter() - started
        self.cpu_seconds += time.process_time() - cpu_started
        self.applied = stop


def time_engine(
    universe: Universe, ticks: TickColumns, batch_size: int
) -> tuple[float, int, IndexCalculator]:
    """Seconds to compute every level of ``ticks`` in batches, the levels, the final state."""
    run = EngineRun(IndexCalculator(universe), ticks, batch_size)
    run.advance(len(ticks))
    return run.seconds, run.levels, run.calculator


def _apply_in_batches(
    calculator: IndexCalculator, ticks: TickColumns, batch_size: int, start: int, stop: int
) -> int:
    """Apply ``ticks[start:stop]`` in batches of ``batch_size``; the levels computed."""
    levels = 0
    for lo in range(start, stop, batch_size):
        hi = min(lo + batch_size, stop)
        levels += len(calculator.apply(ticks.security[lo:hi], ticks.price[lo:hi]))
    return levels


def run_core_benchmark(
    universe: Universe, ticks: TickColumns, batch_size: int, naive_ticks: int
) -> CoreBenchResult:
    """Time the engine over all ``ticks`` and the naive recompute over the first ``naive_ticks``.

    Both start from the same state. The naive levels are compared with the engine's on the
    shared prefix (``naive_max_rel_diff``); with ``naive_ticks`` 0 the naive figures are None.
    Peak memory is traced in a separate pass so that tracing does not distort the timing.
    """
    n = len(ticks)
    engine_s, levels, _ = time_engine(universe, ticks, batch_size)

    naive_n = min(naive_ticks, n)
    naive_ticks_per_s, naive_diff = _naive_figures(universe, ticks, naive_n)

    tracemalloc.start()
    _apply_in_batches(IndexCalculator(universe), ticks, batch_size, 0, min(n, 20 * batch_size))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    ticks_per_s = n / engine_s
    return CoreBenchResult(
        securities=len(universe.securities),
        indices=len(universe.indices),
        ticks=n,
        batch_size=batch_size,
        levels_per_tick=levels / n,
        ticks_per_s=ticks_per_s,
        naive_ticks=naive_n,
        naive_ticks_per_s=naive_ticks_per_s,
        ratio=None if naive_ticks_per_s is None else ticks_per_s / naive_ticks_per_s,
        naive_max_rel_diff=naive_diff,
        peak_traced_bytes=peak,
        max_rss_bytes=max_rss_bytes(),
    )


def _naive_figures(universe: Universe, ticks: TickColumns, n: int) -> tuple[float | None, float]:
    """Naive ticks/s over the first ``n`` ticks (None for none) and its largest difference."""
    if n == 0:
        return None, 0.0
    naive = NaiveRecompute(universe)
    started = time.perf_counter()
    naive_levels = naive.run(ticks.security[:n], ticks.price[:n])
    naive_s = time.perf_counter() - started
    check = IndexCalculator(universe).apply(ticks.security[:n], ticks.price[:n])
    diff = np.abs(check.level - np.array(naive_levels)) / np.abs(check.level)
    return n / naive_s, float(diff.max()) if diff.size else 0.0


def max_rss_bytes() -> int:
    """Largest resident set size of this process so far, in bytes."""
    # Unix only, so imported here: the CLI imports this module on Windows too.
    import resource  # noqa: PLC0415

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
