"""Review findings in the engine core: checkpoints keep the recompute schedule, corrupt
checkpoints are refused whole, events cannot poison an index, reviews scale linearly."""

from __future__ import annotations

import time
from collections.abc import Sequence

import msgspec
import numpy as np
import pytest

from engine.core.bounds import MAX_PRICE, MAX_REVIEW_ROWS, MAX_SHARES, MIN_RATIO
from engine.kernel.calculator import IndexCalculator
from engine.kernel.columns import LevelColumns
from engine.maintenance.adjustments import EventError, apply_event
from engine.maintenance.events import (
    Consolidation,
    IndexEvent,
    Review,
    ReviewRow,
    RightsIssue,
    SharesChange,
    StockSplit,
)
from engine.pipeline.chain import IndexPipeline
from engine.pipeline.state import EngineState, StateMismatchError, capture_state, restore_state
from engine.refdata.universe import Membership, Universe
from tests.support.scalar_reference import RefIndex, RefRow
from tests.support.universes import universe_from_rows

INDICES = [RefIndex("IX", 1000.0), RefIndex("OTHER", 500.0)]
ROWS = [
    RefRow("IX", "A", 1e6, 1.0, 1.0, 10.0),
    RefRow("IX", "B", 1e6, 1.0, 1.0, 10.0),
    RefRow("OTHER", "B", 1e6, 1.0, 1.0, 10.0),
]


class _Discard:
    def write(self, levels: LevelColumns) -> None:
        del levels


def _pipeline(universe: Universe) -> IndexPipeline:
    return IndexPipeline(IndexCalculator(universe), _Discard())


def _stream(n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    security = rng.integers(0, 2, n)
    price = 10.0 * np.exp(rng.normal(0.0, 0.01, n))
    price[[100, 101, 350]] = 1e308  # withheld levels (the engine's screening never lets these in)
    return security, price


def _levels(calculator: IndexCalculator, security: np.ndarray, price: np.ndarray) -> list[float]:
    out: list[float] = []
    for lo in range(0, security.size, 97):
        with np.errstate(over="ignore", invalid="ignore"):
            updates = calculator.apply(security[lo : lo + 97], price[lo : lo + 97])
        out.extend(updates.level.tolist())
        out.extend(updates.seq.astype(float).tolist())
    return out


def _roundtrip(state: EngineState) -> EngineState:
    return msgspec.msgpack.decode(msgspec.msgpack.encode(state), type=EngineState)


def test_a_restore_after_withheld_levels_resumes_bitwise() -> None:
    universe = universe_from_rows(INDICES, ROWS)
    security, price = _stream(25_000)
    cut = 5_000
    straight = _pipeline(universe)
    expected = _levels(straight.calculator, security[:cut], price[:cut])
    state = _roundtrip(capture_state(straight, universe.fingerprint()))
    assert straight.calculator.nonfinite_levels > 0
    expected_after = _levels(straight.calculator, security[cut:], price[cut:])

    first = _pipeline(universe)
    assert _levels(first.calculator, security[:cut], price[:cut]) == expected
    resumed = _pipeline(universe)
    restore_state(resumed, state)
    assert np.array_equal(resumed.calculator.published_levels, first.calculator.published_levels)
    assert _levels(resumed.calculator, security[cut:], price[cut:]) == expected_after

    # A checkpoint without the schedule (before version 5) resumes differently here.
    old = _pipeline(universe)
    restore_state(old, msgspec.structs.replace(state, computed=[], last_good=[]))
    assert _levels(old.calculator, security[cut:], price[cut:]) != expected_after


def test_the_last_good_level_survives_a_restore() -> None:
    universe = universe_from_rows(INDICES, ROWS)
    pipeline = _pipeline(universe)
    with np.errstate(over="ignore", invalid="ignore"):
        pipeline.calculator.apply([0, 0], [11.0, 1e308])
    published = pipeline.calculator.published_levels.tolist()
    assert published[0] == 1050.0
    resumed = _pipeline(universe)
    with np.errstate(over="ignore"):  # the exact recompute at the restore overflows, as in the run
        restore_state(resumed, _roundtrip(capture_state(pipeline, universe.fingerprint())))
    assert resumed.calculator.published_levels.tolist() == published


def test_a_checkpoint_before_version_5_still_restores() -> None:
    universe = universe_from_rows(INDICES, ROWS)
    pipeline = _pipeline(universe)
    pipeline.calculator.apply([0, 1], [11.0, 12.0])
    fields = msgspec.msgpack.decode(
        msgspec.msgpack.encode(capture_state(pipeline, universe.fingerprint()))
    )
    del fields["computed"], fields["last_good"]
    fields["version"] = 4
    resumed = _pipeline(universe)
    restore_state(resumed, msgspec.msgpack.decode(msgspec.msgpack.encode(fields), type=EngineState))
    assert resumed.calculator.levels.tolist() == pipeline.calculator.levels.tolist()
    assert resumed.calculator.resume_state()[0].tolist() == pipeline.calculator.seq.tolist()


@pytest.mark.parametrize(
    "corrupt",
    [
        {"last_tick_seq": [-1]},
        {"securities": ["B", "A"]},
        {"securities": ["A"]},
        {"prices": [10.0]},
        {"divisors": [1.0]},
        {"index_seq": [0, 0, 0]},
        {"levels": [1.0]},
        {"computed": [1]},
        {"last_good": [1.0, 2.0, 3.0]},
    ],
)
def test_a_corrupt_checkpoint_is_refused_before_anything_changes(
    corrupt: dict[str, list[object]],
) -> None:
    universe = universe_from_rows(INDICES, ROWS)
    pipeline = _pipeline(universe)
    pipeline.calculator.apply([0, 1], [11.0, 12.0])
    state = msgspec.structs.replace(capture_state(pipeline, universe.fingerprint()), **corrupt)
    fresh = _pipeline(universe)
    before = (fresh.calculator.levels.tolist(), fresh.sequence_guard.last_seq.tolist())
    with pytest.raises(StateMismatchError):
        restore_state(fresh, state)
    after = (fresh.calculator.levels.tolist(), fresh.sequence_guard.last_seq.tolist())
    assert after == before
    assert fresh.calculator.universe is universe


# -- events cannot poison an index --------------------------------------------------------------

DECODE = msgspec.json.Decoder(IndexEvent)
T = 1_795_138_200_000_000_000


@pytest.mark.parametrize(
    ("fields", "accepted"),
    [
        ({"type": "consolidation", "security": "0700", "ratio": 1e-300}, False),
        ({"type": "consolidation", "security": "0700", "ratio": 0.99e-6}, False),
        ({"type": "consolidation", "security": "0700", "ratio": 1e-6}, True),
        ({"type": "stock_split", "security": "0700", "ratio": 1e6}, True),
        ({"type": "shares_change", "security": "0700", "issued_shares": 0.5}, False),
        ({"type": "shares_change", "security": "0700", "issued_shares": 1}, True),
        ({"type": "special_dividend", "security": "0700", "amount": 1e-7}, False),
        ({"type": "special_dividend", "security": "0700", "amount": 1e-6}, True),
        (
            {"type": "rights_issue", "security": "0005", "new_shares": 1e-9, "per_held": 1,
             "subscription_price": 50.0},
            False,
        ),
        (
            {"type": "rights_issue", "security": "0005", "new_shares": 1, "per_held": 4,
             "subscription_price": 1e-9},
            False,
        ),
    ],
)  # fmt: skip
def test_decoded_events_have_sane_lower_bounds(fields: dict[str, object], accepted: bool) -> None:
    message = msgspec.json.encode({"effective": T, **fields})
    if accepted:
        DECODE.decode(message)
    else:
        with pytest.raises(msgspec.ValidationError):
            DECODE.decode(message)


# A's weight is 1e6 shares: these multiply it by about 1e300 and still give a finite level now.
@pytest.mark.parametrize(
    "event",
    [
        Consolidation(effective=T, security="A", ratio=1e-300),
        StockSplit(effective=T, security="A", ratio=1e300),
        RightsIssue(effective=T, security="A", new_shares=1e300, per_held=1.0,
                    subscription_price=1e-300),
    ],
    ids=["consolidation-1e-300", "split-1e300", "rights-1e300"],
)  # fmt: skip
def test_an_event_that_a_screened_tick_could_overflow_is_refused(
    event: Consolidation | StockSplit | RightsIssue,
) -> None:
    calculator = IndexCalculator(universe_from_rows(INDICES, ROWS))
    levels, divisors = calculator.levels.copy(), calculator.divisors.copy()
    with pytest.raises(EventError, match="level at the largest tick price"):
        apply_event(calculator, event)
    assert np.array_equal(calculator.levels, levels)
    assert np.array_equal(calculator.divisors, divisors)
    with np.errstate(over="raise", invalid="raise"):
        calculator.apply([0, 1], [np.nextafter(MAX_PRICE, 0.0)] * 2)
    assert np.isfinite(calculator.levels).all()
    assert calculator.nonfinite_levels == 0


def test_an_accepted_event_keeps_every_screened_tick_finite() -> None:
    calculator = IndexCalculator(universe_from_rows(INDICES, ROWS))
    apply_event(calculator, Consolidation(effective=T, security="A", ratio=MIN_RATIO))
    apply_event(calculator, SharesChange(effective=T, security="B", issued_shares=MAX_SHARES))
    with np.errstate(over="raise", invalid="raise"):
        calculator.apply([0, 1], [np.nextafter(MAX_PRICE, 0.0)] * 2)
    assert np.isfinite(calculator.levels).all()


# -- a review's cost is linear in its rows -----------------------------------------------------


def _review_universe() -> tuple[Universe, Review]:
    rng = np.random.default_rng(3)
    codes = [f"S{i:04d}" for i in range(3_000)]
    indices = [RefIndex(f"IX{k}", 1000.0 + k, 0.1 if k == 0 else None) for k in range(10)]
    rows = [RefRow(f"IX{i % 10}", code, 1e8, 0.5, None, 10.0) for i, code in enumerate(codes)]
    pool = codes + [f"N{i:03d}" for i in range(600)]
    review = [
        ReviewRow(
            index=f"IX{k}",
            security=pool[s],
            issued_shares=float(rng.integers(1_000_000, 1_000_000_000)),
            faf=float(rng.uniform(0.1, 1.0)),
            price=12.5 if pool[s].startswith("N") else None,
        )
        for k in range(10)
        for s in rng.choice(len(pool), 2_000, replace=False).tolist()
    ]
    return universe_from_rows(indices, rows), Review(effective=T, rows=review)


def test_a_review_of_the_largest_size_builds_the_table_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    universe, review = _review_universe()
    assert len(review.rows) == MAX_REVIEW_ROWS
    calls: list[int] = []
    concat = Membership.concat

    def counted(parts: Sequence[Membership]) -> Membership:
        calls.append(len(parts))
        return concat(parts)

    monkeypatch.setattr(Membership, "concat", staticmethod(counted))
    calculator = IndexCalculator(universe)
    started = time.perf_counter()
    apply_event(calculator, review)
    print(f"review of {len(review.rows)} rows: {time.perf_counter() - started:.3f} s")
    assert len(calls) == 1
    declared = calculator.universe.declared
    assert len(declared) == MAX_REVIEW_ROWS
    first = [(r.index, r.security) for r in review.rows]
    codes = calculator.universe.securities
    got = [(f"IX{i}", codes[s]) for i, s in zip(declared.index, declared.security, strict=True)]
    assert got == first
    new = [code for code in dict.fromkeys(r.security for r in review.rows) if code[0] == "N"]
    assert list(codes[3_000:]) == new


def test_a_review_refuses_a_duplicate_row() -> None:
    universe, review = _review_universe()
    rows = [*review.rows[:50], review.rows[10]]
    code = review.rows[10].security
    with pytest.raises(EventError, match=f"'{code}' is already a constituent"):
        apply_event(IndexCalculator(universe), Review(effective=T, rows=rows))
