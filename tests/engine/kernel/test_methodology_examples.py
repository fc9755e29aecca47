"""Worked examples in the form index providers publish them, numbers written out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from engine.kernel.calculator import IndexCalculator
from tests.support.scalar_reference import RefIndex, RefRow, ScalarIndexModel
from tests.support.seed import SEED
from tests.support.universes import random_rows, universe_from_rows


def rel(a: float, b: float) -> float:
    return abs(a - b) / abs(b)


def test_hand_computed_three_stock_index() -> None:
    # A: 10 x 1000 x 0.5        = 5000
    # B: 20 x  500 x 0.8        = 8000
    # C: 50 x  400 x 0.7 x 0.5  = 7000   (explicit cap factor 0.5)
    # capitalisation 20000 at previous close, previous close level 1000 -> divisor 20
    indices = [RefIndex("HAND", 1000.0)]
    rows = [
        RefRow("HAND", "A", 1000.0, 0.5, None, 10.0),
        RefRow("HAND", "B", 500.0, 0.8, None, 20.0),
        RefRow("HAND", "C", 400.0, 0.7, 0.5, 50.0),
    ]
    universe = universe_from_rows(indices, rows)
    assert universe.divisors[0] == pytest.approx(20.0, rel=1e-15)
    calc = IndexCalculator(universe)
    a, b, c = (universe.security_id(code) for code in "ABC")
    # B trades at 22: B's capitalisation 22 x 500 x 0.8 = 8800 -> 20800 / 20 = 1040
    # A trades at 9:  A's capitalisation  9 x 1000 x 0.5 = 4500 -> 20300 / 20 = 1015
    # C trades at 40: C's capitalisation 40 x 400 x 0.35 = 5600 -> 18900 / 20 = 945
    out = calc.apply([b, a, c], [22.0, 9.0, 40.0])
    np.testing.assert_allclose(out.level, [1040.0, 1015.0, 945.0], rtol=1e-14)
    out = calc.apply([c], [60.0])  # 60 x 140 = 8400 -> 21700 / 20 = 1085
    assert out.level[0] == pytest.approx(1085.0, rel=1e-14)
    np.testing.assert_array_equal(out.seq, [4])


def test_chain_linked_form_equals_divisor_form() -> None:
    """Hang Seng: level = YCI x sum(Pt IS FAF CF) / sum(Pt-1 IS FAF CF), Pt-1 = yesterday."""
    rng = np.random.default_rng(SEED)
    indices, rows = random_rows(rng, 25, 4, capped_fraction=0.5)
    universe = universe_from_rows(indices, rows)
    model = ScalarIndexModel(indices, rows)
    yesterday = {r.security: r.prev_close for r in rows}
    calc = IndexCalculator(universe)
    codes = universe.index_codes
    for code in codes:
        at_prev_close = model.chain_linked_level(code, yesterday)
        assert rel(at_prev_close, model.indices[code].prev_close_level) < 1e-15
    n = len(universe.securities)
    for _ in range(20):  # 20 batches of up to 50 ticks
        size = int(rng.integers(1, 50))
        security = rng.integers(0, n, size)
        price = universe.prev_close[security] * np.exp(rng.normal(0.0, 0.05, size))
        out = calc.apply(security, price)
        for i, (sid, px) in enumerate(zip(security.tolist(), price.tolist(), strict=True)):
            model.tick(universe.securities[sid], px)
            for k in out.index[out.tick == i].tolist():
                level = out.level[(out.tick == i) & (out.index == k)][0]
                assert rel(level, model.chain_linked_level(codes[k], yesterday)) <= 1e-12
        for k, code in enumerate(codes):
            chain = model.chain_linked_level(code, yesterday)
            assert rel(calc.levels[k], chain) <= 1e-12
            assert rel(model.level(code), chain) <= 1e-13


def test_capping_example_inside_an_index() -> None:
    """Free-float caps 20M, 30M, 10M, 5M with a 30% cap: weights .30/.30/.2667/.1333."""
    indices = [RefIndex("CAP30", 8000.0, 0.30)]
    rows = [
        RefRow("CAP30", "W", 2e6, 1.0, None, 10.0),  # 20M
        RefRow("CAP30", "X", 4e6, 0.75, None, 10.0),  # 30M
        RefRow("CAP30", "Y", 1e6, 0.5, None, 20.0),  # 10M
        RefRow("CAP30", "Z", 5e5, 1.0, None, 10.0),  # 5M
    ]
    universe = universe_from_rows(indices, rows)
    m = universe.membership
    capped = universe.prev_close[m.security] * universe.weights()
    weights = capped / capped.sum()
    order = [universe.security_id(code) for code in "WXYZ"]
    by_security = dict(zip(m.security.tolist(), weights.tolist(), strict=True))
    np.testing.assert_allclose(
        [by_security[s] for s in order], [0.30, 0.30, 0.8 / 3, 0.4 / 3], rtol=1e-12
    )
    cf = dict(zip(m.security.tolist(), m.cap_factor.tolist(), strict=True))
    np.testing.assert_allclose([cf[s] for s in order], [0.5625, 0.375, 1.0, 1.0], rtol=1e-12)
    # Divisor: 0.30 + 0.30 + 0.2667 + 0.1333 of capped capitalisation 37.5M -> 37.5M / 8000.
    assert universe.divisors[0] == pytest.approx(37.5e6 / 8000.0, rel=1e-14)
    calc = IndexCalculator(universe)
    assert rel(calc.levels[0], 8000.0) <= 1e-15
    # A 10% rise in W moves the index by its 30% weight: 8000 x (1 + 0.3 x 0.1) = 8240.
    out = calc.apply([universe.security_id("W")], [11.0])
    assert out.level[0] == pytest.approx(8240.0, rel=1e-14)


def continuity_universe() -> tuple[list[RefIndex], list[RefRow]]:
    return random_rows(np.random.default_rng(SEED + 7), 30, 5, capped_fraction=0.5)


def test_tick_at_previous_price_keeps_previous_close_level() -> None:
    indices, rows = continuity_universe()
    universe = universe_from_rows(indices, rows)
    calc = IndexCalculator(universe)
    prev = np.array([ix.prev_close_level for ix in indices])
    start = calc.levels.copy()
    assert np.max(np.abs(start - prev) / prev) <= 1e-15
    n = len(universe.securities)
    out = calc.apply(np.arange(n), universe.prev_close)  # every security, unchanged price
    np.testing.assert_array_equal(out.level, start[out.index])
    np.testing.assert_array_equal(calc.levels, start)
    for sid in range(n):  # one tick per batch too
        out = calc.apply([sid], [universe.prev_close[sid]])
        assert np.max(np.abs(out.level - prev[out.index]) / prev[out.index]) <= 1e-15
    np.testing.assert_array_equal(calc.levels, start)


def test_price_away_and_back_restores_the_level() -> None:
    indices, rows = continuity_universe()
    universe = universe_from_rows(indices, rows)
    calc = IndexCalculator(universe)
    start = calc.levels.copy()
    rng = np.random.default_rng(SEED)
    n = len(universe.securities)
    moved = rng.permutation(n)[:6]
    away = universe.prev_close[moved] * np.array([1.5, 0.2, 3.0, 0.9, 1e-3, 40.0])
    security = np.concatenate([moved, moved[::-1]])
    price = np.concatenate([away, universe.prev_close[moved[::-1]]])
    out = calc.apply(security, price)
    np.testing.assert_array_equal(calc.prices, universe.prev_close)
    np.testing.assert_allclose(calc.levels, start, rtol=1e-13)  # same prices, same level
    # The last level each index published in the batch is its starting level again.
    ids, last = np.unique(out.index[::-1], return_index=True)
    np.testing.assert_allclose(out.level[::-1][last], start[ids], rtol=1e-13)
    # A single security away and back inside one batch: back to the start within rounding.
    sid = int(moved[0])
    out = calc.apply([sid, sid], [universe.prev_close[sid] * 1.37, universe.prev_close[sid]])
    np.testing.assert_allclose(
        out.level[out.tick == 1], start[out.index[out.tick == 1]], rtol=1e-15
    )
