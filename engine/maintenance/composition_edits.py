"""What each maintenance event does to the declared composition and the reference prices.

``edit_composition`` records an event's changes in a ``CompositionEdit`` (a ``match`` on the
event type picks the editor); ``engine.maintenance.adjustments.apply_event`` then rebuilds the
universe and adjusts divisors. Every editor raises ``EventError`` when the event does not fit the
composition.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from engine.core.errors import EventError
from engine.maintenance.events import (
    AddConstituent,
    BonusIssue,
    CashDividend,
    Consolidation,
    DeleteConstituent,
    FafChange,
    IndexEvent,
    ReplaceConstituent,
    Review,
    RightsIssue,
    SharesChange,
    SpecialDividend,
    StockSplit,
)
from engine.refdata.universe import Membership, Universe


@dataclass
class CompositionEdit:
    """The event's changes, gathered before the universe is rebuilt."""

    securities: list[str]
    prices: NDArray[np.float64]
    declared: Membership
    touched: set[int]
    dividend: tuple[int, float, float | None] | None = None


def describe(event: IndexEvent) -> str:
    """Short cause text for the audit log, e.g. ``stock_split 0700 ratio=2.0``."""
    parts = [
        f"{name}={getattr(event, name)}"
        for name in event.__struct_fields__
        if name not in ("effective", "rows") and getattr(event, name) is not None
    ]
    tag = event.__struct_config__.tag
    return " ".join([str(tag), *parts])


def _security(edit: CompositionEdit, code: str) -> int:
    try:
        return edit.securities.index(code)
    except ValueError:
        raise EventError(f"unknown security {code!r}") from None


def _rows_of(edit: CompositionEdit, security: int, index: int | None = None) -> NDArray[np.bool_]:
    rows: NDArray[np.bool_] = edit.declared.security == security
    if index is not None:
        rows &= edit.declared.index == index
    if not rows.any():
        raise EventError(f"security {edit.securities[security]!r} is in no index")
    return rows


def _scale_shares(edit: CompositionEdit, security: int, shares: float, price: float) -> None:
    rows = _rows_of(edit, security)
    issued = edit.declared.issued_shares.copy()
    issued[rows] *= shares
    edit.declared = edit.declared.replace(issued_shares=issued)
    edit.prices[security] *= price
    edit.touched.add(security)


def _positive(event: IndexEvent, **values: float) -> None:
    for name, value in values.items():
        if not value > 0:
            raise EventError(f"{describe(event)}: {name} must be positive, got {value}")


def _check_row(event: IndexEvent, shares: float, faf: float, cap_factor: float) -> None:
    """The same limits the composition file loader applies."""
    _positive(event, issued_shares=shares)
    if not 0 < faf <= 1:
        raise EventError(f"{describe(event)}: faf must be in (0, 1], got {faf}")
    if not (cap_factor > 0 or np.isnan(cap_factor)):
        raise EventError(f"{describe(event)}: cap_factor must be positive, got {cap_factor}")


def edit_composition(edit: CompositionEdit, universe: Universe, event: IndexEvent) -> None:
    """Record ``event``'s changes in ``edit``.

    Raises
    ------
    EventError
        When the event does not fit the composition, or is not a maintenance event at all.
    """
    match event:
        case StockSplit() | Consolidation() | BonusIssue():
            _split(edit, event)
        case RightsIssue():
            _rights(edit, event)
        case SpecialDividend() | CashDividend():
            _cash(edit, event)
        case SharesChange():
            _shares(edit, event)
        case FafChange():
            _faf(edit, universe, event)
        case AddConstituent() | ReplaceConstituent():
            _add(edit, universe, event)
        case DeleteConstituent():
            _delete(edit, universe, event)
        case Review():
            _review(edit, universe, event)
        case _:
            raise EventError(f"not a maintenance event: {type(event).__name__}")


def share_factor(event: StockSplit | Consolidation | BonusIssue) -> float:
    """What a split, consolidation or bonus issue multiplies the shares by (and divides the
    reference price by)."""
    if isinstance(event, StockSplit):
        return event.ratio
    if isinstance(event, Consolidation):
        return 1.0 / event.ratio
    return 1.0 + event.ratio


def _split(edit: CompositionEdit, event: StockSplit | Consolidation | BonusIssue) -> None:
    _positive(event, ratio=event.ratio)
    factor = share_factor(event)
    _scale_shares(edit, _security(edit, event.security), factor, 1.0 / factor)


def _rights(edit: CompositionEdit, event: RightsIssue) -> None:
    _positive(
        event,
        new_shares=event.new_shares,
        per_held=event.per_held,
        subscription_price=event.subscription_price,
    )
    security = _security(edit, event.security)
    cum = edit.prices[security]
    held, new = event.per_held, event.new_shares
    terp = (held * cum + new * event.subscription_price) / (held + new)
    _scale_shares(edit, security, (held + new) / held, terp / cum)


def _cash(edit: CompositionEdit, event: SpecialDividend | CashDividend) -> None:
    _positive(event, amount=event.amount)
    security = _security(edit, event.security)
    _rows_of(edit, security)
    price = float(edit.prices[security])
    if not event.amount < price:
        raise EventError(f"{describe(event)}: amount must be below the price {price}")
    edit.prices[security] -= event.amount
    edit.touched.add(security)
    if isinstance(event, CashDividend):
        rate = event.withholding_rate
        if rate is not None and not 0 <= rate <= 1:
            raise EventError(f"{describe(event)}: withholding_rate must be in [0, 1]")
        edit.dividend = (security, event.amount, rate)


def _shares(edit: CompositionEdit, event: SharesChange) -> None:
    _positive(event, issued_shares=event.issued_shares)
    security = _security(edit, event.security)
    issued = edit.declared.issued_shares.copy()
    issued[_rows_of(edit, security)] = event.issued_shares
    edit.declared = edit.declared.replace(issued_shares=issued)


def _faf(edit: CompositionEdit, universe: Universe, event: FafChange) -> None:
    _check_row(event, 1.0, event.faf, 1.0)
    security = _security(edit, event.security)
    index = None if event.index is None else _index(universe, event.index)
    faf = edit.declared.faf.copy()
    faf[_rows_of(edit, security, index)] = event.faf
    edit.declared = edit.declared.replace(faf=faf)


def _index(universe: Universe, code: str) -> int:
    if code not in universe.index_codes:
        raise EventError(f"unknown index {code!r}")
    index = universe.index_id(code)
    if universe.indices[index].underlying is not None:
        raise EventError(f"{code} follows {universe.indices[index].underlying}: change that")
    return index


def _append_securities(edit: CompositionEdit, codes: list[str]) -> None:
    """Append the codes not known yet, in order of first mention, unpriced."""
    known = set(edit.securities)
    new = [code for code in dict.fromkeys(codes) if code not in known]
    edit.securities.extend(new)
    edit.prices = np.concatenate([edit.prices, np.full(len(new), np.nan)])


def _seed_price(edit: CompositionEdit, security: int, price: float | None) -> int:
    # A security already trading keeps its market price; the event's price only seeds new ones.
    if price is not None and np.isnan(edit.prices[security]):
        edit.prices[security] = price
    if not edit.prices[security] > 0:
        code = edit.securities[security]
        raise EventError(f"security {code!r} has no positive price: give one in the event")
    return security


def _ensure_security(edit: CompositionEdit, code: str, price: float | None) -> int:
    _append_securities(edit, [code])
    return _seed_price(edit, edit.securities.index(code), price)


def _add_rows(
    edit: CompositionEdit, index: int, security: int, *, shares: float, faf: float, cf: float
) -> None:
    if np.any((edit.declared.index == index) & (edit.declared.security == security)):
        raise EventError(f"security {edit.securities[security]!r} is already a constituent")
    row = Membership(
        np.array([index], dtype=np.int32),
        np.array([security], dtype=np.int32),
        np.array([shares]),
        np.array([faf]),
        np.array([cf]),
    )
    edit.declared = Membership.concat([edit.declared, row])


def _delete_row(edit: CompositionEdit, index: int, security: int) -> None:
    rows = (edit.declared.index == index) & (edit.declared.security == security)
    if not rows.any():
        raise EventError(f"security {edit.securities[security]!r} is not a constituent")
    edit.declared = edit.declared.take(~rows)


def _add(
    edit: CompositionEdit, universe: Universe, event: AddConstituent | ReplaceConstituent
) -> None:
    _check_row(event, event.issued_shares, event.faf, event.cap_factor)
    index = _index(universe, event.index)
    if isinstance(event, ReplaceConstituent):
        _delete_row(edit, index, _security(edit, event.old_security))
    security = _ensure_security(edit, event.security, event.price)
    _add_rows(edit, index, security, shares=event.issued_shares, faf=event.faf, cf=event.cap_factor)


def _delete(edit: CompositionEdit, universe: Universe, event: DeleteConstituent) -> None:
    index = _index(universe, event.index)
    _delete_row(edit, index, _security(edit, event.security))
    if not np.any(edit.declared.index == index):
        raise EventError(f"{describe(event)}: an index cannot lose its last constituent")


def _review(edit: CompositionEdit, universe: Universe, event: Review) -> None:
    reviewed = sorted({_index(universe, row.index) for row in event.rows})
    given: dict[str, set[bool]] = {}
    for row in event.rows:
        given.setdefault(row.index, set()).add(row.cap_factor is None)
    for index in reviewed:
        spec = universe.indices[index]
        if spec.weight_cap is not None and len(given[spec.code]) > 1:
            raise EventError(
                f"{describe(event)}: cap_factor must be given on every row of "
                f"{spec.code} or on none"
            )
    prices: dict[str, float] = {}
    for row in event.rows:
        if row.price is not None and prices.setdefault(row.security, row.price) != row.price:
            raise EventError(f"{describe(event)}: conflicting prices for {row.security}")
    edit.declared = edit.declared.take(~np.isin(edit.declared.index, reviewed))
    _append_securities(edit, [row.security for row in event.rows])
    ids = {code: security for security, code in enumerate(edit.securities)}
    # Every row is of a reviewed index, whose old rows are gone: duplicates are within the event.
    seen: set[tuple[int, int]] = set()
    added: list[tuple[int, int, float, float, float]] = []
    for row in event.rows:
        index = universe.index_id(row.index)
        capped = universe.indices[index].weight_cap is not None
        factor = row.cap_factor if row.cap_factor is not None else (np.nan if capped else 1.0)
        _check_row(event, row.issued_shares, row.faf, float(factor))
        security = _seed_price(edit, ids[row.security], row.price)
        if (index, security) in seen:
            raise EventError(f"security {row.security!r} is already a constituent")
        seen.add((index, security))
        added.append((index, security, row.issued_shares, row.faf, float(factor)))
    if not added:  # a review built in code may have no rows (decoding requires one)
        return
    index_ids, security_ids, shares, faf, cap_factor = zip(*added, strict=True)
    rows = Membership(
        np.array(index_ids, dtype=np.int32),
        np.array(security_ids, dtype=np.int32),
        np.array(shares, dtype=np.float64),
        np.array(faf, dtype=np.float64),
        np.array(cap_factor, dtype=np.float64),
    )
    edit.declared = Membership.concat([edit.declared, rows])
