"""Weight capping with iterative redistribution, expressed as cap factors."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from engine.core.errors import CappingError

_TOLERANCE = 1e-12


def capped_weights(free_float_caps: NDArray[np.float64], cap: float) -> NDArray[np.float64]:
    """Weights after capping every constituent at ``cap`` with pro-rata redistribution.

    Names breaching the cap are set to the cap, the excess is spread over the uncapped names in
    proportion to their free-float capitalisation, and this repeats until no name breaches.

    Parameters
    ----------
    free_float_caps : ndarray of float64
        Price x issued shares x FAF of each constituent; all positive.
    cap : float
        Maximum weight, a fraction in (0, 1].

    Returns
    -------
    ndarray of float64
        Weights summing to 1, none above ``cap`` (beyond rounding).

    Raises
    ------
    CappingError
        When ``cap`` times the number of constituents is below 1, so no weights can meet it.
    """
    return capped_weights_by_row(free_float_caps[None, :], np.array([cap])).reshape(-1)


def feasible(caps: NDArray[np.float64], constituents: int | NDArray[np.int64]) -> NDArray[np.bool_]:
    """Whether each cap is in (0, 1] and can be met by its number of constituents."""
    in_range = (caps > 0.0) & (caps <= 1.0)
    valid: NDArray[np.bool_] = in_range & (caps * constituents >= 1.0 - _TOLERANCE)
    return valid


def capped_weights_by_row(
    free_float_caps: NDArray[np.float64], caps: NDArray[np.float64]
) -> NDArray[np.float64]:
    """``capped_weights`` of many indices of equal size at once, one index per row.

    Each row goes through exactly the steps ``capped_weights`` takes on it alone (a row sum of
    a 2-D array is the same pairwise sum as the sum of that row), so the results are bitwise
    the same; rows that have converged keep their weights while others go on.

    Parameters
    ----------
    free_float_caps : ndarray of float64, shape (indices, constituents)
        Free-float capitalisations, one index per row; all positive.
    caps : ndarray of float64, shape (indices,)
        Maximum weight of each index, a fraction in (0, 1].

    Raises
    ------
    CappingError
        For the first row whose cap is out of range or cannot be met.
    """
    n = free_float_caps.shape[1]
    bad = np.flatnonzero(~feasible(caps, n))
    if bad.size:
        cap = float(caps[bad[0]])
        if not 0.0 < cap <= 1.0:
            raise CappingError(f"weight cap must be in (0, 1], got {cap}")
        raise CappingError(f"a cap of {cap} cannot be met by {n} constituents")
    weights: NDArray[np.float64] = free_float_caps / free_float_caps.sum(axis=1, keepdims=True)
    limit = (caps * (1.0 + _TOLERANCE))[:, None]
    capped = np.zeros(free_float_caps.shape, dtype=bool)
    while True:
        breaching = ~capped & (weights > limit)
        active = np.asarray(breaching.any(axis=1))
        if not active.any():
            return weights
        capped |= breaching
        free_weight = 1.0 - caps * np.count_nonzero(capped, axis=1)
        uncapped_caps = np.where(capped, 0.0, free_float_caps)
        redistributed = (
            free_weight[:, None] * uncapped_caps / uncapped_caps.sum(axis=1, keepdims=True)
        )
        stepped = np.where(capped, caps[:, None], redistributed)
        weights = np.where(active[:, None], stepped, weights)


def cap_factors(free_float_caps: NDArray[np.float64], cap: float) -> NDArray[np.float64]:
    """Cap factors that turn free-float capitalisations into capped weights.

    The factors are normalised so that uncapped names have a factor of exactly 1 and capped names
    a factor below 1: ``weight_i = ffmc_i * cf_i / sum(ffmc * cf)``.

    Parameters
    ----------
    free_float_caps, cap
        As for ``capped_weights``.

    Returns
    -------
    ndarray of float64
        One cap factor per constituent, in (0, 1].

    Examples
    --------
    >>> cap_factors(np.array([20e6, 30e6, 10e6, 5e6]), 0.30).round(4).tolist()
    [0.5625, 0.375, 1.0, 1.0]
    """
    return cap_factors_by_row(free_float_caps[None, :], np.array([cap])).reshape(-1)


def cap_factors_by_row(
    free_float_caps: NDArray[np.float64], caps: NDArray[np.float64]
) -> NDArray[np.float64]:
    """``cap_factors`` of many indices of equal size at once (as ``capped_weights_by_row``)."""
    weights = capped_weights_by_row(free_float_caps, caps)
    raw = weights / free_float_caps
    # Every uncapped name has the same weight per unit of capitalisation; scale by that.
    scale = raw.max(axis=1, keepdims=True)
    factors: NDArray[np.float64] = raw / scale
    factors[np.isclose(factors, 1.0, rtol=1e-12, atol=0.0)] = 1.0
    return factors
