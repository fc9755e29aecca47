"""Index maintenance worked examples, numbers written out by hand.

Family used by most tests (IS x FAF x CF = "weight", capitalisation = sum(P x weight)):
  PX  price index, level 1000: A (50 x 100) + B (50 x 100) = 10000        -> divisor 10
  Q   price index, level  500: A (50 x 100) + C (20 x 500) = 15000        -> divisor 30
  GR  gross total return of PX, level 2000: 10000 / 2000                  -> divisor 5
  NT  net total return of PX (10% withholding), level 1500: 10000 / 1500  -> divisor 6.667
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from engine.kernel.calculator import IndexCalculator
from engine.kernel.columns import TickColumns
from engine.maintenance.adjustments import DivisorChange, EventError, apply_event
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
    ReviewRow,
    RightsIssue,
    SharesChange,
    SpecialDividend,
    StockSplit,
)
from engine.pipeline.chain import IndexPipeline
from engine.testing import TestingSink
from tests.support.scalar_events import RefTotalReturn, engine_universe
from tests.support.scalar_reference import RefIndex, RefRow, scalar_capped_weights

FAMILY = (
    [RefIndex("PX", 1000.0), RefIndex("Q", 500.0)],
    [
        RefRow("PX", "A", 100.0, 1.0, None, 50.0),
        RefRow("PX", "B", 100.0, 1.0, None, 50.0),
        RefRow("Q", "A", 100.0, 1.0, None, 50.0),
        RefRow("Q", "C", 500.0, 1.0, None, 20.0),
    ],
    [RefTotalReturn("GR", 2000.0, "PX", "gross"), RefTotalReturn("NT", 1500.0, "PX", "net", 0.1)],
)


def capped() -> IndexCalculator:
    """CAP, weight cap 40%: A, B, C, D at 60, 20, 10, 10 (IS 1, FAF 1), level 1000."""
    rows = [
        RefRow("CAP", s, 1.0, 1.0, None, p) for s, p in zip("ABCD", [60, 20, 10, 10.0], strict=True)
    ]
    return IndexCalculator(engine_universe([RefIndex("CAP", 1000.0, 0.4)], rows, []))


def family() -> IndexCalculator:
    return IndexCalculator(engine_universe(*FAMILY))


def level(calc: IndexCalculator, code: str) -> float:
    return float(calc.levels[calc.universe.index_id(code)])


def divisor(calc: IndexCalculator, code: str) -> float:
    return float(calc.divisors[calc.universe.index_id(code)])


def price(calc: IndexCalculator, security: str) -> float:
    return float(calc.prices[calc.universe.security_id(security)])


def shares(calc: IndexCalculator, index: str, security: str) -> float:
    m, u = calc.universe.membership, calc.universe
    row = (m.index == u.index_id(index)) & (m.security == u.security_id(security))
    assert row.sum() == 1
    return float(m.issued_shares[row][0])


def tick(calc: IndexCalculator, security: str, px: float) -> None:
    calc.apply([calc.universe.security_id(security)], [px])


def assert_levels(calc: IndexCalculator, expected: dict[str, float]) -> None:
    for code, value in expected.items():
        assert level(calc, code) == pytest.approx(value, rel=1e-14), code


def assert_continuous(calc: IndexCalculator, event: IndexEvent) -> list[DivisorChange]:
    before = calc.levels.copy()
    changes = apply_event(calc, event)
    np.testing.assert_allclose(calc.levels, before, rtol=1e-14, atol=0)
    return changes


def test_rights_issue_one_for_four_at_terp() -> None:
    # cum 1.50, 1 new for 4 held at 1.00: TERP = (4 x 1.50 + 1 x 1.00) / 5 = 1.40, shares x 1.25
    # capitalisation 1000 x 1.50 + 500 x 10 = 6500, level 1000 -> divisor 6.5
    # after: 1250 x 1.40 + 5000 = 6750 = 6500 + cash raised (250 new shares x 1.00) -> 6.75
    rows = [RefRow("R", "A", 1000.0, 1.0, None, 1.5), RefRow("R", "B", 500.0, 1.0, None, 10.0)]
    calc = IndexCalculator(engine_universe([RefIndex("R", 1000.0)], rows, []))
    event = RightsIssue(
        effective=1, security="A", new_shares=1.0, per_held=4.0, subscription_price=1.0
    )
    (change,) = assert_continuous(calc, event)
    assert price(calc, "A") == pytest.approx(1.40, rel=1e-15)
    assert shares(calc, "R", "A") == pytest.approx(1250.0, rel=1e-15)
    assert change.old_divisor == pytest.approx(6.5, rel=1e-15)
    assert change.new_divisor == pytest.approx(6.75, rel=1e-14)
    assert (change.new_divisor - change.old_divisor) * 1000.0 == pytest.approx(250.0, rel=1e-12)
    assert_levels(calc, {"R": 1000.0})


def test_replacing_one_of_ten_stocks_at_10_by_a_stock_at_20() -> None:
    # ten stocks at 10 (IS 1, FAF 1): capitalisation 100, level 100, divisor 1
    # replacing S9 by N at 20: capitalisation 90 + 20 = 110, level 100 -> divisor 1.10
    rows = [RefRow("TEN", f"S{k}", 1.0, 1.0, None, 10.0) for k in range(10)]
    calc = IndexCalculator(engine_universe([RefIndex("TEN", 100.0)], rows, []))
    assert divisor(calc, "TEN") == 1.0
    event = ReplaceConstituent(
        effective=1, index="TEN", old_security="S9", security="N", issued_shares=1, faf=1, price=20
    )
    assert_continuous(calc, event)
    assert divisor(calc, "TEN") == pytest.approx(1.10, rel=1e-15)
    tick(calc, "N", 22.0)  # (90 + 22) / 1.1
    assert_levels(calc, {"TEN": 112.0 / 1.1})
    tick(calc, "S9", 1000.0)  # no longer a member
    assert_levels(calc, {"TEN": 112.0 / 1.1})


@pytest.mark.parametrize(
    ("event", "new_price", "new_shares"),
    [
        (StockSplit(effective=1, security="A", ratio=2.0), 25.0, 200.0),  # 2-for-1
        (Consolidation(effective=1, security="A", ratio=10.0), 500.0, 10.0),  # 10-into-1
        (BonusIssue(effective=1, security="A", ratio=0.25), 40.0, 125.0),  # 1-for-4 bonus
    ],
)
def test_split_consolidation_bonus_keep_divisors(
    event: IndexEvent, new_price: float, new_shares: float
) -> None:
    calc = family()
    old = calc.divisors.copy()
    changes = assert_continuous(calc, event)
    assert price(calc, "A") == pytest.approx(new_price, rel=1e-15)
    assert shares(calc, "PX", "A") == shares(calc, "Q", "A") == pytest.approx(new_shares, rel=1e-15)
    np.testing.assert_allclose(calc.divisors, old, rtol=1e-15, atol=0)
    assert {c.index for c in changes} == {"PX", "Q", "GR", "NT"}  # every index holding A
    tick(calc, "A", new_price * 1.1)  # A up 10%: PX +500 / 10, Q +500 / 30, GR +500 / 5
    assert_levels(calc, {"PX": 1050.0, "Q": 500.0 + 500.0 / 30, "GR": 2100.0, "NT": 1575.0})


def test_special_dividend_lowers_price_and_divisors() -> None:
    calc = family()
    assert_continuous(calc, SpecialDividend(effective=1, security="A", amount=5.0))
    assert price(calc, "A") == 45.0
    # PX 9500 / 1000, Q (4500 + 10000) / 500, GR 9500 / 2000, NT 9500 / 1500
    for code, expected in {"PX": 9.5, "Q": 29.0, "GR": 4.75, "NT": 9500 / 1500}.items():
        assert divisor(calc, code) == pytest.approx(expected, rel=1e-15), code


@pytest.mark.parametrize(("override", "net_after"), [(None, 1497.0), (0.3, 1491.0)])
def test_ordinary_dividend_price_falls_gross_reinvests_net_after_tax(
    override: float | None, net_after: float
) -> None:
    # dividend 2 on A (weight 100): paid 200
    # PX falls 200 / 10 = 20; Q falls 200 / 30; GR reinvests all;
    # NT reinvests 90%: falls 10% x 200 / 6.667 = 3 (30% override: 9)
    calc = family()
    changes = apply_event(
        calc, CashDividend(effective=1, security="A", amount=2.0, withholding_rate=override)
    )
    assert price(calc, "A") == 48.0
    assert_levels(calc, {"PX": 980.0, "Q": 500.0 - 200.0 / 30, "GR": 2000.0, "NT": net_after})
    assert divisor(calc, "PX") == 10.0 and divisor(calc, "Q") == 30.0
    assert divisor(calc, "GR") == pytest.approx(9800.0 / 2000.0, rel=1e-15)
    assert {c.index for c in changes} == {"GR", "NT"}


def test_shares_change() -> None:
    calc = family()
    assert_continuous(calc, SharesChange(effective=1, security="A", issued_shares=150.0))
    assert divisor(calc, "PX") == pytest.approx(12.5, rel=1e-15)  # (7500 + 5000) / 1000
    assert divisor(calc, "Q") == pytest.approx(35.0, rel=1e-15)  # (7500 + 10000) / 500
    tick(calc, "A", 60.0)  # +10 x 150
    assert_levels(calc, {"PX": 1000.0 + 1500.0 / 12.5, "Q": 500.0 + 1500.0 / 35.0})


def test_faf_change_in_one_index_or_all() -> None:
    calc = family()
    changes = assert_continuous(calc, FafChange(effective=1, security="A", faf=0.5, index="PX"))
    assert divisor(calc, "PX") == pytest.approx(7.5, rel=1e-15)  # (2500 + 5000) / 1000
    assert divisor(calc, "Q") == pytest.approx(30.0, rel=1e-15)
    tick(calc, "A", 60.0)  # PX +10 x 50 / 7.5, Q +10 x 100 / 30
    assert_levels(calc, {"PX": 1000.0 + 500.0 / 7.5, "Q": 500.0 + 1000.0 / 30.0})
    # the audit names only the index whose FAF changed and its total return indices
    assert sorted(c.index for c in changes) == ["GR", "NT", "PX"]

    calc = family()
    assert_continuous(calc, FafChange(effective=1, security="A", faf=0.5))
    assert divisor(calc, "PX") == pytest.approx(7.5, rel=1e-15)
    assert divisor(calc, "Q") == pytest.approx(25.0, rel=1e-15)  # (2500 + 10000) / 500


def test_addition_and_deletion() -> None:
    calc = family()
    # C already trades at 20 (in Q): it keeps its market price, the event's 99 is ignored
    add = AddConstituent(effective=1, index="PX", security="C", issued_shares=250, faf=1, price=99)
    assert_continuous(calc, add)
    assert price(calc, "C") == 20.0
    assert divisor(calc, "PX") == pytest.approx(15.0, rel=1e-15)  # 10000 + 5000
    assert divisor(calc, "GR") == pytest.approx(7.5, rel=1e-15)
    new = AddConstituent(effective=2, index="PX", security="N", issued_shares=200, faf=1, price=25)
    assert_continuous(calc, new)
    assert divisor(calc, "PX") == pytest.approx(20.0, rel=1e-15)  # + 25 x 200
    assert_continuous(calc, DeleteConstituent(effective=3, index="PX", security="B"))
    assert divisor(calc, "PX") == pytest.approx(15.0, rel=1e-15)  # - 50 x 100
    tick(calc, "N", 30.0)  # +5 x 200 / 15
    assert_levels(calc, {"PX": 1000.0 + 1000.0 / 15, "Q": 500.0, "GR": 2000.0 + 2000.0 / 15})


def test_review_recomputes_cap_factors_at_current_prices() -> None:
    # cap 40%: free-float caps A 60, B 20, C 10, D 10 -> A capped at 0.4, the excess 0.2 spread
    # pro rata: B 0.3, C 0.15, D 0.15; cap factor of A = (0.4 / 60) / (0.3 / 20) = 4/9
    calc = capped()

    def weights() -> list[float]:
        m = calc.universe.membership
        caps = calc.prices[m.security] * calc.universe.weights()
        return [float(w) for w in caps / caps.sum()]

    np.testing.assert_allclose(weights(), [0.4, 0.3, 0.15, 0.15], rtol=1e-14)
    tick(calc, "A", 120.0)  # A doubles: 120 x 4/9 = 53.3 of 93.3 -> 57% > cap (drift)
    assert weights()[0] == pytest.approx(160.0 / 3 / (160.0 / 3 + 40.0), rel=1e-14)
    review = Review(
        effective=1, rows=[ReviewRow("CAP", s, 1.0, 1.0) for s in "ABCD"]
    )  # caps now A 120, B 20, C 10, D 10: A at 0.4, 0.6 over 40 -> B 0.3, C 0.15, D 0.15
    assert_continuous(calc, review)
    np.testing.assert_allclose(weights(), [0.4, 0.3, 0.15, 0.15], rtol=1e-14)
    np.testing.assert_allclose(weights(), scalar_capped_weights([120, 20, 10, 10], 0.4))
    a = calc.universe.security_id("A")
    cf = calc.universe.membership.cap_factor[calc.universe.membership.security == a]
    assert cf.tolist() == pytest.approx([2.0 / 9.0], rel=1e-14)  # (0.4 / 120) / (0.3 / 20)


def test_review_does_not_silently_override_given_cap_factors() -> None:
    """A capped index's review giving CF on some rows only: refuse it (as composition files
    are refused) or keep the given factors; never recompute them silently."""
    calc = capped()
    mixed = [ReviewRow("CAP", s, 1.0, 1.0, 0.5 if s == "A" else None) for s in "ABCD"]
    try:
        apply_event(calc, Review(effective=1, rows=mixed))
    except EventError:
        return
    m = calc.universe.membership
    assert m.cap_factor[m.security == calc.universe.security_id("A")].tolist() == [0.5]


class _Audit:
    def __init__(self) -> None:
        self.records: list[DivisorChange] = []

    def record(self, changes: Sequence[DivisorChange]) -> None:
        self.records.extend(changes)


def test_audit_records_each_affected_index_only() -> None:
    calc = family()
    audit = _Audit()
    pipeline = IndexPipeline(calc, TestingSink(calc.universe.index_codes), audit=audit)
    pipeline.schedule(
        [
            StockSplit(effective=20, security="C", ratio=2.0),  # C is only in Q
            CashDividend(effective=30, security="A", amount=2.0),  # GR and NT reinvest
            DeleteConstituent(effective=40, index="PX", security="B"),  # PX and its TR indices
        ]
    )
    a = calc.universe.security_id("A")
    pipeline.process(TickColumns(np.array([10, 20, 30, 40, 50]), np.full(5, a), np.full(5, 50.0)))
    assert pipeline.stats.events_applied == 3 and not pipeline.stats.events_failed
    got = [(r.index, r.ts, r.cause.split()[0]) for r in audit.records]
    assert got == [
        ("Q", 20, "stock_split"),
        ("GR", 30, "dividend"),
        ("NT", 30, "dividend"),
        ("PX", 40, "delete_constituent"),
        ("GR", 40, "delete_constituent"),
        ("NT", 40, "delete_constituent"),
    ]
    split, gross = audit.records[0], audit.records[1]
    assert split.old_divisor == 30.0 and split.new_divisor == pytest.approx(30.0, rel=1e-15)
    assert "security=C" in split.cause and "ratio=2.0" in split.cause
    assert gross.old_divisor == 5.0 and gross.new_divisor == pytest.approx(4.9, rel=1e-15)
    assert gross.level == pytest.approx(2000.0, rel=1e-15)
    px = audit.records[3]  # A traded back to 50 at ts 30, so PX is at 1000: 5000 / 1000
    assert px.old_divisor == 10.0 and px.new_divisor == pytest.approx(5.0, rel=1e-15)


@pytest.mark.parametrize(
    "event",
    [
        StockSplit(effective=1, security="ZZZ", ratio=2.0),
        SharesChange(effective=1, security="ZZZ", issued_shares=10.0),
        AddConstituent(effective=1, index="NOPE", security="C", issued_shares=1, faf=1),
        DeleteConstituent(effective=1, index="NOPE", security="A"),
        AddConstituent(effective=1, index="PX", security="A", issued_shares=1, faf=1),
        AddConstituent(effective=1, index="GR", security="C", issued_shares=1, faf=1),
        AddConstituent(effective=1, index="PX", security="NEW", issued_shares=1, faf=1),
        DeleteConstituent(effective=1, index="PX", security="C"),
        ReplaceConstituent(
            effective=1, index="PX", old_security="C", security="N", issued_shares=1, faf=1, price=5
        ),
        FafChange(effective=1, security="C", faf=0.5, index="PX"),
        SpecialDividend(effective=1, security="A", amount=51.0),  # == price after the tick
        SpecialDividend(effective=1, security="A", amount=60.0),
        CashDividend(effective=1, security="A", amount=51.0),
        StockSplit(effective=1, security="A", ratio=0.0),
        Consolidation(effective=1, security="A", ratio=0.0),
        RightsIssue(effective=1, security="A", new_shares=1, per_held=0, subscription_price=1),
        Review(effective=1, rows=[ReviewRow("NOPE", "A", 1.0, 1.0)]),
        Review(effective=1, rows=[ReviewRow("PX", "A", 1.0, 1.0), ReviewRow("PX", "A", 2.0, 1)]),
    ],
    ids=lambda event: event.__struct_config__.tag,
)
def test_failed_event_changes_nothing(event: IndexEvent) -> None:
    calc = family()
    tick(calc, "A", 51.0)
    universe, seq = calc.universe, calc.seq.copy()
    prices, divisors, levels = calc.prices.copy(), calc.divisors.copy(), calc.levels.copy()
    with pytest.raises(EventError):
        apply_event(calc, event)
    assert calc.universe is universe
    assert np.array_equal(calc.prices, prices) and np.array_equal(calc.seq, seq)
    assert np.array_equal(calc.divisors, divisors) and np.array_equal(calc.levels, levels)


@pytest.mark.parametrize(
    "event",
    [
        SharesChange(effective=1, security="A", issued_shares=0.0),
        SharesChange(effective=1, security="A", issued_shares=-5.0),
        FafChange(effective=1, security="A", faf=0.0),
        FafChange(effective=1, security="A", faf=2.0),
        AddConstituent(effective=1, index="PX", security="N", issued_shares=-1, faf=1, price=5),
        AddConstituent(effective=1, index="PX", security="N", issued_shares=1, faf=1.5, price=5),
        SpecialDividend(effective=1, security="A", amount=-5.0),
        CashDividend(effective=1, security="A", amount=-5.0),
    ],
    ids=lambda event: event.__struct_config__.tag,
)
def test_values_the_reference_data_would_refuse_are_refused(event: IndexEvent) -> None:
    """Shares > 0, FAF in (0, 1] and a positive amount, as load_universe demands of files."""
    calc = family()
    divisors = calc.divisors.copy()
    with pytest.raises(EventError):
        apply_event(calc, event)
    assert np.array_equal(calc.divisors, divisors)


def test_deleting_the_last_constituent_is_refused() -> None:
    # Q holds A and C; without the refusal Q's divisor becomes 0 (level 0) and the next
    # addition gives divisor = capitalisation / 0 = inf: Q would never recover.
    calc = family()
    assert_continuous(calc, DeleteConstituent(effective=1, index="Q", security="A"))
    with pytest.raises(EventError):
        apply_event(calc, DeleteConstituent(effective=2, index="Q", security="C"))
    assert divisor(calc, "Q") == pytest.approx(20.0, rel=1e-15)  # 10000 / 500


def test_pipeline_counts_failed_events_and_carries_on() -> None:
    calc = family()
    sink = TestingSink(calc.universe.index_codes)
    pipeline = IndexPipeline(calc, sink)
    pipeline.schedule(
        [
            StockSplit(effective=20, security="ZZZ", ratio=2.0),
            Consolidation(effective=20, security="A", ratio=0.0),
            StockSplit(effective=30, security="A", ratio=2.0),
        ]
    )
    a = calc.universe.security_id("A")
    pipeline.process(TickColumns(np.array([10, 20, 30]), np.full(3, a), np.array([51, 52, 26.5])))
    assert pipeline.stats.events_applied == 1 and len(pipeline.stats.events_failed) == 2
    assert "ZZZ" in str(pipeline.stats.events_failed[0])
    assert [level for _, code, level, _ in sink.rows() if code == "PX"] == pytest.approx(
        [1010.0, 1020.0, 1030.0], rel=1e-14
    )  # A: 51, 52, then 26.5 after the split (= 53 before it)
