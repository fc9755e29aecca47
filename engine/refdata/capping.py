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
    n = free_float_caps.size
    if not 0.0 < cap <= 1.0:
        raise CappingError(f"weight cap must be in (0, 1], got {cap}")
    if cap * n < 1.0 - _TOLERANCE:
        raise CappingError(f"a cap of {cap} cannot be met by {n} constituents")
    weights: NDArray[np.float64] = free_float_caps / free_float_caps.sum()
    capped = np.zeros(n, dtype=bool)
    while True:
        breaching = ~capped & (weights > cap * (1.0 + _TOLERANCE))
        if not breaching.any():
            return weights
        capped |= breaching
        free_weight = 1.0 - cap * np.count_nonzero(capped)
        uncapped_caps = np.where(capped, 0.0, free_float_caps)
        weights = np.where(capped, cap, free_weight * uncapped_caps / uncapped_caps.sum())


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
    weights = capped_weights(free_float_caps, cap)
    raw = weights / free_float_caps
    # Every uncapped name has the same weight per unit of capitalisation; scale by that.
    scale = raw.max()
    factors: NDArray[np.float64] = raw / scale
    factors[np.isclose(factors, 1.0, rtol=1e-12, atol=0.0)] = 1.0
    return factors
