"""Index maintenance events: corporate actions, constituent changes and reviews (wire v1).

Every event has an ``effective`` time (integer ns since the epoch; files may use ISO-8601 with
offset) and a ``type`` tag. The same structures are read from an events file (JSON Lines, or
CSV with the columns of ``CSV_COLUMNS``) and from the live service's control topic (JSON).

Decoding checks every field that enters the maths: ratios (and a rights issue's new and held
shares) in [1e-6, 1e6], prices, subscription prices and dividend amounts in [1e-6, 1e12], shares
in [1, 1e15], FAF and cap factors in (0, 1], withholding rates in [0, 1], ``effective`` in
[0, 2**63 - 1], codes of 1 to 64 characters and reviews of 1 to 20,000 rows; msgspec names the
offending field. Structs built in Python are
not checked (``apply_event`` still refuses a result that is not finite, or that a tick at up to
``MAX_PRICE`` could make infinite).
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from engine.core.bounds import (
    MAX_CODE_LENGTH,
    MAX_ID_LENGTH,
    MAX_PRICE,
    MAX_RATIO,
    MAX_REVIEW_ROWS,
    MAX_SHARES,
    MIN_PRICE,
    MIN_RATIO,
    MIN_SHARES,
)

# Every number that enters the maths is finite and in a sane range when decoded (NaN fails
# every bound): a ratio of 1e-300 is positive and finite but multiplies level weights by 1e300.
Nanoseconds = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
Ratio = Annotated[float, msgspec.Meta(ge=MIN_RATIO, le=MAX_RATIO)]
Price = Annotated[float, msgspec.Meta(ge=MIN_PRICE, le=MAX_PRICE)]
Shares = Annotated[float, msgspec.Meta(ge=MIN_SHARES, le=MAX_SHARES)]
Fraction = Annotated[float, msgspec.Meta(gt=0, le=1)]
Rate = Annotated[float, msgspec.Meta(ge=0, le=1)]
Code = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_CODE_LENGTH)]
EventId = Annotated[str, msgspec.Meta(max_length=MAX_ID_LENGTH)]


class _Event(
    msgspec.Struct, frozen=True, kw_only=True, tag_field="type", forbid_unknown_fields=True
):
    effective: Nanoseconds
    id: EventId | None = None


class StockSplit(_Event, tag="stock_split", frozen=True):
    """Each share becomes ``ratio`` shares (2 for 2-for-1): shares x ratio, price / ratio."""

    security: Code
    ratio: Ratio


class Consolidation(_Event, tag="consolidation", frozen=True):
    """``ratio`` shares become one (10 for a 10-into-1): shares / ratio, price x ratio."""

    security: Code
    ratio: Ratio


class BonusIssue(_Event, tag="bonus_issue", frozen=True):
    """``ratio`` bonus shares per share held (0.1 for 1-for-10): shares and price by 1 + ratio."""

    security: Code
    ratio: Ratio


class RightsIssue(_Event, tag="rights_issue", frozen=True):
    """``new_shares`` for every ``per_held`` held at ``subscription_price``.

    The reference price becomes the theoretical ex-rights price
    (per_held x P + new_shares x subscription_price) / (per_held + new_shares) and issued
    shares grow by (per_held + new_shares) / per_held.
    """

    security: Code
    new_shares: Ratio
    per_held: Ratio
    subscription_price: Price


class SpecialDividend(_Event, tag="special_dividend", frozen=True):
    """A special cash dividend: the reference price falls by ``amount``; divisors adjust."""

    security: Code
    amount: Price


class CashDividend(_Event, tag="dividend", frozen=True):
    """An ordinary cash dividend going ex.

    The reference price falls by ``amount``; price indices take the fall, total return indices
    reinvest it (net ones after ``withholding_rate``, default the index's rate).
    """

    security: Code
    amount: Price
    withholding_rate: Rate | None = None


class SharesChange(_Event, tag="shares_change", frozen=True):
    """New number of issued shares."""

    security: Code
    issued_shares: Shares


class FafChange(_Event, tag="faf_change", frozen=True):
    """New free-float adjusted factor, in every index holding the security or only ``index``."""

    security: Code
    faf: Fraction
    index: Code | None = None


class AddConstituent(_Event, tag="add_constituent", frozen=True):
    """``security`` joins ``index``; ``price`` seeds its price when it has not traded yet."""

    index: Code
    security: Code
    issued_shares: Shares
    faf: Fraction
    cap_factor: Fraction = 1.0
    price: Price | None = None


class DeleteConstituent(_Event, tag="delete_constituent", frozen=True):
    """``security`` leaves ``index``."""

    index: Code
    security: Code


class ReplaceConstituent(_Event, tag="replace_constituent", frozen=True):
    """``security`` replaces ``old_security`` in ``index`` (``price`` as for an addition)."""

    index: Code
    old_security: Code
    security: Code
    issued_shares: Shares
    faf: Fraction
    cap_factor: Fraction = 1.0
    price: Price | None = None


class ReviewRow(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One constituent of a reviewed index (``cap_factor`` None: computed from the cap)."""

    index: Code
    security: Code
    issued_shares: Shares
    faf: Fraction
    cap_factor: Fraction | None = None
    price: Price | None = None


ReviewRows = Annotated[list[ReviewRow], msgspec.Meta(min_length=1, max_length=MAX_REVIEW_ROWS)]


class Review(_Event, tag="review", frozen=True):
    """A periodic review: the named indices get exactly these constituents.

    Cap factors of capped indices are recomputed from the weight cap at the prices of the
    moment; between reviews weights drift.
    """

    rows: ReviewRows


IndexEvent = (
    StockSplit
    | Consolidation
    | BonusIssue
    | RightsIssue
    | SpecialDividend
    | CashDividend
    | SharesChange
    | FafChange
    | AddConstituent
    | DeleteConstituent
    | ReplaceConstituent
    | Review
)

CSV_COLUMNS = (
    "effective",
    "type",
    "index",
    "security",
    "old_security",
    "ratio",
    "new_shares",
    "per_held",
    "subscription_price",
    "amount",
    "withholding_rate",
    "issued_shares",
    "faf",
    "cap_factor",
    "price",
    "composition",
    "id",
)


def indices_named(event: IndexEvent) -> list[str]:
    """Every index code an event names, sorted (none for a security-wide corporate action)."""
    if isinstance(event, Review):
        return sorted({row.index for row in event.rows})
    if isinstance(event, AddConstituent | DeleteConstituent | ReplaceConstituent):
        return [event.index]
    if isinstance(event, FafChange) and event.index is not None:
        return [event.index]
    return []


def securities_named(event: IndexEvent) -> list[str]:
    """Every security code an event mentions (to register them before ticks arrive)."""
    if isinstance(event, Review):
        return [row.security for row in event.rows]
    if isinstance(event, ReplaceConstituent):
        return [event.old_security, event.security]
    return [event.security]
