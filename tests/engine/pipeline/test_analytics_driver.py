"""Analytics records of a whole pipeline, checked against pandas on the recorded stream.

Two simulated trading days (a day roll) of the built-in family with volumes go through a
``SessionDriver`` behind an ``AnalyticsDriver``. The records are the same however the ticks are
batched and across a restart of the analytics, and every figure of a sample of boundaries
matches a plain pandas reference computed from the recorded levels and ticks to 1e-9 relative.
"""

from __future__ import annotations

import msgspec
import numpy as np
import pandas as pd
import pytest
from numpy.typing import NDArray

from engine.analytics.engine import AnalyticsEngine
from engine.analytics.records import IndexAnalytics, PairAnalytics, SignalEvent
from engine.analytics.returns import periods_per_year
from engine.analytics.schedule import grid_points
from engine.analytics.state import AnalyticsState
from engine.kernel.columns import LevelColumns, TickColumns
from tests.support.analytics_pipeline import CONFIG, MINUTE, Run, stream, whole
from tests.support.analytics_reference import (
    closes_through,
    day_figures_at,
    levels_before,
    levels_frame,
    sampled_log_returns,
    volatility_at,
)
from tests.support.analytics_stream import CALENDAR, FRIDAY, MONDAY, batches, random_splits
from tests.support.constituent_reference import member_frame
from tests.support.pair_reference import rolling_beta_corr
from tests.support.seed import SEED


def test_records_do_not_depend_on_batching() -> None:
    universe, ticks = stream()
    splits = random_splits(np.random.default_rng(SEED + 1), len(ticks), 300)
    print(f"seed {SEED}, {len(splits)} cuts")
    run = Run(universe)
    run.feed(batches(ticks, splits))
    run.finish()
    assert run.records == whole().records
    kinds = {type(record) for record in run.records}
    assert kinds == {IndexAnalytics, PairAnalytics, SignalEvent}


def test_a_restart_from_the_captured_state_gives_the_same_records() -> None:
    universe, ticks = stream()
    half = len(ticks) // 2
    run = Run(universe)
    run.feed([ticks.slice(0, half)])
    state = msgspec.msgpack.decode(
        msgspec.msgpack.encode(run.engine.capture()), type=AnalyticsState
    )
    restarted = AnalyticsEngine(run.pipeline.calculator, CALENDAR, CONFIG)
    restarted.restore(state)
    run.driver.analytics = restarted
    run.pipeline.observers.remove(run.engine.observe_levels)
    run.pipeline.tick_observers.remove(run.engine.observe_ticks)
    run.pipeline.observers.append(restarted.observe_levels)
    run.pipeline.tick_observers.append(restarted.observe_ticks)
    run.feed([ticks.slice(half, len(ticks))])
    run.finish()
    assert run.records == whole().records


def index_records(run: Run) -> pd.DataFrame:
    rows = [msgspec.structs.asdict(r) for r in run.records if isinstance(r, IndexAnalytics)]
    frame = pd.DataFrame(rows)
    frame["index_id"] = frame["index"].map(run.universe.index_id)
    return frame


def test_index_figures_match_pandas_on_the_recorded_stream() -> None:
    run, (universe, ticks) = whole(), stream()
    n = len(universe.indices)
    frame = levels_frame(LevelColumns.concat(run.levels), CALENDAR)
    records = index_records(run)
    initial = np.array([spec.prev_close_level for spec in universe.indices])
    grid = np.concatenate([grid_points(CALENDAR, day, MINUTE) for day in (FRIDAY, MONDAY)])
    samples = levels_before(frame, grid.tolist(), initial)
    returns = sampled_log_returns(samples)
    sample_day = CALENDAR.trading_day(grid - 1)
    ppy = periods_per_year(CALENDAR, 2026, MINUTE)
    boundaries = np.unique(records["ts_event"].to_numpy())
    chosen = np.random.default_rng(SEED + 2).choice(boundaries, 25, replace=False)
    finals = records.loc[records["final"], "ts_event"].unique()
    assert len(finals) == 2
    for t in sorted({*chosen.tolist(), *finals.tolist()}):
        day = int(CALENDAR.trading_day(np.array([t - 1]))[0])
        prev_close = closes_through(frame, [FRIDAY] if day == MONDAY else [], initial)
        want = day_figures_at(frame, t, day, prev_close, np.full(n, np.nan))
        got = records[records["ts_event"] == t].set_index("index_id").sort_index()
        assert got.index.tolist() == list(range(n))
        for name in ("level", "prev_close", "change", "change_pct", "open", "high", "low"):
            np.testing.assert_allclose(got[name].to_numpy(float), want[name], rtol=1e-9)
        last = int(np.searchsorted(grid, t, side="right")) - 1
        session, rolling = volatility_at(
            returns, sample_session=sample_day, last_sample=last, session=day, window=30, ppy=ppy
        )
        np.testing.assert_allclose(got["vol_session"].to_numpy(float), session, rtol=1e-9)
        np.testing.assert_allclose(got["vol_rolling"].to_numpy(float), rolling, rtol=1e-9)
        _check_constituents(run, ticks, t, day, got)


def _check_constituents(run: Run, ticks: TickColumns, t: int, day: int, got: pd.DataFrame) -> None:
    """Breadth, movers, point change and turnover from prices and volumes before ``t``."""
    universe = run.universe
    tick_frame = pd.DataFrame(
        {
            "ts": ticks.ts_event,
            "security": ticks.security,
            "price": ticks.price,
            "volume": ticks.volume,
            "day": CALENDAR.trading_day(ticks.ts_event),
        }
    )
    prices = _prices_before(tick_frame, t, universe.prev_close)
    prev_close = universe.prev_close
    if day == MONDAY:
        prev_close = _prices_before(tick_frame, CALENDAR.closing_auction_end(FRIDAY), prev_close)
    index, security, weight = run.pipeline.calculator.member_weights()  # no events: constant
    members = member_frame(
        index,
        security,
        weight,
        prices=prices,
        divisors=universe.divisors,
        prev_close=prev_close,
    )
    by_index = members.groupby("index")
    up = by_index.apply(lambda m: int((m["price"] > m["prev_close"]).sum()))
    down = by_index.apply(lambda m: int((m["price"] < m["prev_close"]).sum()))
    assert got["up"].tolist() == up.tolist() and got["down"].tolist() == down.tolist()
    points = by_index["contribution"].sum().to_numpy()
    # Contributions add up to the point change (no event changed a divisor).
    np.testing.assert_allclose(points, got["change"].to_numpy(float), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(
        got["adjusted_prev_close"].to_numpy(float), got["prev_close"].to_numpy(float), rtol=1e-9
    )
    top = members.sort_values(["index", "contribution", "security"], ascending=[True, False, True])
    first = top.groupby("index").head(1).set_index("index")
    codes = universe.securities
    assert [m[0].security for m in got["top"]] == [codes[s] for s in first["security"]]
    np.testing.assert_allclose(
        [m[0].contribution for m in got["top"]], first["contribution"], rtol=1e-9
    )
    today = tick_frame[(tick_frame["day"] == day) & (tick_frame["ts"] < t)]
    value = (today["price"] * today["volume"]).groupby(today["security"]).sum()
    per_security = value.reindex(range(universe.n_securities), fill_value=0.0).to_numpy()
    turnover = members.assign(t=per_security[members["security"]]).groupby("index")["t"].sum()
    np.testing.assert_allclose(got["turnover"].to_numpy(float), turnover, rtol=1e-9)


def _prices_before(
    ticks: pd.DataFrame, t: int, initial: NDArray[np.float64]
) -> NDArray[np.float64]:
    before = ticks[ticks["ts"] < t].groupby("security")["price"].last()
    prices = initial.copy()
    prices[before.index.to_numpy()] = before.to_numpy()
    return prices


def test_pair_figures_match_pandas_rolling_beta_and_correlation() -> None:
    run = whole()
    universe = run.universe
    frame = levels_frame(LevelColumns.concat(run.levels), CALENDAR)
    initial = np.array([spec.prev_close_level for spec in universe.indices])
    grid = np.concatenate([grid_points(CALENDAR, day, MINUTE) for day in (FRIDAY, MONDAY)])
    samples = levels_before(frame, grid.tolist(), initial)
    with np.errstate(all="ignore"):
        returns = np.diff(np.log(samples), axis=0)
    pairs = [r for r in run.records if isinstance(r, PairAnalytics)]
    assert {p.pair for p in pairs} == {"SMALLCAP_VS_HSI", "HSTECH_VS_HSI"}
    for record in pairs:
        a, b = universe.index_id(record.a), universe.index_id(record.b)
        beta, corr, count = rolling_beta_corr(returns[:, a], returns[:, b], 120)
        last = int(np.searchsorted(grid, record.ts_event, side="right")) - 2  # returns lag 1
        if last < 1:
            assert record.beta is None
            continue
        assert record.returns_in_window == count[last]
        assert record.beta is not None and record.corr is not None
        # Relative to the figures' scale (1) where they come near 0: a beta of 1e-5 is a
        # difference of nearly equal products, and pandas' online sums round differently.
        np.testing.assert_allclose(record.beta, beta[last], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(record.corr, corr[last], rtol=1e-9, atol=1e-12)


def test_signals_fire_on_changes_of_state_only() -> None:
    run = whole()
    events = [r for r in run.records if isinstance(r, SignalEvent)]
    hsi = [e for e in events if e.name == "hsi-up"]
    assert hsi, "HSI crossed its previous close at least once in two simulated days"
    assert [e.active for e in hsi] == [i % 2 == 0 for i in range(len(hsi))]
    changes = index_records(run).query("index == 'HSI'").set_index("ts_event")["change"]
    for event in hsi:
        assert (changes[event.ts_event] > 0) == event.active
        assert event.values == {"HSI.change": changes[event.ts_event]}


@pytest.mark.parametrize("indices", [("HSI",), ("HSCI_SC", "HSI")])
def test_only_the_configured_indices_get_figures(indices: tuple[str, ...]) -> None:
    universe, ticks = stream()
    run = Run(universe, msgspec.structs.replace(CONFIG, indices=indices, rules=()))
    run.feed([ticks.slice(0, 5000)])
    got = {r.index for r in run.records if isinstance(r, IndexAnalytics)}
    assert got == set(indices)
