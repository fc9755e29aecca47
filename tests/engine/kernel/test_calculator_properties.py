"""IndexCalculator against the plain-Python ScalarIndexModel, tick by tick.

Every level the engine publishes must match a full ``math.fsum`` recompute to 1e-12 relative,
rows must come in tick order and, within a tick, in index id order, and per-index sequence
numbers must run 1, 2, 3, ... whatever the batch split.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from engine.kernel.calculator import IndexCalculator, LevelUpdates
from engine.refdata.builtin import load_builtin_universe
from engine.refdata.universe import IndexSpec, Membership, Universe, build_universe
from producers.simulator import MarketSimulator
from tests.support.scalar_reference import RefIndex, RefRow, ScalarIndexModel
from tests.support.seed import SEED
from tests.support.universes import random_rows, universe_from_rows

REL_TOL = 1e-12


@dataclass(frozen=True)
class Scenario:
    indices: list[RefIndex]
    rows: list[RefRow]
    universe: Universe
    security: NDArray[np.int64]
    price: NDArray[np.float64]


def max_rel_error(got: NDArray[np.float64], want: NDArray[np.float64]) -> float:
    if got.size == 0:
        return 0.0
    return float(np.max(np.abs(got - want) / np.abs(want)))


def run_batches(
    universe: Universe, security: NDArray[np.int64], price: NDArray[np.float64], cuts: list[int]
) -> tuple[IndexCalculator, LevelUpdates]:
    """Apply the stream split at ``cuts`` (sorted positions); tick numbers are stream-global."""
    calc = IndexCalculator(universe)
    bounds = [0, *cuts, security.size]
    parts: list[tuple[int, LevelUpdates]] = []
    for lo, hi in itertools.pairwise(bounds):
        if hi > lo:
            parts.append((lo, calc.apply(security[lo:hi], price[lo:hi])))
    return calc, LevelUpdates.concat([replace(u, tick=u.tick + lo) for lo, u in parts])


def reference_rows(
    scenario: Scenario,
) -> tuple[NDArray[np.int64], NDArray[np.int32], NDArray[np.float64], ScalarIndexModel]:
    """(tick, index id, level) for every tick x index containing its security, by full recompute."""
    model = ScalarIndexModel(scenario.indices, scenario.rows)
    index_id = {code: i for i, code in enumerate(scenario.universe.index_codes)}
    ticks: list[int] = []
    index: list[int] = []
    level: list[float] = []
    for i, (sid, px) in enumerate(zip(scenario.security, scenario.price, strict=True)):
        for code, value in model.tick(scenario.universe.securities[int(sid)], float(px)):
            ticks.append(i)
            index.append(index_id[code])
            level.append(value)
    return (
        np.array(ticks, dtype=np.int64),
        np.array(index, dtype=np.int32),
        np.array(level, dtype=np.float64),
        model,
    )


def assert_seq_without_gaps(updates: LevelUpdates, n_indices: int) -> None:
    for k in range(n_indices):
        seq = updates.seq[updates.index == k]
        np.testing.assert_array_equal(seq, np.arange(1, seq.size + 1), err_msg=f"index {k}")


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    seed = draw(st.integers(0, 2**32 - 1))
    n_securities = draw(st.integers(1, 30))
    n_indices = draw(st.integers(1, 6))
    capped_fraction = draw(st.sampled_from([0.0, 0.5, 1.0]))
    price_range = draw(st.sampled_from([(0.5, 500.0), (1e-4, 1e6)]))
    rng = np.random.default_rng(seed)
    indices, rows = random_rows(rng, n_securities, n_indices, price_range, capped_fraction)
    universe = universe_from_rows(indices, rows)
    n = len(universe.securities)
    current = universe.prev_close.copy()
    # Repeats are the norm: a handful of hot securities take most ticks.
    hot = draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=4))
    pick = st.one_of(st.sampled_from(hot), st.integers(0, n - 1))
    move = st.one_of(
        st.floats(-4.0, 6.0).map(lambda e: ("absolute", 10.0**e)),  # anywhere in 1e-4 .. 1e6
        st.floats(-0.05, 0.05).map(lambda r: ("relative", 1.0 + r)),  # an ordinary trade
        st.sampled_from([("relative", 1e-6), ("relative", 1e6), ("relative", 1.0)]),
    )
    security: list[int] = []
    price: list[float] = []
    for _ in range(draw(st.integers(1, 60))):
        sid = draw(pick)
        kind, value = draw(move)
        px = value if kind == "absolute" else float(current[sid]) * value
        px = float(np.clip(px, 1e-4, 1e6))
        current[sid] = px
        security.append(sid)
        price.append(px)
    return Scenario(
        indices,
        rows,
        universe,
        np.array(security, dtype=np.int64),
        np.array(price, dtype=np.float64),
    )


@st.composite
def scenario_and_splits(draw: st.DrawFn) -> tuple[Scenario, list[int], list[int]]:
    scenario = draw(scenarios())
    n = scenario.security.size
    positions = st.integers(0, n)
    cuts_a = sorted(draw(st.sets(positions, max_size=n)))
    cuts_b = sorted(draw(st.sets(positions, max_size=n)))
    return scenario, cuts_a, cuts_b


@pytest.mark.slow
@settings(
    derandomize=True,
    deadline=None,
    max_examples=250,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(scenario_and_splits())
def test_levels_match_scalar_reference_whatever_the_split(
    case: tuple[Scenario, list[int], list[int]],
) -> None:
    scenario, cuts_a, cuts_b = case
    want_tick, want_index, want_level, model = reference_rows(scenario)
    n_indices = len(scenario.universe.indices)
    runs = {
        "one batch": run_batches(scenario.universe, scenario.security, scenario.price, []),
        "split a": run_batches(scenario.universe, scenario.security, scenario.price, cuts_a),
        "split b": run_batches(scenario.universe, scenario.security, scenario.price, cuts_b),
    }
    for name, (calc, got) in runs.items():
        np.testing.assert_array_equal(got.tick, want_tick, err_msg=name)
        np.testing.assert_array_equal(got.index, want_index, err_msg=name)
        assert max_rel_error(got.level, want_level) <= REL_TOL, name
        assert_seq_without_gaps(got, n_indices)
        np.testing.assert_array_equal(calc.seq, np.bincount(want_index, minlength=n_indices))
        # Final prices: the last tick of each security, else the previous close.
        expected_prices = scenario.universe.prev_close.copy()
        set_last_prices(expected_prices, scenario.security, scenario.price)
        np.testing.assert_array_equal(calc.prices, expected_prices, err_msg=name)
        # Running levels stay within rounding of an exact recompute (anchored every few
        # thousand levels), while being independent of batch boundaries (tested below).
        np.testing.assert_allclose(calc.levels, calc.recompute_levels(), rtol=REL_TOL, err_msg=name)
        final_ref = np.array([model.level(code) for code in scenario.universe.index_codes])
        assert max_rel_error(calc.levels.copy(), final_ref) <= REL_TOL, name
    # Same stream, any split: the same rows and seq; the end state is bit-for-bit the same.
    _, whole = runs["one batch"]
    for name in ("split a", "split b"):
        calc, got = runs[name]
        np.testing.assert_array_equal(got.seq, whole.seq, err_msg=name)
        assert max_rel_error(got.level, whole.level) <= REL_TOL, name
        np.testing.assert_array_equal(calc.levels, runs["one batch"][0].levels, err_msg=name)


def test_crash_of_ten_orders_of_magnitude_within_one_batch() -> None:
    """A dominant name falling 1e6 -> 1e-4 and back inside one batch (cancellation guard)."""
    indices = [RefIndex("A", 2345.6), RefIndex("B", 101.25)]
    rows = [
        RefRow("A", "BIG", 7.3e9, 0.91, None, 1e6),
        RefRow("A", "SML", 1.1e6, 0.37, 0.77, 3.21),
        RefRow("B", "SML", 1.1e6, 0.37, None, 3.21),
        RefRow("B", "OTH", 2.9e7, 0.55, None, 17.3),
    ]
    universe = universe_from_rows(indices, rows)
    big, sml, oth = (universe.security_id(c) for c in ("BIG", "SML", "OTH"))
    security = np.array([big, sml, big, oth, sml, big, big, oth, sml], dtype=np.int64)
    price = np.array([9.9e5, 3.3, 1e-4, 17.0, 3.1, 2.5e-4, 1.2e6, 1e-4, 1e6])
    scenario = Scenario(indices, rows, universe, security, price)
    want_tick, want_index, want_level, _ = reference_rows(scenario)
    calc, got = run_batches(universe, security, price, [])
    np.testing.assert_array_equal(got.tick, want_tick)
    np.testing.assert_array_equal(got.index, want_index)
    assert max_rel_error(got.level, want_level) <= REL_TOL
    assert_seq_without_gaps(got, 2)
    np.testing.assert_allclose(calc.levels, calc.recompute_levels(), rtol=REL_TOL)


def test_invalid_batch_is_refused_whole_and_state_kept() -> None:
    indices, rows = random_rows(np.random.default_rng(SEED), 10, 3)
    universe = universe_from_rows(indices, rows)
    calc = IndexCalculator(universe)
    calc.apply([0, 1], [1.5, 2.5])
    before = (calc.prices.copy(), calc.levels.copy(), calc.seq.copy())
    n = len(universe.securities)
    for security, price in (([0, 1], [1.0, math.nan]), ([0, n], [1.0, 1.0]), ([2, 0], [0.0, 1.0])):
        with pytest.raises(ValueError):
            calc.apply(security, price)
        for after, previous in zip((calc.prices, calc.levels, calc.seq), before, strict=True):
            np.testing.assert_array_equal(after, previous)


@pytest.mark.parametrize("batch", [[1], [1, 1], [1, 2, 1]])
def test_ticks_of_securities_in_no_index_publish_nothing(batch: list[int]) -> None:
    """``build_universe`` accepts securities outside every index; their ticks move no level."""
    universe = build_universe(
        [IndexSpec("ONE", "One", 100.0)],
        ["A", "B", "C"],
        np.array([1.0, 2.0, 3.0]),
        Membership(
            index=np.array([0], dtype=np.int32),
            security=np.array([0], dtype=np.int32),
            issued_shares=np.array([10.0]),
            faf=np.array([1.0]),
            cap_factor=np.array([1.0]),
        ),
    )
    calc = IndexCalculator(universe)
    price = [4.0 + i for i in range(len(batch))]
    out = calc.apply(batch, price)
    assert len(out) == 0
    np.testing.assert_array_equal(calc.seq, [0])
    np.testing.assert_array_equal(calc.levels, [100.0])
    assert calc.prices[batch[-1]] == price[-1]


def set_last_prices(
    prices: NDArray[np.float64], security: NDArray[np.int64], price: NDArray[np.float64]
) -> None:
    """prices[s] = price of the last tick of s, for every ticked security s."""
    ids, last = np.unique(security[::-1], return_index=True)
    prices[ids] = price[::-1][last]


def random_walk_batch(
    rng: np.random.Generator, prices: NDArray[np.float64], n: int, sigma: float
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """n ticks on random securities; each security's prices follow its own log random walk."""
    security = rng.integers(0, prices.size, n)
    steps = rng.normal(0.0, sigma, n)
    order = np.argsort(security, kind="stable")
    walked = np.cumsum(steps[order])
    sorted_sec = security[order]
    first = np.flatnonzero(np.r_[True, sorted_sec[1:] != sorted_sec[:-1]])
    run_len = np.diff(first, append=n)
    walked -= np.repeat(walked[first] - steps[order][first], run_len)
    log_price = np.empty(n)
    log_price[order] = np.log(prices[sorted_sec]) + walked
    price = np.exp(log_price)
    set_last_prices(prices, security, price)
    return security, price


@pytest.mark.slow
def test_seeded_stream_of_200k_ticks_against_reference() -> None:
    print(f"seed {SEED}")
    rng = np.random.default_rng(SEED)
    indices, rows = random_rows(rng, 300, 10)
    universe = universe_from_rows(indices, rows)
    model = ScalarIndexModel(indices, rows)
    codes = universe.index_codes
    members = [[codes.index(c) for c in model.indices_of(s)] for s in universe.securities]
    sizes = itertools.cycle([50_000, 1, 7, 2, 1000, 333, 20_000, 5000, 64])
    prices = universe.prev_close.copy()
    calc = IndexCalculator(universe)
    n_ticks, done = 200_000, 0
    parts: list[tuple[int, LevelUpdates]] = []
    streams: list[tuple[NDArray[np.int64], NDArray[np.float64]]] = []
    boundaries: list[int] = []
    while done < n_ticks:
        size = min(next(sizes), n_ticks - done)
        security, price = random_walk_batch(rng, prices, size, 2e-3)
        if size > 100:  # an occasional crash or spike inside a big batch
            jump = rng.integers(0, size, 3)
            price[jump] *= np.array([1e-3, 50.0, 0.2])
            set_last_prices(prices, security, price)
        parts.append((done, calc.apply(security, price)))
        streams.append((security, price))
        boundaries += [done, done + size - 1]
        done += size
    got = LevelUpdates.concat([replace(u, tick=u.tick + lo) for lo, u in parts])
    security = np.concatenate([s for s, _ in streams])
    price = np.concatenate([p for _, p in streams])

    counts = np.array([len(members[s]) for s in security])
    np.testing.assert_array_equal(got.tick, np.repeat(np.arange(n_ticks), counts))
    want_index = np.fromiter(
        itertools.chain.from_iterable(members[s] for s in security), dtype=np.int32
    )
    np.testing.assert_array_equal(got.index, want_index)
    assert_seq_without_gaps(got, len(codes))

    sample = set(rng.choice(n_ticks, 2000, replace=False).tolist()) | set(boundaries)
    first_row = np.cumsum(counts) - counts
    worst = 0.0
    for i, (sid, px) in enumerate(zip(security.tolist(), price.tolist(), strict=True)):
        model.prices[universe.securities[sid]] = px
        if i in sample:
            for j, k in enumerate(members[sid]):
                want = model.level(codes[k])
                worst = max(worst, abs(got.level[first_row[i] + j] - want) / want)
    print(f"worst relative error over {len(sample)} sampled ticks: {worst:.3e}")
    assert worst <= REL_TOL
    final_ref = np.array([model.level(code) for code in codes])
    assert max_rel_error(calc.levels.copy(), final_ref) <= REL_TOL


@pytest.mark.slow
def test_long_run_of_ten_million_ticks_stays_exact() -> None:
    print(f"seed {SEED}")
    rng = np.random.default_rng(SEED + 1)
    indices, rows = random_rows(rng, 400, 11)
    universe = universe_from_rows(indices, rows)
    model = ScalarIndexModel(indices, rows)
    calc = IndexCalculator(universe)
    n_indices = len(universe.indices)
    prices = universe.prev_close.copy()
    last_level = np.full(n_indices, np.nan)
    published = np.zeros(n_indices, dtype=np.int64)
    for _ in range(200):
        security, price = random_walk_batch(rng, prices, 50_000, 1e-3)
        out = calc.apply(security, price)
        ids, last = np.unique(out.index[::-1], return_index=True)
        last_level[ids] = out.level[::-1][last]
        published += np.bincount(out.index, minlength=n_indices)
    np.testing.assert_array_equal(calc.prices, prices)
    np.testing.assert_array_equal(calc.seq, published)
    final = calc.levels.copy()
    by_code = dict(zip(universe.securities, calc.prices.tolist(), strict=True))
    expected = np.array(
        [
            math.fsum(by_code[s] * w for s, w in model.members[code]) / model.divisors[code]
            for code in universe.index_codes
        ]
    )
    assert max_rel_error(final, expected) <= REL_TOL
    assert max_rel_error(last_level, final) <= REL_TOL


@pytest.mark.slow
@settings(max_examples=60, deadline=None, derandomize=True)
@given(cuts=st.lists(st.integers(min_value=1, max_value=2999), max_size=12))
def test_levels_bitwise_identical_whatever_the_batch_split(cuts: list[int]) -> None:
    """What the live service relies on: Kafka fetch sizes never change a published level."""
    universe = load_builtin_universe()
    ticks = MarketSimulator(universe, SEED, start_ns=1_795_138_200_000_000_000).next_batch(3000)
    whole = IndexCalculator(universe).apply(ticks.security, ticks.price)
    calc = IndexCalculator(universe)
    edges = [0, *sorted(set(cuts)), 3000]
    parts = [
        calc.apply(ticks.security[a:b], ticks.price[a:b]) for a, b in itertools.pairwise(edges)
    ]
    np.testing.assert_array_equal(np.concatenate([p.level for p in parts]), whole.level)
    np.testing.assert_array_equal(np.concatenate([p.seq for p in parts]), whole.seq)
