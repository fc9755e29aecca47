"""``IndexCalculator.last_ranges``: each batch's highest and lowest level per index moved."""

from __future__ import annotations

import numpy as np
import pytest

from engine.kernel.calculator import IndexCalculator
from engine.kernel.level_updates import BatchRanges
from engine.refdata.builtin import load_builtin_universe
from producers.simulator import MarketSimulator
from tests.support.seed import SEED


@pytest.mark.parametrize("size", [1, 7, 500, 10_000])
def test_ranges_are_the_max_and_min_of_the_batch_levels_per_index(size: int) -> None:
    print(f"seed {SEED}")
    universe = load_builtin_universe()
    calculator = IndexCalculator(universe)
    calculator.track_ranges = True
    simulator = MarketSimulator(universe, SEED + size, start_ns=1_795_138_200_000_000_000)
    for _ in range(3):
        ticks = simulator.next_batch(size)
        updates = calculator.apply(ticks.security, ticks.price, ticks.ts_event)
        ranges = calculator.last_ranges
        assert ranges is not None
        moved = np.unique(updates.index)
        assert ranges.index.tolist() == moved.tolist()
        for position, index in enumerate(moved.tolist()):
            levels = updates.level[updates.index == index]
            assert ranges.high[position] == levels.max()
            assert ranges.low[position] == levels.min()


def test_no_ranges_unless_asked_for_or_for_a_batch_that_moved_nothing() -> None:
    universe = load_builtin_universe()
    calculator = IndexCalculator(universe)
    ticks = MarketSimulator(universe, SEED, start_ns=1_795_138_200_000_000_000).next_batch(50)
    calculator.apply(ticks.security, ticks.price, ticks.ts_event)
    assert _ranges(calculator) is None
    calculator.track_ranges = True
    calculator.apply(ticks.security, ticks.price, ticks.ts_event)
    assert _ranges(calculator) is not None
    calculator.apply(ticks.security[:0], ticks.price[:0], ticks.ts_event[:0])
    assert _ranges(calculator) is None  # never the previous batch's


def _ranges(calculator: IndexCalculator) -> BatchRanges | None:
    return calculator.last_ranges
