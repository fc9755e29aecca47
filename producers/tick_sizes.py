"""The HKEX spread table: the minimum price step of a stock as a function of its price."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

# (upper bound of the price band, inclusive; tick size in the band). Every band bound is a
# multiple of the tick sizes on both sides of it, so rounding up into the next band stays on
# that band's grid.
HKEX_SPREAD_TABLE: tuple[tuple[float, float], ...] = (
    (0.25, 0.001),
    (0.50, 0.005),
    (10.0, 0.01),
    (20.0, 0.02),
    (100.0, 0.05),
    (200.0, 0.10),
    (500.0, 0.20),
    (1000.0, 0.50),
    (2000.0, 1.00),
    (5000.0, 2.00),
    (float("inf"), 5.00),
)

_BAND_UPPER = np.array([upper for upper, _ in HKEX_SPREAD_TABLE], dtype=np.float64)
_BAND_TICK = np.array([tick for _, tick in HKEX_SPREAD_TABLE], dtype=np.float64)

MIN_PRICE = _BAND_TICK[0]
"""The lowest price the table allows: one tick of the lowest band."""

# Every tick size is a whole number of thousandths; rounding the product to 3 decimals gives
# the double nearest to the decimal price (3 x 0.1 would otherwise print as 0.30000000000000004).
_PRICE_DECIMALS = 3


def tick_size(price: ArrayLike) -> NDArray[np.float64]:
    """Tick size of the band each price falls in.

    Parameters
    ----------
    price : array_like of float
        Positive prices.

    Returns
    -------
    ndarray of float64
        The HKEX minimum price step at each price.
    """
    band = np.searchsorted(_BAND_UPPER, np.asarray(price, dtype=np.float64), side="left")
    return _BAND_TICK[np.minimum(band, _BAND_TICK.size - 1)]


def round_to_tick(price: ArrayLike) -> NDArray[np.float64]:
    """Round prices to the nearest valid HKEX price, never below the lowest tick.

    Parameters
    ----------
    price : array_like of float
        Positive prices.

    Returns
    -------
    ndarray of float64
        Prices on the spread table grid, each at least ``MIN_PRICE``.
    """
    px = np.maximum(np.asarray(price, dtype=np.float64), MIN_PRICE)
    step = tick_size(px)
    rounded: NDArray[np.float64] = np.round(np.rint(px / step) * step, _PRICE_DECIMALS)
    return rounded


def quotes_around(price: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The tightest valid bid and ask around each price: bid <= price < ask, one tick apart.

    Parameters
    ----------
    price : array_like of float
        Positive prices.

    Returns
    -------
    bid, ask : ndarray of float64
        The highest valid price at or below ``price`` (at least ``MIN_PRICE``) and the next
        valid price above that bid.
    """
    px = np.maximum(np.asarray(price, dtype=np.float64), MIN_PRICE)
    step = tick_size(px)
    # The epsilon keeps a price already on the grid from flooring one tick down on a
    # representation error (10.02 / 0.02 == 500.99999999999994).
    bid = np.round(np.floor(px / step + 1e-9) * step, _PRICE_DECIMALS)
    band_above_bid = np.searchsorted(_BAND_UPPER, bid, side="right")
    step_up = _BAND_TICK[np.minimum(band_above_bid, _BAND_TICK.size - 1)]
    return bid, np.round(bid + step_up, _PRICE_DECIMALS)


def on_tick_grid(price: ArrayLike) -> NDArray[np.bool_]:
    """Whether each price is a valid HKEX price (a whole number of ticks of its band)."""
    px = np.asarray(price, dtype=np.float64)
    ticks = px / tick_size(px)
    return np.abs(ticks - np.rint(ticks)) < 1e-6
