"""Running levels of many indices at once (``engine.kernel.segmented``), bitwise.

A seeded world of over 1,000 indices with power-law sizes, a random tick stream that crosses
exact-recompute anchors mid-batch, collapses prices by 100x (cancellation guard) and overflows
levels (withheld non-finite levels): the vectorised path must give bitwise the levels of the
per-index ``run_index`` path, and bitwise the same levels however the stream is batched.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

import numpy as np
import pytest
from numpy.typing import NDArray

from engine.kernel import memberships, segmented
from engine.kernel.accumulation import ANCHOR_EVERY, run_index
from engine.kernel.calculator import IndexCalculator, LevelUpdates, WithheldLevel
from engine.refdata.universe import IndexSpec, Membership, Universe, build_universe
from tests.support.seed import SEED

N_SECURITIES = 6_000
N_INDICES = 1_200
N_TICKS = 24_000


@dataclass(frozen=True)
class World:
    universe: Universe
    computed: NDArray[np.int64]  # levels computed per index before the stream (anchor phase)
    security: NDArray[np.int64]
    price: NDArray[np.float64]
    collapsed: NDArray[np.int64]  # securities whose price falls 100x mid-stream


@dataclass(frozen=True)
class Outcome:
    updates: LevelUpdates
    calculator: IndexCalculator
    withheld: list[WithheldLevel]


def power_law_sizes(rng: np.random.Generator, n: int, low: int, high: int) -> NDArray[np.int64]:
    return np.minimum(high, (low * (1.0 - rng.random(n)) ** (-1.0 / 1.2)).astype(np.int64))


def many_index_universe(rng: np.random.Generator) -> tuple[Universe, NDArray[np.int64]]:
    """Power-law index sizes, two indices of 2,000 members; also the "giant" securities."""
    sizes = power_law_sizes(rng, N_INDICES, 8, 400)
    sizes[:2] = 2_000  # long segments in big batches: the per-index path kept for them
    index = np.repeat(np.arange(N_INDICES, dtype=np.int32), sizes)
    security = np.concatenate(
        [np.sort(rng.choice(N_SECURITIES, int(size), replace=False)) for size in sizes]
    ).astype(np.int32)
    prev_close = np.exp(rng.uniform(np.log(0.5), np.log(500.0), N_SECURITIES))
    shares = np.exp(rng.uniform(np.log(1e6), np.log(1e10), N_SECURITIES))
    giants = rng.choice(N_SECURITIES, 60, replace=False)
    shares[giants] = 1e13  # dominate their indices: a 100x fall trips the guard there
    m = index.size
    membership = Membership(
        index=index,
        security=security,
        issued_shares=shares[security],
        faf=rng.uniform(0.1, 1.0, m).round(2),
        cap_factor=rng.uniform(0.2, 1.0, m),
    )
    specs = [
        IndexSpec(f"IX{k}", f"IX{k}", float(rng.uniform(100, 30_000)), None)
        for k in range(N_INDICES)
    ]
    codes = [f"S{s:05d}" for s in range(N_SECURITIES)]
    return build_universe(specs, codes, prev_close, membership), giants


def make_world(seed: int) -> World:
    rng = np.random.default_rng(seed)
    universe, giants = many_index_universe(rng)
    prev_close = universe.prev_close
    # Half the indices a few levels short of an anchor, so anchors fall inside batches.
    computed = rng.integers(0, 10 * ANCHOR_EVERY, N_INDICES)
    near = rng.random(N_INDICES) < 0.5
    computed[near] = (
        computed[near] // ANCHOR_EVERY * ANCHOR_EVERY
        + ANCHOR_EVERY
        - rng.integers(0, 40, int(near.sum()))
    )

    hot = rng.random(N_TICKS) < 0.2
    tick_security = np.where(
        hot, rng.choice(giants, N_TICKS), rng.integers(0, N_SECURITIES, N_TICKS)
    ).astype(np.int64)
    price = prev_close[tick_security] * np.exp(rng.normal(0.0, 0.01, N_TICKS))
    position = np.arange(N_TICKS)
    collapsed = giants[:10]
    for s in collapsed.tolist():  # falls 100x somewhere in the first half, recovers later
        fall, rise = int(rng.integers(0, N_TICKS // 2)), int(rng.integers(N_TICKS // 2, N_TICKS))
        price[(tick_security == s) & (position >= fall) & (position < rise)] /= 100.0
    # Overflow: 1e308 on securities heavy enough (level weight > 2) in some index; the level
    # stays infinite (or NaN) until their next tick, up to 2,000 ticks later.
    level_weight = universe.weights() / universe.divisors[universe.membership.index]
    heavy = np.unique(universe.membership.security[level_weight > 2.0])
    for s in rng.choice(heavy, 5, replace=False).tolist():
        at = int(rng.integers(0, N_TICKS - 2_000))
        back = at + int(rng.integers(1, 2_000))
        tick_security[[at, back]] = s
        price[[at, back]] = (1e308, prev_close[s])
    return World(universe, computed, tick_security, price, collapsed)


def run(world: World, cuts: list[int]) -> Outcome:
    """The stream applied in batches split at ``cuts``; tick numbers stream-global."""
    calculator = IndexCalculator(world.universe)
    calculator.restore(
        calculator.prices, calculator.divisors, world.computed, computed=world.computed
    )
    parts: list[LevelUpdates] = []
    withheld: list[WithheldLevel] = []
    ts = np.arange(N_TICKS, dtype=np.int64)
    for lo, hi in itertools.pairwise([0, *cuts, N_TICKS]):
        with np.errstate(over="ignore", invalid="ignore"):
            batch = calculator.apply(world.security[lo:hi], world.price[lo:hi], ts[lo:hi])
        parts.append(replace(batch, tick=batch.tick + lo))
        withheld += [replace(w, tick=w.tick + lo) for w in calculator.take_withheld()]
    return Outcome(LevelUpdates.concat(parts), calculator, withheld)


def bits(values: NDArray[np.float64]) -> NDArray[np.uint64]:
    return np.asarray(values, dtype=np.float64).view(np.uint64)


def assert_bitwise_equal(got: Outcome, want: Outcome, what: str) -> None:
    for column in ("tick", "index", "seq"):
        np.testing.assert_array_equal(
            getattr(got.updates, column), getattr(want.updates, column), err_msg=what
        )
    np.testing.assert_array_equal(bits(got.updates.level), bits(want.updates.level), err_msg=what)
    a, b = got.calculator, want.calculator
    for state in ("levels", "peaks", "published_levels"):
        np.testing.assert_array_equal(bits(getattr(a, state)), bits(getattr(b, state)), what)
    np.testing.assert_array_equal(a.seq, b.seq, err_msg=what)
    (computed_a, last_good_a), (computed_b, last_good_b) = a.resume_state(), b.resume_state()
    np.testing.assert_array_equal(computed_a, computed_b, err_msg=what)
    # The last finite level matters (and is kept bitwise) only while the level is not finite.
    withheld = ~np.isfinite(a.levels)
    np.testing.assert_array_equal(bits(last_good_a[withheld]), bits(last_good_b[withheld]), what)
    assert a.nonfinite_levels == b.nonfinite_levels, what
    assert [replace(w, value=0.0) for w in got.withheld] == [
        replace(w, value=0.0) for w in want.withheld
    ], what
    assert (
        bits(np.array([w.value for w in got.withheld])).tolist()
        == bits(np.array([w.value for w in want.withheld])).tolist()
    ), what


@pytest.fixture(scope="module")
def world() -> World:
    print(f"seed={SEED}")
    return make_world(SEED)


def test_the_world_crosses_anchors_trips_guards_and_overflows(world: World) -> None:
    outcome = run(world, list(range(4_000, N_TICKS, 4_000)))
    updates, calculator = outcome.updates, outcome.calculator
    crossed = calculator.resume_state()[0] // ANCHOR_EVERY > world.computed // ANCHOR_EVERY
    assert crossed.sum() > 200, f"seed={SEED}"
    assert calculator.nonfinite_levels > 0, f"seed={SEED}"
    # A level below 1/8 of an earlier one of its index: a cancellation guard recompute there.
    m = world.universe.membership
    tripped = 0
    for k in np.unique(m.index[np.isin(m.security, world.collapsed)]).tolist():
        level = updates.level[updates.index == k]
        tripped += bool(np.any(level < np.maximum.accumulate(level) / 8.0))
    assert tripped > 5, f"seed={SEED}"
    # The published level is each touched index's last level out (withheld ones never are).
    touched, last = np.unique(updates.index[::-1], return_index=True)
    np.testing.assert_array_equal(
        calculator.published_levels[touched], updates.level[::-1][last], err_msg=f"seed={SEED}"
    )


def test_vectorised_levels_are_bitwise_those_of_the_per_index_path(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    cuts = list(range(4_000, N_TICKS, 4_000))
    calls = 0
    per_index = run_index

    def counted(*args: object, **kwargs: object) -> object:
        nonlocal calls
        calls += 1
        return per_index(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(segmented, "run_index", counted)
    vectorised = run(world, cuts)
    updates = vectorised.updates
    touched = sum(  # segments: indices touched per batch
        np.unique(updates.index[(updates.tick >= lo) & (updates.tick < hi)]).size
        for lo, hi in itertools.pairwise([0, *cuts, N_TICKS])
    )
    assert touched > 5_000, touched
    assert calls * 10 < touched, f"{calls} run_index calls for {touched} segments"
    monkeypatch.setattr(segmented, "LONG_SEGMENT", 0)  # every segment through run_index
    per_index_path = run(world, cuts)
    assert_bitwise_equal(vectorised, per_index_path, f"seed={SEED}")


def test_levels_are_bitwise_the_same_however_the_stream_is_batched(world: World) -> None:
    rng = np.random.default_rng(SEED + 1)
    whole = run(world, [])
    splits = {
        "batches of 1,000": list(range(1_000, N_TICKS, 1_000)),
        "60 random cuts": sorted(set(rng.integers(1, N_TICKS, 60).tolist())),
        "single ticks, then 7,000": [*range(1, 300), *range(300, N_TICKS, 7_000)],
    }
    for name, cuts in splits.items():
        assert_bitwise_equal(run(world, cuts), whole, f"{name}, seed={SEED}")


def test_levels_are_bitwise_the_same_with_memberships_in_slots(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    cuts = list(range(4_000, N_TICKS, 4_000))
    monkeypatch.setattr(memberships, "MIN_SLOT_FILL", 2.0)  # never
    in_csr = run(world, cuts)
    assert not in_csr.calculator._members.uses_slots
    monkeypatch.setattr(memberships, "MIN_SLOT_FILL", 0.0)  # always
    in_slots = run(world, cuts)
    assert in_slots.calculator._members.uses_slots
    assert_bitwise_equal(in_slots, in_csr, f"seed={SEED}")
