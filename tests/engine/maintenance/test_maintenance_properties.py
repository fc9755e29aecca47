"""Maintenance events against the scalar reference on random universes and random streams.

A scenario is a random family (price indices from ``random_rows`` plus gross and net total
return variants) and a stream of tick batches interleaved with events of every kind, some of
them invalid. The stream is generated against a ``ScalarEventModel`` so that most events fit
the composition of their moment; ticks have strictly increasing times and an event's effective
time lies after the previous tick, at most at the next one (where it still applies first).
"""

from __future__ import annotations

import contextlib
import itertools
import math
import random as stdlib_random
from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from engine.kernel.calculator import IndexCalculator
from engine.kernel.columns import LevelColumns, TickColumns
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
from tests.support.scalar_events import (
    RefEventError,
    RefTotalReturn,
    ScalarEventModel,
    Scenario,
    engine_universe,
    reference_run,
)
from tests.support.seed import SEED
from tests.support.universes import random_rows

EVENT_KINDS = [
    *("stock_split", "consolidation", "bonus_issue", "rights_issue", "special_dividend"),
    *("dividend", "shares_change", "faf_change", "add_constituent", "delete_constituent"),
    *("replace_constituent", "review", "invalid"),
]
KINDS = ("ticks", *EVENT_KINDS)
SETTINGS = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
REL = 1e-12


def make_scenario(seed: int, n_securities: int, n_indices: int, kinds: Sequence[str]) -> Scenario:
    rng = np.random.default_rng(seed)
    indices, rows = random_rows(rng, n_securities, n_indices, capped_fraction=0.5)
    total_return = []
    for ix in indices:
        if rng.random() < 0.6:
            total_return.append(RefTotalReturn(f"{ix.code}.GR", 5000.0, ix.code, "gross"))
        if rng.random() < 0.6:
            tax = float(rng.choice([0.0, 0.1, 0.3]))
            total_return.append(RefTotalReturn(f"{ix.code}.NT", 3000.0, ix.code, "net", tax))
    pool = [f"N{k:02d}" for k in range(4)]
    scenario = Scenario(seed, indices, rows, total_return, pool, [], [])
    model = scenario.model()
    clock = 1000  # time of the next tick
    last_effective = 0
    for kind in kinds:
        if kind == "ticks":
            codes = sorted({*model.prices, *pool})
            batch = []
            for _ in range(int(rng.integers(1, 25))):
                code = str(rng.choice(codes))
                old = model.prices.get(code, math.nan)
                price = (
                    float(rng.uniform(1, 200)) if math.isnan(old) else old * rng.lognormal(0, 0.03)
                )
                batch.append((clock, code, price))
                model.tick(code, price)
                clock += 1000
            scenario.steps.append(batch)
            continue
        last_effective = max(last_effective, clock - int(rng.choice([500, 0])))
        event = _event(kind, rng, model, pool, last_effective)
        if event is None:
            continue
        with contextlib.suppress(RefEventError):
            model.apply(event)
        scenario.steps.append(event)
        scenario.labels.append(kind)
    return scenario


def _event(
    kind: str, rng: np.random.Generator, m: ScalarEventModel, pool: list[str], t: int
) -> IndexEvent | None:
    price_indices = list(m.holdings)
    members = sorted({h.security for own in m.holdings.values() for h in own})
    s = str(rng.choice(members))
    px = m.prices[s]
    code = str(rng.choice(price_indices))
    outside = sorted({*m.prices, *pool} - {h.security for h in m.holdings[code]})
    new = str(rng.choice(outside)) if outside else None
    shares, faf = float(np.exp(rng.uniform(14, 23))), float(rng.integers(5, 101)) / 100
    fresh_price = float(rng.uniform(1, 200))
    if kind == "stock_split":
        return StockSplit(effective=t, security=s, ratio=float(rng.choice([2.0, 3.0, 1.5, 10.0])))
    if kind == "consolidation":
        return Consolidation(effective=t, security=s, ratio=float(rng.choice([2.0, 5.0, 10.0])))
    if kind == "bonus_issue":
        return BonusIssue(effective=t, security=s, ratio=float(rng.choice([0.1, 0.25, 1.0])))
    if kind == "rights_issue":
        new_shares, held = float(rng.integers(1, 4)), float(rng.integers(1, 11))
        sub = px * float(rng.uniform(0.4, 1.0))
        return RightsIssue(
            effective=t, security=s, new_shares=new_shares, per_held=held, subscription_price=sub
        )
    if kind == "special_dividend":
        return SpecialDividend(effective=t, security=s, amount=px * float(rng.uniform(0.01, 0.3)))
    if kind == "dividend":
        rate = [None, 0.0, 0.15, 0.3][int(rng.integers(0, 4))]
        amount = px * float(rng.uniform(0.001, 0.05))
        return CashDividend(effective=t, security=s, amount=amount, withholding_rate=rate)
    if kind == "shares_change":
        return SharesChange(effective=t, security=s, issued_shares=shares)
    if kind == "faf_change":
        holders = [c for c in price_indices if any(h.security == s for h in m.holdings[c])]
        only = str(rng.choice(holders)) if rng.random() < 0.5 else None
        return FafChange(effective=t, security=s, faf=faf, index=only)
    if kind in ("add_constituent", "replace_constituent") and new is not None:
        cf = 1.0 if rng.random() < 0.5 else float(rng.uniform(0.2, 1.0))
        if kind == "add_constituent":
            return AddConstituent(
                effective=t,
                index=code,
                security=new,
                issued_shares=shares,
                faf=faf,
                cap_factor=cf,
                price=fresh_price,
            )
        old = str(rng.choice([h.security for h in m.holdings[code]]))
        return ReplaceConstituent(
            effective=t,
            index=code,
            old_security=old,
            security=new,
            issued_shares=shares,
            faf=faf,
            cap_factor=cf,
            price=fresh_price,
        )
    if kind == "delete_constituent" and len(m.holdings[code]) > 1:
        old = str(rng.choice([h.security for h in m.holdings[code]]))
        return DeleteConstituent(effective=t, index=code, security=old)
    if kind == "review":
        return _review(rng, m, pool, t)
    if kind == "invalid":
        tr = list(m.total_return)
        invalid: list[IndexEvent] = [
            StockSplit(effective=t, security="ZZZ", ratio=2.0),
            AddConstituent(effective=t, index="NOPE", security=s, issued_shares=1.0, faf=1.0),
            AddConstituent(
                effective=t,
                index=code,
                security=m.holdings[code][0].security,
                issued_shares=1.0,
                faf=1.0,
            ),
            DeleteConstituent(effective=t, index=code, security=new or "ZZZ"),
            SpecialDividend(effective=t, security=s, amount=px * float(rng.uniform(1.0, 1.5))),
            FafChange(effective=t, security=s, faf=0.5, index=tr[0] if tr else "NOPE"),
        ]
        return invalid[int(rng.integers(0, len(invalid)))]
    return None


def _review(rng: np.random.Generator, m: ScalarEventModel, pool: list[str], t: int) -> Review:
    candidates = sorted({*m.prices, *pool})
    seed_price = {s: float(rng.uniform(1, 200)) for s in candidates}  # one per security
    rows = []
    for code in m.holdings:
        if rng.random() < 0.5:
            continue
        cap = m.indices[code].weight_cap
        lowest = 1 if cap is None else math.ceil(1.0 / cap - 1e-9)
        if lowest > len(candidates):
            continue
        size = int(rng.integers(lowest, len(candidates) + 1))
        for s in sorted(rng.choice(candidates, size=size, replace=False).tolist()):
            cf = None if cap is not None or rng.random() < 0.5 else float(rng.uniform(0.2, 1.0))
            shares, faf = float(np.exp(rng.uniform(14, 23))), float(rng.integers(5, 101)) / 100
            rows.append(ReviewRow(code, s, shares, faf, cf, seed_price[s]))
    return Review(effective=t, rows=rows)


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    seed = draw(st.integers(0, 2**32 - 1))
    n_securities = draw(st.integers(2, 16))
    n_indices = draw(st.integers(1, 4))
    step = st.one_of(st.just("ticks"), st.sampled_from(EVENT_KINDS))  # half of them ticks
    kinds = draw(st.lists(step, min_size=10, max_size=60))
    return make_scenario(seed ^ SEED, n_securities, n_indices, kinds)


class _Audit:
    def __init__(self) -> None:
        self.calls: list[list[DivisorChange]] = []

    def record(self, changes: Sequence[DivisorChange]) -> None:
        self.calls.append(list(changes))


def engine_run(
    scenario: Scenario, cuts: Sequence[int]
) -> tuple[IndexPipeline, TestingSink, _Audit]:
    """The pipeline: events scheduled up front, ticks in batches split at ``cuts``."""
    universe = engine_universe(scenario.indices, scenario.rows, scenario.total_return)
    sink, audit = TestingSink(universe.index_codes), _Audit()
    pipeline = IndexPipeline(IndexCalculator(universe), sink, audit=audit)
    pipeline.register_securities(scenario.pool)
    pipeline.schedule(scenario.events())
    ticks = scenario.ticks()
    columns = TickColumns(
        np.array([ts for ts, _, _ in ticks], dtype=np.int64),
        pipeline.calculator.universe.security_ids([code for _, code, _ in ticks]),
        np.array([price for _, _, price in ticks], dtype=np.float64),
    )
    bounds = [0, *sorted(set(cuts)), len(ticks)]
    for start, stop in itertools.pairwise(bounds):
        pipeline.process(columns.slice(start, stop))
    pipeline.apply_due_events(2**62)
    return pipeline, sink, audit


def assert_rel(got: float, expected: float, scale: float, what: str) -> None:
    assert abs(got - expected) <= REL * abs(scale), f"{what}: {got} != {expected}"


@pytest.mark.slow
@SETTINGS
@given(scenarios())
def test_levels_continuous_across_events(scenario: Scenario) -> None:
    print(f"scenario seed {scenario.seed}")
    model = scenario.model()
    pipeline = IndexPipeline(
        IndexCalculator(engine_universe(scenario.indices, scenario.rows, scenario.total_return)),
        TestingSink([]),
    )
    pipeline.register_securities(scenario.pool)
    calc = pipeline.calculator
    codes = calc.universe.index_codes
    for step in scenario.steps:
        if isinstance(step, list):
            calc.apply(calc.universe.security_ids([c for _, c, _ in step]), [p for _, _, p in step])
            for _, code, price in step:
                model.tick(code, price)
            continue
        before = calc.levels.copy()
        weights = {k: model.weight_in(k, getattr(step, "security", "")) for k in codes}
        divisors = dict(model.divisors)
        try:
            model.apply(step)
        except RefEventError:
            with_error = True
        else:
            with_error = False
        try:
            apply_event(calc, step)
        except EventError:
            assert with_error, f"engine refused {step}"
            assert np.array_equal(calc.levels, before)
            continue
        assert not with_error, f"engine accepted {step}"
        for k, code in enumerate(codes):
            expected = float(before[k])
            if isinstance(step, CashDividend):
                kept = 1.0 - model.reinvested(code, step.withholding_rate)
                expected -= kept * step.amount * weights[code] / divisors[code]
            assert_rel(float(calc.levels[k]), expected, before[k], f"{code} after {step}")
            assert_rel(float(calc.levels[k]), model.level(code), before[k], f"{code} vs model")


@pytest.mark.slow
@SETTINGS
@given(scenarios(), st.randoms(use_true_random=False))
def test_pipeline_equals_scalar_reference(scenario: Scenario, random: stdlib_random.Random) -> None:
    print(f"scenario seed {scenario.seed}")
    n = len(scenario.ticks())
    cuts = random.sample(range(n + 1), k=random.randint(0, min(n, 6)))
    ref = reference_run(scenario)
    expected, failed, model = ref.levels, ref.failed, ref.model
    pipeline, sink, audit = engine_run(scenario, cuts)
    got = sink.rows()
    assert [(ts, ix, seq) for ts, ix, _, seq in got] == [(ts, ix, sq) for ts, ix, _, sq in expected]
    for (ts, code, level, _), (_, _, want, _) in zip(got, expected, strict=True):
        assert_rel(level, want, want, f"{code} at {ts}")
    assert len(pipeline.stats.events_failed) == failed
    event(f"events applied: {min(pipeline.stats.events_applied // 5 * 5, 20)}+")
    event(f"events refused: {min(failed, 3)}+")
    event(f"levels compared: {min(len(got) // 50 * 50, 200)}+")
    assert pipeline.stats.events_applied == len(scenario.events()) - failed == len(audit.calls)
    for records, changes in zip(audit.calls, ref.changes, strict=True):
        engine_divisors = {r.index: r.new_divisor for r in records}
        assert {c.index for c in changes} <= engine_divisors.keys()
        for c in changes:
            assert_rel(engine_divisors[c.index], c.new_divisor, c.new_divisor, c.index)
    final = pipeline.calculator
    for k, code in enumerate(final.universe.index_codes):
        assert_rel(float(final.levels[k]), model.level(code), model.level(code), code)
        assert_rel(float(final.divisors[k]), model.divisors[code], model.divisors[code], code)


@pytest.mark.slow
@SETTINGS
@given(scenarios(), st.randoms(use_true_random=False))
def test_batch_splits_do_not_change_levels(
    scenario: Scenario, random: stdlib_random.Random
) -> None:
    print(f"scenario seed {scenario.seed}")
    n = len(scenario.ticks())
    one_by_one = LevelColumns.concat(engine_run(scenario, range(n))[1].batches)
    splits: list[list[int]] = [[], random.sample(range(n + 1), k=random.randint(0, n))]
    for cuts in splits:
        other = LevelColumns.concat(engine_run(scenario, cuts)[1].batches)
        assert np.array_equal(other.seq, one_by_one.seq)
        assert np.array_equal(other.index, one_by_one.index)
        assert np.array_equal(other.ts_event, one_by_one.ts_event)
        np.testing.assert_allclose(other.level, one_by_one.level, rtol=REL, atol=0)


def test_generated_streams_cover_every_event_kind() -> None:
    """Every kind is generated; valid kinds are mostly applied, invalid ones always refused."""
    applied: dict[str, int] = dict.fromkeys(EVENT_KINDS, 0)
    failed: dict[str, int] = dict.fromkeys(EVENT_KINDS, 0)
    for seed in range(20):
        kinds = [EVENT_KINDS[(seed + k) % len(EVENT_KINDS)] for k in range(26)]
        scenario = make_scenario(SEED + seed, 12, 3, [x for k in kinds for x in ("ticks", k)])
        model = scenario.model()
        labels = iter(scenario.labels)
        for step in scenario.steps:
            if isinstance(step, list):
                for _, code, price in step:
                    model.tick(code, price)
                continue
            kind = next(labels)
            try:
                model.apply(step)
                applied[kind] += 1
            except RefEventError:
                failed[kind] += 1
    print(f"seed {SEED}: applied {applied}, failed {failed}")
    assert applied["invalid"] == 0 and failed["invalid"] > 10
    for kind in EVENT_KINDS[:-1]:
        assert applied[kind] > 3 * failed[kind], kind
