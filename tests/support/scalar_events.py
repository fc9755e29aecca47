"""Plain-Python reference for index maintenance events: obviously correct, slow, tests only.

``ScalarEventModel`` extends ``ScalarIndexModel`` with total return indices and corporate
actions, constituent changes and reviews. It shares nothing with
``engine.maintenance.adjustments``: each
event edits a copy of the holdings and prices, every level is recomputed with ``math.fsum`` and
each affected index gets divisor = capitalisation after / level it must have after the event
(the level before, or for an ordinary dividend: before - (1 - reinvested) x amount x W / D).
It refuses what a composition file could not hold (IS <= 0, FAF outside (0, 1], an empty
index) and non-positive ratios, amounts and prices.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Literal

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
from engine.refdata.universe import IndexSpec, Universe
from tests.support.scalar_reference import RefIndex, RefRow, ScalarIndexModel, scalar_cap_factors
from tests.support.universes import universe_from_rows


@dataclass(frozen=True)
class RefTotalReturn:
    """A total return index following the price index ``underlying``."""

    code: str
    prev_close_level: float
    underlying: str
    return_type: Literal["gross", "net"]
    withholding_rate: float = 0.0


@dataclass
class Holding:
    """One constituent of a price index as declared: weight = IS x FAF x CF."""

    security: str
    issued_shares: float
    faf: float
    cap_factor: float

    @property
    def weight(self) -> float:
        return self.issued_shares * self.faf * self.cap_factor


Tick = tuple[int, str, float]  # (ts, security, price)


class RefEventError(Exception):
    """The reference refuses an event; its state is unchanged."""


@dataclass(frozen=True)
class RefChange:
    index: str
    old_divisor: float
    new_divisor: float


class ScalarEventModel(ScalarIndexModel):
    """Price indices from ``rows`` plus total return indices, edited by events one at a time."""

    def __init__(
        self,
        indices: list[RefIndex],
        rows: list[RefRow],
        total_return: list[RefTotalReturn] | None = None,
    ) -> None:
        super().__init__(indices, rows)
        self.total_return = {tr.code: tr for tr in total_return or []}
        self.holdings: dict[str, list[Holding]] = {}
        for ix in indices:
            own = [r for r in rows if r.index == ix.code]
            factors = [1.0 if r.cap_factor is None else r.cap_factor for r in own]
            if ix.weight_cap is not None:  # as ScalarIndexModel: computed at previous close
                caps = [r.prev_close * r.issued_shares * r.faf for r in own]
                factors = scalar_cap_factors(caps, ix.weight_cap)
            self.holdings[ix.code] = [
                Holding(r.security, r.issued_shares, r.faf, cf)
                for r, cf in zip(own, factors, strict=True)
            ]
        for tr in self.total_return.values():
            self.indices[tr.code] = RefIndex(tr.code, tr.prev_close_level)
            self.members[tr.code] = list(self.members[tr.underlying])
            self.divisors[tr.code] = self._capitalisation(tr.code) / tr.prev_close_level

    def reinvested(self, code: str, override: float | None) -> float:
        tr = self.total_return.get(code)
        if tr is None:
            return 0.0
        if tr.return_type == "gross":
            return 1.0
        return 1.0 - (tr.withholding_rate if override is None else override)

    def levels(self) -> dict[str, float]:
        return {code: self.level(code) for code in self.indices}

    def weight_in(self, code: str, security: str) -> float:
        return math.fsum(w for s, w in self.members[code] if s == security)

    # -- events ---------------------------------------------------------------------------

    def apply(self, event: IndexEvent) -> list[RefChange]:
        """Apply ``event``; return the divisor changes. Raises RefEventError, changing nothing."""
        before = self.levels()
        holdings = copy.deepcopy(self.holdings)
        prices = dict(self.prices)
        adjusted: set[str] = set()  # securities whose price the event moves
        if isinstance(event, StockSplit | Consolidation | BonusIssue | RightsIssue):
            factor, price = self._ratios(event, prices)
            for h in self._rows(holdings, event.security):
                h.issued_shares *= factor
            prices[event.security] = price
            adjusted.add(event.security)
        elif isinstance(event, SpecialDividend | CashDividend):
            self._rows(holdings, event.security)
            if not event.amount > 0:
                raise RefEventError("a dividend must be positive")
            prices[event.security] -= event.amount
            adjusted.add(event.security)
        elif isinstance(event, SharesChange):
            _check_row(event.issued_shares, 1.0, 1.0)
            for h in self._rows(holdings, event.security):
                h.issued_shares = event.issued_shares
        elif isinstance(event, FafChange):
            only = None if event.index is None else self._price_index(event.index)
            _check_row(1.0, event.faf, 1.0)
            for h in self._rows(holdings, event.security, only):
                h.faf = event.faf
        elif isinstance(event, AddConstituent | ReplaceConstituent):
            code = self._price_index(event.index)
            if isinstance(event, ReplaceConstituent):
                self._known(event.old_security)
                kept = [h for h in holdings[code] if h.security != event.old_security]
                if len(kept) == len(holdings[code]):
                    raise RefEventError(f"{event.old_security} is not in {code}")
                holdings[code] = kept
            self._seed(prices, event.security, event.price)
            _check_row(event.issued_shares, event.faf, event.cap_factor)
            if any(h.security == event.security for h in holdings[code]):
                raise RefEventError(f"{event.security} is already in {code}")
            holdings[code].append(
                Holding(event.security, event.issued_shares, event.faf, event.cap_factor)
            )
        elif isinstance(event, DeleteConstituent):
            code = self._price_index(event.index)
            self._known(event.security)
            kept = [h for h in holdings[code] if h.security != event.security]
            if len(kept) == len(holdings[code]):
                raise RefEventError(f"{event.security} is not in {code}")
            if not kept:
                raise RefEventError(f"{event.security} is the last constituent of {code}")
            holdings[code] = kept
        else:
            assert isinstance(event, Review)
            self._review(event, holdings, prices)
        if any(not prices[s] > 0 for s in adjusted):
            raise RefEventError("the adjusted price must stay positive")
        return self._commit(event, holdings, prices, adjusted, before)

    def _commit(
        self,
        event: IndexEvent,
        holdings: dict[str, list[Holding]],
        prices: dict[str, float],
        adjusted: set[str],
        before: dict[str, float],
    ) -> list[RefChange]:
        old_members = {code: sorted(m) for code, m in self.members.items()}
        old_divisors = dict(self.divisors)
        self.holdings, self.prices = holdings, prices
        for code, own in holdings.items():
            self.members[code] = [(h.security, h.weight) for h in own]
        for tr in self.total_return.values():
            self.members[tr.code] = list(self.members[tr.underlying])
        changes = []
        for code in self.indices:
            holds_adjusted = any(s in adjusted for s, _ in self.members[code])
            if not holds_adjusted and sorted(self.members[code]) == old_members[code]:
                continue
            target = before[code]
            if isinstance(event, CashDividend):
                if code not in self.total_return:
                    continue  # a price index takes the fall: divisor unchanged
                paid = event.amount * self.weight_in(code, event.security)
                kept = 1.0 - self.reinvested(code, event.withholding_rate)
                target = before[code] - kept * paid / old_divisors[code]
            self.divisors[code] = self._capitalisation(code) / target
            changes.append(RefChange(code, old_divisors[code], self.divisors[code]))
        return changes

    def _ratios(
        self, event: StockSplit | Consolidation | BonusIssue | RightsIssue, prices: dict[str, float]
    ) -> tuple[float, float]:
        """(shares factor, new price) of a split-like event."""
        self._known(event.security)
        cum = prices[event.security]
        if isinstance(event, RightsIssue):
            held, new = event.per_held, event.new_shares
            if not (held > 0 and new > 0 and event.subscription_price > 0):
                raise RefEventError("rights issue terms must be positive")
            terp = (held * cum + new * event.subscription_price) / (held + new)
            return (held + new) / held, terp
        if not event.ratio > 0:
            raise RefEventError("ratio must be positive")
        if isinstance(event, StockSplit):
            factor = event.ratio
        elif isinstance(event, Consolidation):
            factor = 1.0 / event.ratio
        else:
            factor = 1.0 + event.ratio
        return factor, cum / factor

    def _review(
        self, event: Review, holdings: dict[str, list[Holding]], prices: dict[str, float]
    ) -> None:
        for row in event.rows:  # in row order: the first price given seeds a new security
            self._price_index(row.index)
            self._seed(prices, row.security, row.price)
            _check_row(
                row.issued_shares, row.faf, 1.0 if row.cap_factor is None else row.cap_factor
            )
        for code in dict.fromkeys(row.index for row in event.rows):
            own = [row for row in event.rows if row.index == code]
            if len({row.security for row in own}) != len(own):
                raise RefEventError(f"a security twice in the review of {code}")
            factors = [1.0 if row.cap_factor is None else row.cap_factor for row in own]
            cap = self.indices[code].weight_cap
            if cap is not None and any(row.cap_factor is None for row in own):
                if cap * len(own) < 1.0 - 1e-12:
                    raise RefEventError(f"a cap of {cap} cannot be met by {len(own)} names")
                caps = [prices[row.security] * row.issued_shares * row.faf for row in own]
                factors = scalar_cap_factors(caps, cap)
            holdings[code] = [
                Holding(row.security, row.issued_shares, row.faf, cf)
                for row, cf in zip(own, factors, strict=True)
            ]

    def _known(self, security: str) -> None:
        if security not in self.prices:
            raise RefEventError(f"unknown security {security}")

    def _rows(
        self, holdings: dict[str, list[Holding]], security: str, only: str | None = None
    ) -> list[Holding]:
        self._known(security)
        rows = [
            h
            for code, own in holdings.items()
            if only in (None, code)
            for h in own
            if h.security == security
        ]
        if not rows:
            raise RefEventError(f"{security} is in no index")
        return rows

    def _price_index(self, code: str) -> str:
        if code not in self.indices:
            raise RefEventError(f"unknown index {code}")
        if code in self.total_return:
            raise RefEventError(f"{code} is a total return index")
        return code

    @staticmethod
    def _seed(prices: dict[str, float], security: str, price: float | None) -> None:
        """A security that has a price keeps it; the event's price seeds a new one."""
        if math.isnan(prices.get(security, math.nan)) and price is not None:
            prices[security] = price
        if not prices.get(security, math.nan) > 0:
            raise RefEventError(f"{security} has no price")


@dataclass
class Scenario:
    seed: int
    indices: list[RefIndex]
    rows: list[RefRow]
    total_return: list[RefTotalReturn]
    pool: list[str]  # codes only events introduce (registered up front, as replay does)
    steps: list[list[Tick] | IndexEvent]
    labels: list[str]  # the generator's kind of each event ("invalid" for deliberate misfits)

    def model(self) -> ScalarEventModel:
        return ScalarEventModel(self.indices, self.rows, self.total_return)

    def ticks(self) -> list[Tick]:
        return [t for step in self.steps if isinstance(step, list) for t in step]

    def events(self) -> list[IndexEvent]:
        return [step for step in self.steps if not isinstance(step, list)]


@dataclass
class ReferenceRun:
    levels: list[tuple[int, str, float, int]]  # (ts, index, level, seq) after every tick
    changes: list[list[RefChange]]  # per applied event
    failed: int  # events refused
    model: ScalarEventModel  # the final state


def reference_run(scenario: Scenario) -> ReferenceRun:
    """Ticks and events of a scenario one by one, in stream order."""
    model = scenario.model()
    seq = dict.fromkeys(model.indices, 0)
    out: list[tuple[int, str, float, int]] = []
    changes, failed = [], 0
    for step in scenario.steps:
        if not isinstance(step, list):
            try:
                changes.append(model.apply(step))
            except RefEventError:
                failed += 1
            continue
        for ts, code, price in step:
            for index, level in model.tick(code, price):
                seq[index] += 1
                out.append((ts, index, level, seq[index]))
    return ReferenceRun(out, changes, failed, model)


def _check_row(issued_shares: float, faf: float, cap_factor: float) -> None:
    """What a composition file demands of a row: IS > 0, FAF in (0, 1], CF > 0."""
    if not (issued_shares > 0 and 0 < faf <= 1 and cap_factor > 0):
        raise RefEventError(f"bad row values IS={issued_shares} FAF={faf} CF={cap_factor}")


def engine_universe(
    indices: list[RefIndex], rows: list[RefRow], total_return: list[RefTotalReturn]
) -> Universe:
    """The engine Universe of price indices ``indices`` then ``total_return`` indices."""
    specs = [IndexSpec(ix.code, ix.code, ix.prev_close_level, ix.weight_cap) for ix in indices]
    specs += [
        IndexSpec(
            tr.code,
            tr.code,
            tr.prev_close_level,
            return_type=tr.return_type,
            underlying=tr.underlying,
            withholding_rate=tr.withholding_rate,
        )
        for tr in total_return
    ]
    return universe_from_rows(indices, rows, specs[len(indices) :])
