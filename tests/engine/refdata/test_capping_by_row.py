"""Capping many indices of equal size at once: bitwise what capping each alone gives."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from engine.core.errors import CappingError
from engine.refdata.capping import cap_factors, cap_factors_by_row, capped_weights_by_row
from engine.refdata.universe import IndexSpec, Membership, build_universe

TOLERANCE = 1e-12


def one_index_cap_factors(ffmc: NDArray[np.float64], cap: float) -> NDArray[np.float64]:
    """The capping of one index as it was written before rows were grouped (the oracle)."""
    weights = ffmc / ffmc.sum()
    capped = np.zeros(ffmc.size, dtype=bool)
    while True:
        breaching = ~capped & (weights > cap * (1.0 + TOLERANCE))
        if not breaching.any():
            break
        capped |= breaching
        free_weight = 1.0 - cap * np.count_nonzero(capped)
        uncapped = np.where(capped, 0.0, ffmc)
        weights = np.where(capped, cap, free_weight * uncapped / uncapped.sum())
    raw = weights / ffmc
    factors: NDArray[np.float64] = raw / raw.max()
    factors[np.isclose(factors, 1.0, rtol=1e-12, atol=0.0)] = 1.0
    return factors


@pytest.mark.parametrize("size", [1, 7, 8, 50, 129, 257, 500])
def test_rows_capped_together_are_bitwise_each_capped_alone(size: int) -> None:
    rng = np.random.default_rng(size)
    ffmc = np.exp(rng.normal(0.0, 2.5, (40, size)))
    caps = np.maximum(rng.choice([0.05, 0.1, 0.3, 1.0], 40), 1.0 / size)
    grouped = cap_factors_by_row(ffmc, caps)
    for row in range(40):
        alone = one_index_cap_factors(ffmc[row], float(caps[row]))
        np.testing.assert_array_equal(grouped[row], alone)
        np.testing.assert_array_equal(cap_factors(ffmc[row], float(caps[row])), alone)
    weights = capped_weights_by_row(ffmc, caps)
    assert np.all(weights <= caps[:, None] * (1 + TOLERANCE))


def test_the_first_infeasible_row_is_reported() -> None:
    ffmc = np.ones((3, 5))
    with pytest.raises(CappingError, match=r"a cap of 0\.1 cannot be met by 5 constituents"):
        capped_weights_by_row(ffmc, np.array([0.5, 0.1, 0.15]))
    with pytest.raises(CappingError, match=r"weight cap must be in \(0, 1\], got 1.5"):
        capped_weights_by_row(ffmc, np.array([0.5, 1.5, 0.1]))


def test_build_universe_reports_the_first_infeasible_index() -> None:
    specs = [
        IndexSpec("OK", "ok", 1000.0, 0.5),
        IndexSpec("BIG", "big", 1000.0, 0.1),  # 5 constituents cannot meet 10%
        IndexSpec("SMALL", "small", 1000.0, 0.2),  # 3 constituents cannot meet 20%
    ]
    index = np.array([0] * 5 + [1] * 5 + [2] * 3, dtype=np.int32)
    security = np.array([0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1, 2], dtype=np.int32)
    n = index.size
    membership = Membership(index, security, np.ones(n), np.ones(n), np.full(n, np.nan))
    with pytest.raises(CappingError, match=r"index BIG: a cap of 0\.1") as caught:
        build_universe(specs, list("ABCDE"), np.arange(1.0, 6.0), membership)
    assert caught.value.index_code == "BIG"


def test_build_universe_caps_indices_of_many_sizes_as_each_alone() -> None:
    rng = np.random.default_rng(11)
    sizes = rng.integers(10, 40, 60)
    specs = [IndexSpec(f"I{k}", "", 1000.0, 0.15 if k % 2 else None) for k in range(60)]
    index = np.repeat(np.arange(60, dtype=np.int32), sizes)
    security = np.concatenate([rng.choice(200, size, replace=False) for size in sizes])
    shares = np.exp(rng.normal(18.0, 2.0, index.size))
    prices = np.exp(rng.normal(3.0, 1.0, 200))
    order = rng.permutation(index.size)  # rows of an index need not be contiguous
    membership = Membership(
        index[order],
        security[order].astype(np.int32),
        shares[order],
        np.ones(index.size),
        np.where(index[order] % 2 == 1, np.nan, 1.0),
    )
    universe = build_universe(specs, [f"S{k}" for k in range(200)], prices, membership)
    cf = universe.declared.cap_factor
    for k in range(1, 60, 2):
        rows = np.flatnonzero(membership.index == k)
        ffmc = prices[membership.security[rows]] * membership.issued_shares[rows]
        np.testing.assert_array_equal(cf[rows], one_index_cap_factors(ffmc, 0.15))
