"""``IndexCalculator.member_weights``: the current membership rows, grouped by index, read-only."""

from __future__ import annotations

import numpy as np
import pytest

from engine.kernel.calculator import IndexCalculator
from engine.maintenance.adjustments import apply_event
from engine.maintenance.events import SharesChange
from engine.refdata.builtin import load_builtin_universe
from engine.refdata.universe import Universe


def _rows(
    index: np.ndarray, security: np.ndarray, weight: np.ndarray
) -> list[tuple[int, int, float]]:
    return sorted(zip(index.tolist(), security.tolist(), weight.tolist(), strict=True))


def _universe_rows(universe: Universe) -> list[tuple[int, int, float]]:
    m = universe.membership
    return _rows(m.index, m.security, universe.weights())


def test_member_weights_are_the_universe_rows_grouped_by_index() -> None:
    universe = load_builtin_universe()
    calculator = IndexCalculator(universe)
    index, security, weight = calculator.member_weights()
    assert _rows(index, security, weight) == _universe_rows(universe)
    assert np.all(np.diff(index) >= 0)
    for array in (index, security, weight):
        with pytest.raises(ValueError, match="read-only"):
            array[0] = array[1]


def test_member_weights_follow_an_event_and_leave_the_levels_alone() -> None:
    universe = load_builtin_universe()
    calculator = IndexCalculator(universe)
    calculator.apply([1, 2], [50.0, 60.0])
    levels = calculator.levels.copy()
    calculator.member_weights()
    np.testing.assert_array_equal(calculator.levels, levels)
    target = int(universe.membership.security[0])
    _, security_before, weight_before = calculator.member_weights()
    code = universe.securities[target]
    apply_event(calculator, SharesChange(effective=1, security=code, issued_shares=1e9))
    index, security, weight = calculator.member_weights()
    assert _rows(index, security, weight) == _universe_rows(calculator.universe)
    before = weight_before[security_before == target]
    after = weight[security == target]
    assert before.size == after.size > 0
    assert not np.any(before == after)
