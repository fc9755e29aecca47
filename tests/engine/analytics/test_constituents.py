"""Breadth, contributions and movers against a pandas reference, and their reconciliation with
the engine's levels (days with and without a divisor event, across a day roll)."""

from __future__ import annotations

import msgspec
import numpy as np
import pandas as pd
import pytest

from engine.analytics.constituents import (
    BOTTOM,
    TOP,
    BaselineState,
    ConstituentBaseline,
    ConstituentFigures,
    ConstituentsConfig,
    MemberRows,
    calculator_figures,
    constituent_figures,
)
from engine.kernel.calculator import IndexCalculator
from engine.maintenance.adjustments import apply_event
from engine.maintenance.events import SharesChange, StockSplit
from engine.refdata.builtin import load_builtin_universe
from engine.refdata.universe import Universe
from tests.support.constituent_reference import (
    breadth_reference,
    member_frame,
    movers_reference,
    points_reference,
    random_walk_ticks,
)
from tests.support.seed import SEED
from tests.support.universes import random_rows, universe_from_rows

RTOL = 1e-9


def _random_universe(rng: np.random.Generator) -> Universe:
    indices, rows = random_rows(rng, n_securities=50, n_indices=6)
    return universe_from_rows(indices, rows)


def _trade(calculator: IndexCalculator, rng: np.random.Generator, n: int, batches: int = 4) -> None:
    security, price = random_walk_ticks(rng, calculator.prices.copy(), n)
    for part in np.array_split(np.arange(n), batches):
        calculator.apply(security[part], price[part])


def _assert_matches_reference(
    figures: ConstituentFigures,
    calculator: IndexCalculator,
    prev_close: np.ndarray,
    index_ids: list[int],
    n: int,
) -> None:
    index, security, weight = calculator.member_weights()
    frame = member_frame(
        index,
        security,
        weight,
        prices=calculator.prices,
        divisors=calculator.divisors,
        prev_close=prev_close,
    )
    breadth = breadth_reference(frame, index_ids)
    b = figures.breadth
    assert b.index.tolist() == index_ids
    for column in ("up", "down", "unchanged", "unpriced"):
        np.testing.assert_array_equal(getattr(b, column), breadth[column].to_numpy())
    np.testing.assert_allclose(b.pct_up, breadth["pct_up"].to_numpy(), rtol=RTOL)
    points = points_reference(frame, index_ids)
    np.testing.assert_allclose(figures.points.points, points["points"].to_numpy(), rtol=RTOL)
    np.testing.assert_allclose(
        figures.points.adjusted_prev_close, points["adjusted_prev_close"].to_numpy(), rtol=RTOL
    )
    rows = frame[frame["index"].isin(index_ids)]
    c = figures.contributions
    expected = rows.set_index(["index", "security"])["contribution"]
    keys = pd.MultiIndex.from_arrays([c.index.astype(np.int64), c.security])
    got = pd.Series(c.contribution, index=keys)
    pd.testing.assert_series_equal(
        got.sort_index(), expected.sort_index(), check_names=False, rtol=RTOL
    )
    movers = movers_reference(frame, index_ids, n)
    m = figures.movers
    np.testing.assert_array_equal(m.index, movers["index"].to_numpy())
    np.testing.assert_array_equal(m.side, movers["side"].to_numpy())
    np.testing.assert_array_equal(m.rank, movers["rank"].to_numpy())
    np.testing.assert_array_equal(m.security, movers["security"].to_numpy())
    for column in ("contribution", "price", "change_pct"):
        np.testing.assert_allclose(getattr(m, column), movers[column].to_numpy(), rtol=RTOL)


@pytest.mark.parametrize("movers", [0, 1, 5, 30])
def test_figures_match_the_pandas_reference_on_random_universes(movers: int) -> None:
    print(f"seed {SEED}")
    rng = np.random.default_rng([SEED, movers])
    universe = _random_universe(rng)
    calculator = IndexCalculator(universe)
    baseline = ConstituentBaseline.of(universe)
    config = ConstituentsConfig(movers=movers)
    index_ids = rng.permutation(6)[:4].tolist()
    for _ in range(3):
        _trade(calculator, rng, 400)
        figures = calculator_figures(calculator, baseline, index_ids, config)
        _assert_matches_reference(figures, calculator, baseline.prev_close, index_ids, movers)
    assert len(figures.movers) <= 2 * movers * len(index_ids)
    assert (len(figures.movers) > 0) == (movers > 0)


def _builtin_day() -> tuple[Universe, IndexCalculator, ConstituentBaseline]:
    universe = load_builtin_universe()
    return universe, IndexCalculator(universe), ConstituentBaseline.of(universe)


def test_contributions_add_up_to_the_point_change_on_a_day_without_events() -> None:
    print(f"seed {SEED}")
    rng = np.random.default_rng(SEED)
    universe, calculator, baseline = _builtin_day()
    prev_close_level = np.array([spec.prev_close_level for spec in universe.indices])
    ids = list(range(len(universe.indices)))
    for _ in range(3):
        _trade(calculator, rng, 3000, batches=7)
        figures = calculator_figures(calculator, baseline, ids)
        change = calculator.levels - prev_close_level
        np.testing.assert_allclose(figures.points.points, change, rtol=0, atol=1e-9)
        np.testing.assert_allclose(figures.points.adjusted_prev_close, prev_close_level, rtol=1e-12)
    assert np.all(figures.breadth.unpriced == 0)
    assert np.all(figures.breadth.up + figures.breadth.down > 0)


def test_after_a_divisor_event_contributions_add_up_to_level_minus_adjusted_prev_close() -> None:
    print(f"seed {SEED}")
    rng = np.random.default_rng(SEED)
    universe, calculator, baseline = _builtin_day()
    prev_close_level = np.array([spec.prev_close_level for spec in universe.indices])
    ids = list(range(len(universe.indices)))
    _trade(calculator, rng, 2000)
    hsi = universe.index_id("HSI")
    member = int(universe.membership.security[universe.membership.index == hsi][0])
    code = universe.securities[member]
    shares = float(universe.membership.issued_shares[universe.membership.security == member][0])
    changes = apply_event(
        calculator, SharesChange(effective=1, security=code, issued_shares=shares * 1.5)
    )
    affected = [universe.index_id(change.index) for change in changes]
    assert hsi in affected
    _trade(calculator, rng, 2000)
    figures = calculator_figures(calculator, baseline, ids)
    adjusted = figures.points.adjusted_prev_close
    np.testing.assert_allclose(figures.points.points, calculator.levels - adjusted, atol=1e-9)
    unaffected = np.setdiff1d(ids, affected)
    np.testing.assert_allclose(adjusted[unaffected], prev_close_level[unaffected], rtol=1e-12)
    assert np.all(np.abs(adjusted[affected] - prev_close_level[affected]) > 1e-6)


def test_after_a_day_roll_contributions_add_up_to_the_change_from_the_close() -> None:
    print(f"seed {SEED}")
    rng = np.random.default_rng(SEED)
    universe = _random_universe(rng)
    calculator = IndexCalculator(universe)
    baseline = ConstituentBaseline.of(universe)
    _trade(calculator, rng, 500)
    closing = calculator.levels.copy()
    baseline.roll(calculator.prices)
    ids = list(range(6))
    figures = calculator_figures(calculator, baseline, ids)
    np.testing.assert_array_equal(figures.points.points, 0.0)
    assert np.all(figures.breadth.unchanged == np.bincount(universe.membership.index))
    _trade(calculator, rng, 500)
    figures = calculator_figures(calculator, baseline, ids)
    np.testing.assert_allclose(figures.points.points, calculator.levels - closing, atol=1e-9)
    _assert_matches_reference(figures, calculator, baseline.prev_close, ids, 5)


def test_a_split_keeps_the_reconciliation_and_its_security_stays_priced() -> None:
    universe, calculator, baseline = _builtin_day()
    member = int(universe.membership.security[0])
    apply_event(calculator, StockSplit(effective=1, security=universe.securities[member], ratio=2))
    figures = calculator_figures(calculator, baseline, range(len(universe.indices)))
    np.testing.assert_allclose(
        figures.points.points, calculator.levels - figures.points.adjusted_prev_close, atol=1e-9
    )
    split = figures.contributions.security == member
    np.testing.assert_allclose(figures.contributions.change_pct[split], -50.0)


def test_a_rescaled_baseline_takes_a_split_as_no_move() -> None:
    universe, calculator, baseline = _builtin_day()
    prev_close_level = np.array([spec.prev_close_level for spec in universe.indices])
    member = int(universe.membership.security[0])
    before = calculator.prices.copy()
    apply_event(calculator, StockSplit(effective=1, security=universe.securities[member], ratio=2))
    calculator.add_securities(["NEW1"])
    baseline.rescale(before, calculator.prices)
    expected = np.append(universe.prev_close, np.nan)
    expected[member] /= 2
    np.testing.assert_array_equal(baseline.prev_close, expected)
    figures = calculator_figures(calculator, baseline, range(len(universe.indices)))
    np.testing.assert_allclose(figures.points.adjusted_prev_close, prev_close_level, rtol=1e-12)
    np.testing.assert_allclose(figures.points.points, 0.0, atol=1e-9)
    split = figures.contributions.security == member
    assert split.any()
    np.testing.assert_array_equal(figures.contributions.change_pct[split], 0.0)


def test_equal_contributions_rank_by_security_id() -> None:
    members = MemberRows(
        index=np.array([0, 0, 0, 0, 1, 1], dtype=np.intp),
        security=np.array([3, 1, 2, 0, 4, 2], dtype=np.intp),
        weight=np.ones(6),
        n_indices=2,
    )
    prev_close = np.full(5, 10.0)
    prices = np.array([11.0, 11.0, 9.0, 11.0, 12.0])
    figures = constituent_figures(
        [1, 0],
        members,
        prices,
        divisors=np.ones(2),
        prev_close=prev_close,
        config=ConstituentsConfig(movers=2),
    )
    m = figures.movers
    assert m.index.tolist() == [1, 1, 1, 1, 0, 0, 0, 0]
    assert m.side.tolist() == [TOP, TOP, BOTTOM, BOTTOM] * 2
    assert m.rank.tolist() == [1, 2, 1, 2] * 2
    assert m.security.tolist() == [4, 2, 2, 4, 0, 1, 2, 0]
    assert m.contribution.tolist() == [2.0, -1.0, -1.0, 2.0, 1.0, 1.0, -1.0, 1.0]
    assert m.change_pct.tolist() == pytest.approx([20.0, -10.0, -10.0, 20.0, 10, 10, -10, 10])
    b = figures.breadth
    assert (b.up.tolist(), b.down.tolist(), b.unchanged.tolist()) == ([1, 3], [1, 1], [0, 0])
    assert b.pct_up.tolist() == [50.0, 75.0]


def test_nan_and_zero_prices_are_unpriced_and_raise_nothing() -> None:
    members = MemberRows(
        index=np.array([0, 0, 0, 0, 1], dtype=np.intp),
        security=np.array([0, 1, 2, 3, 4], dtype=np.intp),
        weight=np.array([1.0, 2.0, 3.0, 4.0, 5.0]),
        n_indices=2,
    )
    prices = np.array([11.0, np.nan, 0.0, 10.0, 5.0])
    prev_close = np.array([10.0, 10.0, 10.0, 10.0, np.nan])
    with np.errstate(all="raise"):
        figures = constituent_figures(
            [0, 1], members, prices, divisors=np.ones(2), prev_close=prev_close
        )
    b = figures.breadth
    assert b.unpriced.tolist() == [2, 1]
    assert (b.up.tolist(), b.unchanged.tolist()) == ([1, 0], [1, 0])
    assert b.pct_up[0] == 50.0 and np.isnan(b.pct_up[1])
    assert figures.points.points.tolist() == [1.0, 0.0]
    assert np.isfinite(figures.contributions.contribution).all()
    assert figures.movers.security.tolist() == [0, 3, 3, 0]
    # unpriced rows enter the adjusted previous close at their current price
    np.testing.assert_array_equal(figures.points.adjusted_prev_close, [np.nan, 25.0])


def test_index_ids_must_be_distinct_and_known() -> None:
    members = MemberRows(
        np.array([0], dtype=np.intp), np.array([0], dtype=np.intp), np.ones(1), n_indices=1
    )
    one = np.ones(1)
    for ids in ([0, 0], [1], [-1]):
        with pytest.raises(ValueError, match="index ids"):
            constituent_figures(ids, members, one, divisors=one, prev_close=one)
    empty = constituent_figures([], members, one, divisors=one, prev_close=one)
    assert len(empty.breadth) == len(empty.movers) == len(empty.contributions) == 0


def test_baseline_round_trips_bitwise_and_pads_new_securities() -> None:
    rng = np.random.default_rng(SEED)
    prices = rng.uniform(0.5, 500.0, 40)
    prices[[3, 7]] = np.nan
    baseline = ConstituentBaseline(prices)
    decoded = msgspec.msgpack.decode(msgspec.msgpack.encode(baseline.capture()), type=BaselineState)
    restored = ConstituentBaseline([])
    restored.restore(decoded)
    assert restored.prev_close.tobytes() == baseline.prev_close.tobytes()
    padded = restored.prices_for(42)
    assert padded[:40].tobytes() == prices.tobytes() and np.isnan(padded[40:]).all()
    baseline.roll(prices * 2)
    np.testing.assert_array_equal(baseline.prev_close, prices * 2)
    with pytest.raises(ValueError, match="read-only"):
        baseline.prev_close[0] = 1.0


def test_config_defaults_and_validation() -> None:
    assert ConstituentsConfig().movers == 5
    decode = msgspec.json.Decoder(ConstituentsConfig)
    assert decode.decode(b'{"movers": 3}').movers == 3
    for bad in (b'{"movers": -1}', b'{"top": 3}'):
        with pytest.raises(msgspec.ValidationError):
            decode.decode(bad)
