"""``IndexCalculator.apply`` takes integer security ids only: a code can never pass for an id."""

from __future__ import annotations

import numpy as np
import pytest

from engine.kernel.calculator import IndexCalculator
from engine.refdata.builtin import load_builtin_universe


def test_calculator_never_takes_strings_as_ids() -> None:
    calculator = IndexCalculator(load_builtin_universe())
    before = calculator.prices.copy()
    with pytest.raises(TypeError, match="security must be integer ids"):
        calculator.apply(["0005"], [100.0])  # once taken as id 5
    np.testing.assert_array_equal(calculator.prices, before)
    with pytest.raises(TypeError, match="security must be integer ids"):
        calculator.apply(np.array([5.0]), [100.0])
    assert len(calculator.apply([], [])) == 0
    assert len(calculator.apply(np.array([5], dtype=np.uint16), [100.0])) > 0
