"""Applying maintenance events with divisor adjustments that keep levels continuous.

An event edits the declared composition and the reference prices; the universe is rebuilt and
every affected index gets the divisor that keeps its level at the moment of the event
unchanged: new divisor = capitalisation after / level before. The one event that moves levels
by design is the ordinary cash dividend: a price index takes the price fall, a gross total
return index reinvests the dividend (continuous), a net one reinvests it after withholding tax.
Every divisor change is returned as an audit record.
"""

from __future__ import annotations

import msgspec
import numpy as np
from numpy.typing import NDArray

from engine.core.bounds import MAX_PRICE
from engine.core.errors import EventError, TickIndexError
from engine.kernel.calculator import IndexCalculator
from engine.maintenance.composition_edits import CompositionEdit, describe, edit_composition
from engine.maintenance.events import IndexEvent
from engine.refdata.universe import Universe, build_universe


class DivisorChange(msgspec.Struct, frozen=True):
    """One audit record: an index's divisor changed because of an event.

    The service publishes it as is on the audit topic (keyed by index code).
    """

    index: str
    ts: int
    old_divisor: float
    new_divisor: float
    level: float
    cause: str


def apply_event(calculator: IndexCalculator, event: IndexEvent) -> list[DivisorChange]:
    """Apply one event to the calculator's state; returns the divisor changes it caused.

    Raises
    ------
    EventError
        When the event does not fit the current composition; nothing is changed then.
    """
    universe = calculator.universe
    before = calculator.levels.copy()
    old_divisors = calculator.divisors.copy()
    edit = CompositionEdit(
        securities=list(universe.securities),
        prices=calculator.prices.copy(),
        declared=universe.declared,
        touched=set(),
    )
    with np.errstate(all="ignore"):  # an overflow is refused below, as a non-finite result
        edit_composition(edit, universe, event)
    touched = edit.prices[list(edit.touched)]
    if np.any(~(touched > 0)) or not np.isfinite(touched).all():
        raise EventError(f"{describe(event)}: the adjusted price must stay positive and finite")
    try:
        rebuilt = build_universe(
            universe.indices, edit.securities, edit.prices.copy(), edit.declared
        )
    except TickIndexError as exc:
        raise EventError(f"{describe(event)}: {exc}") from exc
    capitalisation = _capitalisation(rebuilt, edit.prices)
    affected = np.unique(
        rebuilt.membership.index[np.isin(rebuilt.membership.security, list(edit.touched))]
    )
    affected = np.union1d(affected, _changed_indices(universe, rebuilt)).astype(np.intp)
    target = before.copy()
    if edit.dividend is not None:
        target = _dividend_targets(rebuilt, edit.dividend, before, old_divisors, capitalisation)
        reinvesting = np.array([spec.return_type != "price" for spec in rebuilt.indices])
        affected = affected[reinvesting[affected]]
    divisors = old_divisors.copy()
    with np.errstate(all="ignore"):  # a non-finite result is refused just below
        divisors[affected] = capitalisation[affected] / target[affected]
    _check_finite(event, rebuilt, edit.prices, divisors, capitalisation)
    calculator.rebase(rebuilt, edit.prices, divisors)
    cause = describe(event)
    return [
        DivisorChange(
            index=rebuilt.indices[k].code,
            ts=event.effective,
            old_divisor=float(old_divisors[k]),
            new_divisor=float(divisors[k]),
            level=float(calculator.levels[k]),
            cause=cause,
        )
        for k in affected.tolist()
    ]


def _check_finite(
    event: IndexEvent,
    universe: Universe,
    prices: NDArray[np.float64],
    divisors: NDArray[np.float64],
    capitalisation: NDArray[np.float64],
) -> None:
    """Refuse an event whose result is not finite and positive (the state is left untouched).

    Decoding already bounds every field; this catches combinations of in-range values (and
    events built in code) that would still publish NaN or infinite levels, now or after any
    tick screening lets through (prices below ``MAX_PRICE``).
    """
    m = universe.membership
    member_prices = prices[m.security]
    weights = universe.weights()
    with np.errstate(all="ignore"):
        levels = capitalisation / divisors
        level_weights = weights / divisors[m.index]
        ceiling = np.bincount(m.index, MAX_PRICE * level_weights, minlength=divisors.size)
    problems = [
        name
        for name, values in (
            ("price", member_prices),
            ("weight", weights),
            ("divisor", divisors),
            ("level", levels),
            ("level at the largest tick price", ceiling),
        )
        if not (np.isfinite(values).all() and (values > 0).all())
    ]
    if problems:
        raise EventError(
            f"{describe(event)}: the result would have a non-finite or non-positive "
            f"{' and '.join(problems)}"
        )


def _capitalisation(universe: Universe, prices: NDArray[np.float64]) -> NDArray[np.float64]:
    m = universe.membership
    caps = np.bincount(
        m.index, weights=prices[m.security] * universe.weights(), minlength=len(universe.indices)
    )
    return caps.astype(np.float64, copy=False)


def _changed_indices(old: Universe, new: Universe) -> NDArray[np.int32]:
    """Indices whose rows (members or weights) differ between two universes."""

    def rows(u: Universe) -> set[tuple[int, int, float]]:
        m = u.membership
        weights = u.weights()
        return set(zip(m.index.tolist(), m.security.tolist(), weights.tolist(), strict=True))

    changed = rows(old) ^ rows(new)
    return np.array(sorted({index for index, _, _ in changed}), dtype=np.int32)


def _dividend_targets(
    universe: Universe,
    dividend: tuple[int, float, float | None],
    before: NDArray[np.float64],
    old_divisors: NDArray[np.float64],
    capitalisation: NDArray[np.float64],
) -> NDArray[np.float64]:
    """Levels after an ordinary dividend: the reinvested part of it is added back per index."""
    security, amount, override = dividend
    m = universe.membership
    holds = m.security == security
    paid = np.bincount(
        m.index[holds], weights=amount * universe.weights()[holds], minlength=len(universe.indices)
    )
    reinvested = np.array(
        [
            1.0 - override
            if override is not None and spec.return_type == "net"
            else spec.reinvested_fraction
            for spec in universe.indices
        ]
    )
    capitalisation_before = before * old_divisors
    target: NDArray[np.float64] = (
        before * (capitalisation + reinvested * paid) / capitalisation_before
    )
    return target


__all__ = ["DivisorChange", "EventError", "apply_event", "describe"]
