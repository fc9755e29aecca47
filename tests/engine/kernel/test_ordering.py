"""``stable_order`` is numpy's stable argsort, whatever the id width."""

from __future__ import annotations

import numpy as np
import pytest

from engine.kernel.ordering import stable_order

WIDTHS = [1, 400, 1 << 16, (1 << 16) + 1, 100_000, 1 << 32, (1 << 32) + 1, 1 << 40]


@pytest.mark.parametrize("high", WIDTHS)
@pytest.mark.parametrize("with_bound", [False, True])
def test_stable_order_equals_stable_argsort(
    rng: np.random.Generator, high: int, with_bound: bool
) -> None:
    ids = rng.integers(0, high, size=int(rng.integers(0, 5000)), dtype=np.int64)
    got = stable_order(ids, high if with_bound else None)
    np.testing.assert_array_equal(got, np.argsort(ids, kind="stable"))
