"""The futures hedge line of a sleeve: HSI and Mini-HSI contracts that neutralise its beta.

A sleeve of notional ``N`` (HK$) long index A, with beta ``beta`` of A's returns on the hedge
index's, is beta-neutral when short ``H = beta x N`` of the hedge index. At hedge index level
``L``, one HSI future is worth ``50 x L`` and one Mini-HSI future ``10 x L`` (HKEX contract
multipliers, HK$ per index point). The hedge takes:

- ``futures``: the whole HSI futures that fit, ``trunc(H / (50 x L))`` (toward zero);
- ``minis``: the rest in Mini-HSI futures rounded to the nearest one,
  ``rint(rem / (10 x L))`` with ``rem = H - trunc(...) x 50 x L`` (a tie rounds to even);
- ``residual_notional = H - futures x 50 x L - minis x 10 x L`` in contract terms before the
  sign below: the part of ``H`` left unhedged, ``|residual| <= 5 x L``.

Published contract counts are signed positions: negative (short) for a positive beta, positive
(long) for a negative one; ``residual_notional`` keeps the sign of ``H`` (positive: under-hedged
short). No hedge line exists when beta or ``L`` is not finite, ``L`` is not positive, or the
notional is not finite: NaN/zero levels never raise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from engine.core.columnar import Columnar

HSI_FUTURES_MULTIPLIER = 50.0
"""HK$ per index point of one Hang Seng Index future (HKEX contract specification)."""
MINI_HSI_FUTURES_MULTIPLIER = 10.0
"""HK$ per index point of one Mini-Hang Seng Index future (HKEX contract specification)."""
MAX_CONTRACTS = 1e12
"""More contracts than this is no hedge but bad data (a level near zero): no line."""


@dataclass(frozen=True)
class HedgeLines(Columnar):
    """Hedge lines, one row per sleeve (pair), as parallel columns.

    Attributes
    ----------
    valid : ndarray of bool
        False where no hedge exists (beta or level not finite, level not positive, notional not
        finite); the other columns of such a row are NaN, or 0 for the contract counts.
    sleeve_notional : ndarray of float64
        ``N``, HK$ long the sleeve's index.
    beta : ndarray of float64
        Beta the hedge neutralises.
    hedge_level : ndarray of float64
        ``L``, the hedge index's level.
    hedge_notional : ndarray of float64
        ``H = beta x N``, HK$ of the hedge index to short.
    futures, minis : ndarray of int64
        Signed HSI and Mini-HSI futures positions (negative: short).
    residual_notional : ndarray of float64
        ``H`` minus the notional the contracts short, ``|residual| <= 5 x L``.
    """

    valid: NDArray[np.bool_]
    sleeve_notional: NDArray[np.float64]
    beta: NDArray[np.float64]
    hedge_level: NDArray[np.float64]
    hedge_notional: NDArray[np.float64]
    futures: NDArray[np.int64]
    minis: NDArray[np.int64]
    residual_notional: NDArray[np.float64]

    def line(self, row: int) -> HedgeLine | None:
        """Row ``row`` as a ``HedgeLine``, None where no hedge exists."""
        if not self.valid[row]:
            return None
        return HedgeLine(
            sleeve_notional=float(self.sleeve_notional[row]),
            beta=float(self.beta[row]),
            hedge_level=float(self.hedge_level[row]),
            hedge_notional=float(self.hedge_notional[row]),
            futures=int(self.futures[row]),
            minis=int(self.minis[row]),
            residual_notional=float(self.residual_notional[row]),
        )


@dataclass(frozen=True)
class HedgeLine:
    """One sleeve's hedge (the fields of a ``HedgeLines`` row)."""

    sleeve_notional: float
    beta: float
    hedge_level: float
    hedge_notional: float
    futures: int
    minis: int
    residual_notional: float


def hedge_lines(beta: ArrayLike, sleeve_notional: ArrayLike, hedge_level: ArrayLike) -> HedgeLines:
    """The beta-neutral futures hedge of each sleeve, vectorised (see the module docstring).

    Parameters
    ----------
    beta, sleeve_notional, hedge_level : array_like of float
        Per sleeve (broadcast together): beta on the hedge index, HK$ notional long, and the
        hedge index's level.

    Returns
    -------
    HedgeLines
        One row per sleeve; ``valid`` False where no hedge exists.
    """
    b, n, level = np.broadcast_arrays(
        np.asarray(beta, dtype=np.float64),
        np.asarray(sleeve_notional, dtype=np.float64),
        np.asarray(hedge_level, dtype=np.float64),
    )
    b, n, level = b.ravel(), n.ravel(), level.ravel()
    with np.errstate(all="ignore"):
        hedge = b * n
        future_value = HSI_FUTURES_MULTIPLIER * level
        mini_value = MINI_HSI_FUTURES_MULTIPLIER * level
        whole = np.trunc(hedge / future_value)
        minis = np.rint((hedge - whole * future_value) / mini_value)
        residual = hedge - whole * future_value - minis * mini_value
    valid = (
        np.isfinite(b)
        & np.isfinite(n)
        & np.isfinite(level)
        & (level > 0)
        & np.isfinite(hedge)
        & np.isfinite(residual)
        & (np.abs(whole) <= MAX_CONTRACTS)
    )
    nan = np.float64(np.nan)
    return HedgeLines(
        valid=valid,
        sleeve_notional=np.where(valid, n, nan),
        beta=np.where(valid, b, nan),
        hedge_level=np.where(valid, level, nan),
        hedge_notional=np.where(valid, hedge, nan),
        futures=-np.where(valid, whole, 0.0).astype(np.int64),
        minis=-np.where(valid, minis, 0.0).astype(np.int64),
        residual_notional=np.where(valid, residual, nan),
    )


def hedge_line(beta: float, sleeve_notional: float, hedge_level: float) -> HedgeLine | None:
    """The hedge of one sleeve, None when none exists (see ``hedge_lines``)."""
    return hedge_lines(beta, sleeve_notional, hedge_level).line(0)
