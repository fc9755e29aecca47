"""The market simulator: reproducible, on the HKEX price grid, realistic rates and moves."""

from __future__ import annotations

import numpy as np
import pytest

from engine.refdata.builtin import load_builtin_universe
from engine.refdata.universe import Universe
from producers.simulator import (
    NS_PER_SECOND,
    TRADING_SECONDS_PER_DAY,
    MarketSimulator,
    free_float_caps,
)
from producers.tick_sizes import on_tick_grid, quotes_around, round_to_tick, tick_size
from tests.support.seed import SEED
from tests.support.universes import random_rows, universe_from_rows

START_NS = 1_767_225_600 * NS_PER_SECOND


@pytest.fixture
def universe() -> Universe:
    print(f"seed {SEED}")
    return universe_from_rows(*random_rows(np.random.default_rng(SEED), 300, 8))


def test_spread_table_bands() -> None:
    prices = np.array([0.01, 0.25, 0.26, 0.5, 0.51, 10, 10.02, 20, 100, 150, 400, 800, 1500, 3000])
    expected = [0.001, 0.001, 0.005, 0.005, 0.01, 0.01, 0.02, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2]
    np.testing.assert_array_equal(tick_size(prices), expected)
    assert tick_size(np.array([9000.0]))[0] == 5.0
    np.testing.assert_array_equal(
        round_to_tick([10.013, 10.011, 0.0001, 5003.0]), [10.02, 10.02, 0.001, 5005.0]
    )
    bid, ask = quotes_around([9.995, 10.0, 19.99, 20.0])
    np.testing.assert_array_equal(bid, [9.99, 10.0, 19.98, 20.0])
    np.testing.assert_array_equal(ask, [10.0, 10.02, 20.0, 20.05])
    assert not on_tick_grid(np.array([10.01, 0.251, 150.05])).any()


def test_same_seed_gives_identical_ticks(universe: Universe) -> None:
    runs = []
    for _ in range(2):
        sim = MarketSimulator(universe, SEED, start_ns=START_NS)
        runs.append([sim.next_batch(5_000), sim.batch_for(NS_PER_SECOND), sim.next_batch(1)])
    for first, second in zip(*runs, strict=True):
        assert len(first) > 0
        np.testing.assert_array_equal(first.ts_event, second.ts_event)
        np.testing.assert_array_equal(first.security, second.security)
        np.testing.assert_array_equal(first.price, second.price)

    other = MarketSimulator(universe, SEED + 1, start_ns=START_NS).next_batch(5_000)
    assert not np.array_equal(other.security, runs[0][0].security)


@pytest.mark.slow
@pytest.mark.parametrize("quote_bounce", [True, False])
def test_prices_positive_and_on_the_tick_grid(quote_bounce: bool) -> None:
    print(f"seed {SEED}")
    # Penny stocks to large prices, so every band of the spread table is crossed.
    rows = random_rows(np.random.default_rng(SEED), 200, 4, price_range=(0.002, 8000.0))
    sim = MarketSimulator(
        universe_from_rows(*rows),
        SEED,
        start_ns=START_NS,
        rate=20.0,
        volatility=(0.5, 2.0),
        jumps_per_day=20.0,
        quote_bounce=quote_bounce,
    )
    ticks = sim.batch_for(int(5 * TRADING_SECONDS_PER_DAY * NS_PER_SECOND))
    assert len(ticks) > 100_000
    assert (ticks.price > 0).all()
    assert np.isfinite(ticks.price).all()
    assert on_tick_grid(ticks.price).all()
    assert np.unique(tick_size(ticks.price)).size >= 8


def test_event_times_non_decreasing_within_and_across_batches(universe: Universe) -> None:
    sim = MarketSimulator(universe, SEED, start_ns=START_NS)
    batches = [sim.next_batch(3_000), sim.batch_for(2 * NS_PER_SECOND), sim.next_batch(3_000)]
    times = np.concatenate([b.ts_event for b in batches])
    assert times[0] > START_NS
    assert (np.diff(times) >= 0).all()
    assert times.dtype == np.int64

    span_start = sim.now_ns
    span = sim.batch_for(NS_PER_SECOND // 2)
    assert sim.now_ns == span_start + NS_PER_SECOND // 2
    assert (span.ts_event > span_start).all()
    assert (span.ts_event <= sim.now_ns).all()


def test_sequence_numbers_count_each_security_ticks_without_gaps(universe: Universe) -> None:
    sim = MarketSimulator(universe, SEED, start_ns=START_NS)
    batches = [sim.next_batch(2_000), sim.batch_for(NS_PER_SECOND), sim.next_batch(2_000)]
    seen: dict[int, int] = {}
    for batch in batches:
        assert batch.seq is not None
        for security, seq in zip(batch.security.tolist(), batch.seq.tolist(), strict=True):
            assert seq == seen.get(security, 0) + 1
            seen[security] = seq


def test_large_caps_tick_much_more_than_small_caps(universe: Universe) -> None:
    sim = MarketSimulator(universe, SEED, start_ns=START_NS)
    counts = np.bincount(sim.next_batch(400_000).security, minlength=len(universe.securities))
    by_cap = np.argsort(free_float_caps(universe))
    decile = by_cap.size // 10
    smallest, largest = counts[by_cap[:decile]].sum(), counts[by_cap[-decile:]].sum()
    assert largest > 5 * smallest
    assert counts[by_cap[-1]] > counts[by_cap[0]]
    # Observed counts follow the configured per-stock rates.
    expected = sim.rates / sim.rate * counts.sum()
    busy = expected > 500
    assert busy.sum() > 10
    np.testing.assert_allclose(counts[busy], expected[busy], rtol=0.25)


def test_tick_rate_as_configured(universe: Universe) -> None:
    sim = MarketSimulator(universe, SEED, start_ns=START_NS, rate=2_000.0)
    spanned = sim.batch_for(10 * NS_PER_SECOND)
    assert abs(len(spanned) - 20_000) < 5 * np.sqrt(20_000)

    before = sim.now_ns
    counted = sim.next_batch(20_000)
    seconds = (counted.ts_event[-1] - before) / NS_PER_SECOND
    assert 9.0 < seconds < 11.0


def test_volatility_scales_with_square_root_of_time(universe: Universe) -> None:
    sim = MarketSimulator(universe, SEED, start_ns=START_NS, rate=30.0, jumps_per_day=0.0)
    start = sim.true_prices
    for _ in range(10):
        sim.batch_for(int(TRADING_SECONDS_PER_DAY * NS_PER_SECOND / 10))
    years = (sim.last_tick_ns - START_NS) / NS_PER_SECOND / (252 * TRADING_SECONDS_PER_DAY)
    ticked = years > 0
    z = np.log(sim.true_prices / start)[ticked] / (sim.volatility[ticked] * np.sqrt(years[ticked]))
    assert ticked.sum() > 200
    assert 0.7 < float(np.mean(z**2)) < 1.3
    assert ((sim.volatility >= 0.2) & (sim.volatility <= 0.5)).all()


def test_jumps_move_each_security_from_its_own_previous_price() -> None:
    print(f"seed {SEED}")
    rows = random_rows(np.random.default_rng(SEED), 50, 3, price_range=(110.0, 190.0))
    sim = MarketSimulator(
        universe_from_rows(*rows),
        SEED,
        start_ns=START_NS,
        volatility=(1e-9, 1e-9),
        jumps_per_day=1e15,
        jump_size=(0.04, 0.04),
        quote_bounce=False,
    )
    ticks = [sim.next_batch(2_000), sim.next_batch(2_000)]
    security = np.concatenate([t.security for t in ticks])
    price = np.concatenate([t.price for t in ticks])
    ts = np.concatenate([t.ts_event for t in ticks])
    # Scalar reference: every tick is a 4% jump from the same security's previous tick.
    previous: dict[int, tuple[int, float]] = {}
    checked = 0
    for sec, px, t in zip(security.tolist(), price.tolist(), ts.tolist(), strict=True):
        if sec in previous and t > previous[sec][0]:
            before = previous[sec][1]
            # Each price is within half a tick of the true one; the band above may be coarser.
            rounding = float(tick_size(px * 1.01)) / px + float(tick_size(before * 1.01)) / before
            assert abs(abs(np.log(px / before)) - 0.04) < rounding + 1e-9
            checked += 1
        previous[sec] = (t, px)
    assert checked > 3_000


def test_builtin_universe() -> None:
    universe = load_builtin_universe()
    sim = MarketSimulator(universe, SEED, start_ns=START_NS)
    ticks = sim.batch_for(5 * NS_PER_SECOND)
    assert 9_000 < len(ticks) < 11_000
    assert on_tick_grid(ticks.price).all()
    assert ((ticks.security >= 0) & (ticks.security < len(universe.securities))).all()


def test_invalid_arguments(universe: Universe) -> None:
    with pytest.raises(ValueError, match="rate"):
        MarketSimulator(universe, SEED, start_ns=START_NS, rate=0.0)
    sim = MarketSimulator(universe, SEED, start_ns=START_NS)
    with pytest.raises(ValueError, match="n_ticks"):
        sim.next_batch(-1)
    with pytest.raises(ValueError, match="duration_ns"):
        sim.batch_for(-1)
    assert len(sim.next_batch(0)) == 0
    assert len(sim.batch_for(0)) == 0


def test_volumes_are_whole_board_lots(universe: Universe) -> None:
    sim = MarketSimulator(universe, SEED, start_ns=START_NS, lot_size=500, max_lots=20)
    for ticks in (sim.next_batch(20_000), sim.batch_for(NS_PER_SECOND)):
        assert ticks.volume is not None and ticks.volume.dtype == np.float64
        assert len(ticks.volume) == len(ticks)
        lots = ticks.volume / 500
        np.testing.assert_array_equal(lots, np.round(lots))
        assert lots.min() == 1 and lots.max() == 20  # both ends reached in 20,000 trades
    default = MarketSimulator(universe, SEED, start_ns=START_NS).next_batch(20_000).volume
    assert default is not None
    assert default.min() == 100 and default.max() == 10_000 and 500 < default.mean() < 2_000


def test_same_seed_gives_identical_volumes(universe: Universe) -> None:
    first, second, other = (
        MarketSimulator(universe, seed, start_ns=START_NS).next_batch(5_000)
        for seed in (SEED, SEED, SEED + 1)
    )
    assert first.volume is not None and second.volume is not None and other.volume is not None
    np.testing.assert_array_equal(first.volume, second.volume)
    assert not np.array_equal(first.volume, other.volume)


def test_volumes_come_from_their_own_generator_so_prices_do_not_move(universe: Universe) -> None:
    plain = MarketSimulator(universe, SEED, start_ns=START_NS)
    rerolled = MarketSimulator(universe, SEED, start_ns=START_NS)
    rerolled._volume_rng = np.random.default_rng(SEED + 99)
    for a, b in (
        (plain.next_batch(5_000), rerolled.next_batch(5_000)),
        (plain.batch_for(NS_PER_SECOND), rerolled.batch_for(NS_PER_SECOND)),
    ):
        for name in ("ts_event", "security", "price", "seq"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name), name)
        assert a.volume is not None and b.volume is not None
        assert not np.array_equal(a.volume, b.volume)


def test_invalid_lots(universe: Universe) -> None:
    with pytest.raises(ValueError, match="lot_size"):
        MarketSimulator(universe, SEED, start_ns=START_NS, lot_size=0)
    with pytest.raises(ValueError, match="max_lots"):
        MarketSimulator(universe, SEED, start_ns=START_NS, max_lots=0)
