"""Index maintenance events: corporate actions, constituent changes and reviews (wire v1).

Every event has an ``effective`` time (integer ns since the epoch; files may use ISO-8601 with
offset) and a ``type`` tag. The same structures are read from an events file (JSON Lines, or
CSV with the columns of ``CSV_COLUMNS``) and from the live service's control topic (JSON).
"""

from __future__ import annotations

import msgspec


class _Event(
    msgspec.Struct, frozen=True, kw_only=True, tag_field="type", forbid_unknown_fields=True
):
    effective: int
    id: str | None = None


class StockSplit(_Event, tag="stock_split", frozen=True):
    """Each share becomes ``ratio`` shares (2 for 2-for-1): shares x ratio, price / ratio."""

    security: str
    ratio: float


class Consolidation(_Event, tag="consolidation", frozen=True):
    """``ratio`` shares become one (10 for a 10-into-1): shares / ratio, price x ratio."""

    security: str
    ratio: float


class BonusIssue(_Event, tag="bonus_issue", frozen=True):
    """``ratio`` bonus shares per share held (0.1 for 1-for-10): shares and price by 1 + ratio."""

    security: str
    ratio: float


class RightsIssue(_Event, tag="rights_issue", frozen=True):
    """``new_shares`` for every ``per_held`` held at ``subscription_price``.

    The reference price becomes the theoretical ex-rights price
    (per_held x P + new_shares x subscription_price) / (per_held + new_shares) and issued
    shares grow by (per_held + new_shares) / per_held.
    """

    security: str
    new_shares: float
    per_held: float
    subscription_price: float


class SpecialDividend(_Event, tag="special_dividend", frozen=True):
    """A special cash dividend: the reference price falls by ``amount``; divisors adjust."""

    security: str
    amount: float


class CashDividend(_Event, tag="dividend", frozen=True):
    """An ordinary cash dividend going ex.

    The reference price falls by ``amount``; price indices take the fall, total return indices
    reinvest it (net ones after ``withholding_rate``, default the index's rate).
    """

    security: str
    amount: float
    withholding_rate: float | None = None


class SharesChange(_Event, tag="shares_change", frozen=True):
    """New number of issued shares."""

    security: str
    issued_shares: float


class FafChange(_Event, tag="faf_change", frozen=True):
    """New free-float adjusted factor, in every index holding the security or only ``index``."""

    security: str
    faf: float
    index: str | None = None


class AddConstituent(_Event, tag="add_constituent", frozen=True):
    """``security`` joins ``index``; ``price`` seeds its price when it has not traded yet."""

    index: str
    security: str
    issued_shares: float
    faf: float
    cap_factor: float = 1.0
    price: float | None = None


class DeleteConstituent(_Event, tag="delete_constituent", frozen=True):
    """``security`` leaves ``index``."""

    index: str
    security: str


class ReplaceConstituent(_Event, tag="replace_constituent", frozen=True):
    """``security`` replaces ``old_security`` in ``index`` (``price`` as for an addition)."""

    index: str
    old_security: str
    security: str
    issued_shares: float
    faf: float
    cap_factor: float = 1.0
    price: float | None = None


class ReviewRow(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One constituent of a reviewed index (``cap_factor`` None: computed from the cap)."""

    index: str
    security: str
    issued_shares: float
    faf: float
    cap_factor: float | None = None
    price: float | None = None


class Review(_Event, tag="review", frozen=True):
    """A periodic review: the named indices get exactly these constituents.

    Cap factors of capped indices are recomputed from the weight cap at the prices of the
    moment; between reviews weights drift.
    """

    rows: list[ReviewRow]


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


def securities_named(event: IndexEvent) -> list[str]:
    """Every security code an event mentions (to register them before ticks arrive)."""
    if isinstance(event, Review):
        return [row.security for row in event.rows]
    if isinstance(event, ReplaceConstituent):
        return [event.old_security, event.security]
    return [event.security]
