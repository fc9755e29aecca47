"""Weight capping: capped weights, cap factors, infeasible caps, and the scalar reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from engine.core.errors import CappingError
from engine.refdata.capping import cap_factors, capped_weights
from tests.support.scalar_reference import scalar_cap_factors, scalar_capped_weights
from tests.support.seed import SEED

ISSUE_CAPS = np.array([20e6, 30e6, 10e6, 5e6])


def weights_from_factors(ffmc: NDArray[np.float64], cf: NDArray[np.float64]) -> NDArray[np.float64]:
    capped = ffmc * cf
    weights: NDArray[np.float64] = capped / float(capped.sum())
    return weights


def assert_capping_invariants(ffmc: NDArray[np.float64], cap: float) -> None:
    weights = capped_weights(ffmc, cap)
    cf = cap_factors(ffmc, cap)
    assert weights.sum() == pytest.approx(1.0, rel=1e-12, abs=0.0)
    assert weights.max() <= cap * (1 + 1e-12)
    assert np.all(cf > 0.0)
    assert np.all(cf <= 1.0)
    # The factors reproduce the weights.
    np.testing.assert_allclose(weights_from_factors(ffmc, cf), weights, rtol=1e-12, atol=0.0)
    uncapped = weights < cap * (1 - 1e-9)
    # Every uncapped name keeps exactly its free-float capitalisation: CF exactly 1.
    assert np.all(cf[uncapped] == 1.0)
    # Capping keeps the ranking: a larger company never ends up with a smaller weight.
    order = np.argsort(ffmc, kind="stable")
    assert np.all(np.diff(weights[order]) >= -1e-15)
    # Uncapped names share the remaining weight in proportion to their capitalisation.
    if uncapped.any():
        per_unit = weights[uncapped] / ffmc[uncapped]
        np.testing.assert_allclose(per_unit, per_unit[0], rtol=1e-12)


def test_issue_example_weights() -> None:
    weights = capped_weights(ISSUE_CAPS, 0.30)
    np.testing.assert_allclose(weights, [0.30, 0.30, 0.8 / 3, 0.4 / 3], rtol=1e-12, atol=0.0)
    assert weights.round(4).tolist() == [0.3, 0.3, 0.2667, 0.1333]


def test_issue_example_cap_factors() -> None:
    cf = cap_factors(ISSUE_CAPS, 0.30)
    # The uncapped names 10M and 5M weigh 0.4 / 15M per unit; 20M capped at 0.3 -> 0.3/20M.
    np.testing.assert_allclose(cf, [0.5625, 0.375, 1.0, 1.0], rtol=1e-12, atol=0.0)
    assert cf[2] == 1.0
    assert cf[3] == 1.0
    np.testing.assert_allclose(
        weights_from_factors(ISSUE_CAPS, cf), [0.30, 0.30, 0.8 / 3, 0.4 / 3], rtol=1e-12
    )


def test_issue_example_invariants() -> None:
    assert_capping_invariants(ISSUE_CAPS, 0.30)


def test_cap_that_binds_nothing_leaves_all_factors_at_one() -> None:
    ffmc = np.array([3.0e9, 2.5e9, 2.0e9, 1.5e9, 1.0e9])
    assert (ffmc / ffmc.sum()).max() < 0.35
    np.testing.assert_array_equal(cap_factors(ffmc, 0.35), np.ones(5))
    np.testing.assert_allclose(capped_weights(ffmc, 0.35), ffmc / ffmc.sum(), rtol=1e-15)
    np.testing.assert_array_equal(cap_factors(ffmc, 1.0), np.ones(5))


def test_single_constituent_with_full_cap() -> None:
    np.testing.assert_array_equal(capped_weights(np.array([7.5e8]), 1.0), [1.0])
    np.testing.assert_array_equal(cap_factors(np.array([7.5e8]), 1.0), [1.0])


def test_cap_exactly_feasible_gives_equal_weights() -> None:
    ffmc = np.array([50.0, 40.0, 30.0, 20.0, 10.0])
    np.testing.assert_allclose(capped_weights(ffmc, 0.2), np.full(5, 0.2), rtol=1e-12)
    cf = cap_factors(ffmc, 0.2)
    np.testing.assert_allclose(weights_from_factors(ffmc, cf), np.full(5, 0.2), rtol=1e-12)


@pytest.mark.parametrize(("n", "cap"), [(3, 0.30), (4, 0.2), (9, 0.1), (1, 0.5), (79, 1 / 80)])
def test_infeasible_cap_raises(n: int, cap: float) -> None:
    ffmc = np.linspace(1.0, 2.0, n) * 1e9
    with pytest.raises(CappingError, match="cannot be met"):
        capped_weights(ffmc, cap)
    with pytest.raises(CappingError):
        cap_factors(ffmc, cap)


@pytest.mark.parametrize("cap", [0.0, -0.1, 1.5, float("nan")])
def test_cap_outside_zero_one_raises(cap: float) -> None:
    with pytest.raises(CappingError):
        capped_weights(np.array([1.0, 2.0, 3.0]), cap)


def test_eight_percent_cap_on_realistic_80_name_universe() -> None:
    rng = np.random.default_rng(SEED)
    # Heavy-tailed like a blue-chip index: a few giants and a long tail.
    ffmc = np.sort(np.exp(rng.normal(np.log(5e10), 1.6, 80)))[::-1]
    ffmc[:3] *= 20.0  # make sure the cap binds
    cap = 0.08
    raw = ffmc / ffmc.sum()
    assert raw.max() > cap
    weights = capped_weights(ffmc, cap)
    cf = cap_factors(ffmc, cap)
    assert_capping_invariants(ffmc, cap)
    capped = cf < 1.0
    assert capped.any()
    np.testing.assert_allclose(weights[capped], cap, rtol=1e-12)
    # The capped names are exactly the largest ones.
    assert capped[: np.count_nonzero(capped)].all()
    np.testing.assert_allclose(cf, scalar_cap_factors(ffmc.tolist(), cap), rtol=1e-12)


@pytest.mark.slow
@settings(derandomize=True, deadline=None, max_examples=300)
@given(
    st.lists(st.floats(1e3, 1e12), min_size=1, max_size=60),
    st.floats(0.01, 1.0),
)
def test_capping_matches_scalar_reference(caps: list[float], cap: float) -> None:
    ffmc = np.array(caps)
    assume(abs(cap * ffmc.size - 1.0) > 1e-9)  # the engine allows 1e-12 of rounding slack
    if cap * ffmc.size < 1.0:
        with pytest.raises(CappingError):
            cap_factors(ffmc, cap)
        return
    assert_capping_invariants(ffmc, cap)
    np.testing.assert_allclose(
        capped_weights(ffmc, cap), scalar_capped_weights(caps, cap), rtol=1e-11, atol=1e-15
    )
    np.testing.assert_allclose(cap_factors(ffmc, cap), scalar_cap_factors(caps, cap), rtol=1e-11)
