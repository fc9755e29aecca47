"""Breadth and movers by contribution: each index's constituents against the previous close.

At a boundary, from the calculator's state (prices, membership rows and their weights IS x FAF
x CF, divisors) and each security's previous close (``ConstituentBaseline``), for a set of
indices at once, one pass of array operations over their membership rows:

- breadth: constituents up, down and unchanged against the previous close, and % up;
- the contribution of each constituent in index points, (P - P_prev_close) x weight / divisor at
  the current weight and divisor;
- the top and bottom N constituents of each index by contribution (the movers).

The contributions of an index add up to ``level - adjusted_prev_close``, where
``adjusted_prev_close = sum(P_prev_close x weight) / divisor`` (current weights and divisor).
When no maintenance event changed the index's divisor or weights today, that is the previous
closing level and the contributions add up to the day's point change. After an event it is not:
the divisor adjustment keeps the level continuous across the event, so the points the index
gained today are ``level - prev_close_level`` while the contributions add up to
``level - adjusted_prev_close``; ``PointChanges.adjusted_prev_close`` is returned so a reader can
reconcile the two (their difference is what the event's new weights and divisor make of the
previous closing prices, not a market move). ``ConstituentBaseline.rescale`` carries an event's
price adjustments (a split) over to the previous closes, so they show as no move.

A constituent whose price or previous close is not a finite positive number (a security added
today, bad data) is *unpriced*: it counts in ``Breadth.unpriced`` only, contributes 0 points, is
no mover, and enters ``adjusted_prev_close`` at its current price. Nothing here raises on such
data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import msgspec
import numpy as np
from numpy.typing import ArrayLike, NDArray

from engine.core.columnar import Columnar
from engine.kernel.calculator import IndexCalculator
from engine.kernel.ordering import run_starts, stable_order
from engine.refdata.universe import Universe

TOP = 0
"""``Movers.side`` of the largest contributions (rank 1 the largest)."""
BOTTOM = 1
"""``Movers.side`` of the smallest contributions (rank 1 the most negative)."""


class ConstituentsConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Breadth and movers settings.

    Attributes
    ----------
    movers : int
        How many top and how many bottom constituents per index (0: none).
    """

    movers: Annotated[int, msgspec.Meta(ge=0, le=1000)] = 5


@dataclass(frozen=True)
class MemberRows(Columnar):
    """Membership rows: index id, security id and weight IS x FAF x CF of each.

    ``n_indices`` is the number of indices of the universe (ids ``0 .. n_indices - 1``).
    """

    index: NDArray[np.intp]
    security: NDArray[np.intp]
    weight: NDArray[np.float64]
    n_indices: int

    @classmethod
    def of(cls, calculator: IndexCalculator) -> MemberRows:
        """The calculator's current rows (``IndexCalculator.member_weights``)."""
        index, security, weight = calculator.member_weights()
        return cls(index, security, weight, len(calculator.universe.indices))

    def selected(self, index_ids: NDArray[np.intp]) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
        """Rows of the ``index_ids`` in their order (then row order), and each row's position
        of its index in ``index_ids``.

        Raises
        ------
        ValueError
            When ``index_ids`` repeats an id or has one outside ``0 .. n_indices - 1``.
        """
        if index_ids.size and (index_ids.min() < 0 or index_ids.max() >= self.n_indices):
            raise ValueError(f"index ids must be in 0 .. {self.n_indices - 1}")
        position_of = np.full(self.n_indices, -1, dtype=np.intp)
        position_of[index_ids] = np.arange(index_ids.size)
        if np.unique(index_ids).size != index_ids.size:
            raise ValueError("index ids must be distinct")
        row_position = position_of[self.index]
        rows = np.flatnonzero(row_position >= 0)
        position = row_position[rows]
        if np.any(position[1:] < position[:-1]):  # else already in the order asked for
            rows = rows[stable_order(position, index_ids.size)]
            position = row_position[rows]
        return rows, position


class BaselineState(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Checkpoint form of a ``ConstituentBaseline`` (MessagePack keeps the floats bitwise)."""

    prev_close: list[float]


class ConstituentBaseline:
    """Each security's previous close: the reference every constituent's move is taken from.

    Parameters
    ----------
    prev_close : array_like of float
        Previous close per security id (``Universe.prev_close`` on the first day).
    """

    def __init__(self, prev_close: ArrayLike) -> None:
        self._prev_close = np.array(prev_close, dtype=np.float64)

    @classmethod
    def of(cls, universe: Universe) -> ConstituentBaseline:
        """The baseline of a day starting from the universe's previous closes."""
        return cls(universe.prev_close)

    @property
    def prev_close(self) -> NDArray[np.float64]:
        """Previous close per security id (read-only view)."""
        view = self._prev_close.view()
        view.flags.writeable = False
        return view

    def prices_for(self, n_securities: int) -> NDArray[np.float64]:
        """Previous closes of ``n_securities`` securities: NaN past the known ones (a security
        added since the day started has no previous close)."""
        known = self._prev_close[:n_securities]
        return np.concatenate((known, np.full(n_securities - known.size, np.nan)))

    def roll(self, prices: ArrayLike) -> None:
        """Start a new day: the closing ``prices`` (per security id) become the previous close."""
        self._prev_close = np.array(prices, dtype=np.float64)

    def rescale(self, before: ArrayLike, after: ArrayLike) -> None:
        """Carry an event's price adjustments over to the previous closes.

        ``before`` and ``after`` are the prices per security id just before and after a
        maintenance event (``IndexCalculator.prices``); each security whose price the event
        changed gets its previous close scaled by after / before, so a split, bonus or rights
        issue does not show as a price move (with it, a split leaves ``adjusted_prev_close``
        at the previous closing level). Securities new in ``after`` get no previous close.
        Whether an ordinary dividend's price drop is rescaled is the caller's choice.
        """
        old = np.asarray(before, dtype=np.float64)
        new = np.asarray(after, dtype=np.float64)
        prev_close = self.prices_for(new.size)
        with np.errstate(all="ignore"):
            ratio = new[: old.size] / old
        moved = np.flatnonzero((ratio != 1.0) & (ratio > 0) & (ratio < np.inf))
        prev_close[moved] *= ratio[moved]
        self._prev_close = prev_close

    def capture(self) -> BaselineState:
        """The state to checkpoint."""
        return BaselineState(self._prev_close.tolist())

    def restore(self, state: BaselineState) -> None:
        """Resume from ``capture()`` output."""
        self._prev_close = np.array(state.prev_close, dtype=np.float64)


@dataclass(frozen=True)
class Breadth(Columnar):
    """Constituents up, down and unchanged against the previous close, one row per index.

    ``pct_up`` is up / (up + down + unchanged) x 100, NaN when the index has no priced
    constituent; ``unpriced`` counts the constituents in none of the three (module docstring).
    """

    index: NDArray[np.int32]
    up: NDArray[np.int64]
    down: NDArray[np.int64]
    unchanged: NDArray[np.int64]
    unpriced: NDArray[np.int64]
    pct_up: NDArray[np.float64]


@dataclass(frozen=True)
class PointChanges(Columnar):
    """Per index: the sum of its constituents' contributions (``points``) and the level they
    start from, ``adjusted_prev_close`` (module docstring): points = level - adjusted_prev_close.
    It is NaN when a constituent's current price is (the level is not finite then either).
    """

    index: NDArray[np.int32]
    adjusted_prev_close: NDArray[np.float64]
    points: NDArray[np.float64]


@dataclass(frozen=True)
class Contributions(Columnar):
    """One row per (index, constituent): in the order of the index ids asked for, then of the
    membership rows.

    ``contribution`` is in index points, 0 for an unpriced constituent; ``change_pct`` is the
    price's change from the previous close in %, NaN when unpriced.
    """

    index: NDArray[np.int32]
    security: NDArray[np.int64]
    price: NDArray[np.float64]
    prev_close: NDArray[np.float64]
    contribution: NDArray[np.float64]
    change_pct: NDArray[np.float64]
    priced: NDArray[np.bool_]


@dataclass(frozen=True)
class Movers(Columnar):
    """The top and bottom N priced constituents of each index by (finite) contribution.

    Rows in the order of the index ids asked for, then ``side`` (``TOP`` then ``BOTTOM``), then
    ``rank`` (1 first). Top: largest contribution first; bottom: most negative first; equal
    contributions by ascending security id. An index with fewer than 2N priced constituents has
    some in both lists, one with fewer than N has fewer rows.
    """

    index: NDArray[np.int32]
    side: NDArray[np.int8]
    rank: NDArray[np.int32]
    security: NDArray[np.int64]
    contribution: NDArray[np.float64]
    price: NDArray[np.float64]
    change_pct: NDArray[np.float64]


@dataclass(frozen=True)
class ConstituentFigures:
    """Everything ``constituent_figures`` computes at one boundary."""

    breadth: Breadth
    points: PointChanges
    contributions: Contributions
    movers: Movers


def constituent_figures(
    index_ids: ArrayLike,
    members: MemberRows,
    prices: NDArray[np.float64],
    *,
    divisors: NDArray[np.float64],
    prev_close: NDArray[np.float64],
    config: ConstituentsConfig | None = None,
) -> ConstituentFigures:
    """Breadth, contributions and movers of the indices ``index_ids``.

    Parameters
    ----------
    index_ids : array_like of int
        Distinct index ids; per-index outputs follow this order.
    members : MemberRows
        The membership rows (``MemberRows.of(calculator)``).
    prices : ndarray of float64
        Current price per security id (``IndexCalculator.prices``).
    divisors : ndarray of float64
        Current divisor per index id.
    prev_close : ndarray of float64
        Previous close per security id (``ConstituentBaseline.prices_for``), as long as
        ``prices``.

    Returns
    -------
    ConstituentFigures
    """
    config = config or ConstituentsConfig()
    ids = np.asarray(index_ids, dtype=np.intp).reshape(-1)
    rows, position = members.selected(ids)
    security = members.security[rows]
    weight = members.weight[rows]
    price = prices[security]
    before = prev_close[security]
    with np.errstate(all="ignore"):  # unpriced rows are masked out below
        priced = (price > 0) & (price < np.inf) & (before > 0) & (before < np.inf)
        level_weight = weight / divisors[members.index[rows]]
        contribution = np.where(priced, (price - before) * level_weight, 0.0)
        base = np.where(priced, before, price) * level_weight
        change_pct = np.where(priced, (price / before - 1.0) * 100.0, np.nan)
    n = ids.size
    up = _count(position, priced & (price > before), n)
    down = _count(position, priced & (price < before), n)
    unchanged = _count(position, priced & (price == before), n)
    total = up + down + unchanged
    pct_up = np.full(n, np.nan)
    np.divide(up * 100.0, total, out=pct_up, where=total > 0)
    index = ids.astype(np.int32)
    contributions = Contributions(
        index[position], security.astype(np.int64), price, before, contribution, change_pct, priced
    )
    return ConstituentFigures(
        breadth=Breadth(index, up, down, unchanged, _count(position, ~priced, n), pct_up),
        points=PointChanges(index, _sum(position, base, n), _sum(position, contribution, n)),
        contributions=contributions,
        movers=_movers(contributions, position, config.movers, n),
    )


def calculator_figures(
    calculator: IndexCalculator,
    baseline: ConstituentBaseline,
    index_ids: ArrayLike,
    config: ConstituentsConfig | None = None,
) -> ConstituentFigures:
    """``constituent_figures`` of the calculator's current state against ``baseline``."""
    prices = calculator.prices
    return constituent_figures(
        index_ids,
        MemberRows.of(calculator),
        prices,
        divisors=calculator.divisors,
        prev_close=baseline.prices_for(prices.size),
        config=config,
    )


def _count(position: NDArray[np.intp], mask: NDArray[np.bool_], n: int) -> NDArray[np.int64]:
    return np.bincount(position[mask], minlength=n).astype(np.int64)


def _sum(position: NDArray[np.intp], values: NDArray[np.float64], n: int) -> NDArray[np.float64]:
    return np.bincount(position, weights=values, minlength=n).astype(np.float64, copy=False)


def _movers(rows: Contributions, position: NDArray[np.intp], n: int, groups: int) -> Movers:
    """The top and bottom ``n`` priced rows of each of ``groups`` indices (see ``Movers``).

    One sort by contribution serves both sides (a 3-key lexsort is ~5x slower on 1M rows);
    equal contributions are put in security order, then a radix sort groups by index.
    """
    eligible = np.flatnonzero(rows.priced & np.isfinite(rows.contribution))
    if n == 0 or eligible.size == 0:
        return Movers.empty()
    where = position[eligible]
    value = rows.contribution[eligible]
    security = rows.security[eligible]
    ascending = np.argsort(value)
    picked = []
    ranks = []
    for by_key, key in ((ascending[::-1], -value), (ascending, value)):  # top, then bottom
        order = _ties_by_security(by_key.copy(), key, security)
        order = order[stable_order(where[order], groups)]
        starts = np.flatnonzero(run_starts(where[order]))
        rank = np.arange(order.size) - np.repeat(starts, np.diff(np.append(starts, order.size)))
        kept = rank < n
        picked.append(eligible[order[kept]])
        ranks.append(rank[kept])
    sides = np.repeat(np.array([TOP, BOTTOM], dtype=np.int8), [picked[0].size, picked[1].size])
    chosen = np.concatenate(picked)
    rank = np.concatenate(ranks)
    order = np.lexsort((rank, sides, position[chosen]))
    chosen = chosen[order]
    return Movers(
        rows.index[chosen],
        sides[order],
        (rank[order] + 1).astype(np.int32),
        rows.security[chosen],
        rows.contribution[chosen],
        rows.price[chosen],
        rows.change_pct[chosen],
    )


def _ties_by_security(
    order: NDArray[np.intp], key: NDArray[np.float64], security: NDArray[np.int64]
) -> NDArray[np.intp]:
    """``order`` (ascending ``key``) with each run of equal keys in ascending security order."""
    sorted_key = key[order]
    tie = sorted_key[1:] == sorted_key[:-1]
    if tie.any():
        slots = np.flatnonzero(np.append(tie, False) | np.insert(tie, 0, False))
        tied = order[slots]
        order[slots] = tied[np.lexsort((security[tied], key[tied]))]
    return order


__all__ = [
    "BOTTOM",
    "TOP",
    "BaselineState",
    "Breadth",
    "ConstituentBaseline",
    "ConstituentFigures",
    "ConstituentsConfig",
    "Contributions",
    "MemberRows",
    "Movers",
    "PointChanges",
    "calculator_figures",
    "constituent_figures",
]
