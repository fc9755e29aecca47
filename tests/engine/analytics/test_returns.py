"""Sampled log returns and realised volatility, against a pandas reference."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import msgspec
import numpy as np
import pytest

from engine.analytics.errors import AnalyticsStateError
from engine.analytics.returns import ReturnsState, SampledReturns, periods_per_year
from engine.calendar.sessions import TradingCalendar
from tests.support.analytics_reference import (
    levels_before,
    levels_frame,
    sampled_log_returns,
    volatility_at,
)
from tests.support.analytics_stream import (
    CALENDAR,
    whole_run,
)
from tests.support.seed import SEED

PPY = periods_per_year(CALENDAR, 2026)
OPTIONS: dict[str, Any] = {"ppy": PPY, "interval_ns": 30_000_000_000, "window": 30}


def test_volatility_matches_pandas_over_two_days_with_a_day_roll() -> None:
    print("seed", SEED)
    run = whole_run(SEED, **OPTIONS)
    n = len(run.universe.indices)
    frame = levels_frame(run.all_levels, CALENDAR)
    initial = np.array([spec.prev_close_level for spec in run.universe.indices])
    samples = levels_before(frame, run.sample_times, initial)
    returns = sampled_log_returns(samples)
    times = np.array(run.sample_times)
    closes = np.array([e.ts for e in run.emitted if e.final])
    assert closes.size == 2
    sample_session = np.searchsorted(closes, times, side="left")
    assert len(run.emitted) > 1000
    checked = [e for k, e in enumerate(run.emitted) if k % 7 == 0 or e.final or k < 5]
    for emitted in checked:
        last_sample = int(np.searchsorted(times, emitted.ts, side="right")) - 1
        session = int(np.searchsorted(closes, emitted.ts, side="left"))
        session_vol, rolling_vol = volatility_at(
            returns,
            sample_session=sample_session,
            last_sample=last_sample,
            session=session,
            window=30,
            ppy=PPY,
        )
        vol = emitted.volatility
        np.testing.assert_allclose(vol.session, session_vol, rtol=1e-9, equal_nan=True)
        np.testing.assert_allclose(vol.rolling, rolling_vol, rtol=1e-9, equal_nan=True)
        assert vol.returns_in_window.tolist() == [min(max(last_sample, 0), 30)] * n
    if last := [e.last_returns for e in run.emitted if e.last_returns is not None]:
        expected = np.array([r.iloc[-1] for r in returns])
        np.testing.assert_allclose(last[-1], expected, rtol=1e-9)


def test_the_day_roll_resets_the_session_but_not_the_window() -> None:
    run = whole_run(SEED, **OPTIONS)
    friday_close = next(i for i, e in enumerate(run.emitted) if e.final)
    monday = run.emitted[friday_close + 1]
    assert run.emitted[friday_close].volatility.returns_in_session.min() == 370 - 1
    assert monday.volatility.returns_in_session.max() == 0
    assert np.isnan(monday.volatility.session).all()
    assert monday.volatility.returns_in_window.min() == 30
    assert np.isfinite(monday.volatility.rolling).all()


def test_bad_levels_give_no_return_and_the_next_good_one_spans_the_gap() -> None:
    returns = SampledReturns(3, window=4)
    returns.sample([100.0, 50.0, 10.0])
    returns.sample([np.nan, 0.0, 11.0])
    assert np.isnan(returns.last_returns()[:2]).all()
    returns.sample([110.0, -1.0, np.inf])
    last = returns.last_returns()
    assert last[0] == pytest.approx(np.log(1.1), rel=1e-12)
    assert np.isnan(last[1:]).all()
    returns.sample([121.0, 55.0, 12.1])
    np.testing.assert_allclose(returns.last_returns(), np.log([1.1, 1.1, 1.1]), rtol=1e-12)
    vol = returns.volatility(1.0)
    assert vol.returns_in_session.tolist() == [2, 1, 2]
    assert np.isnan(vol.session[1]) and np.isnan(vol.rolling[1])
    assert vol.session[0] == pytest.approx(0.0, abs=1e-15)


def test_a_subset_of_indices_is_sampled_alone() -> None:
    returns = SampledReturns(4, window=3)
    returns.sample([10.0, 20.0], ids=[3, 1])
    returns.sample([11.0, 18.0], ids=[3, 1])
    last = returns.last_returns()
    assert np.isnan(last[[0, 2]]).all()
    np.testing.assert_allclose(last[[3, 1]], np.log([1.1, 0.9]), rtol=1e-12)
    vol = returns.volatility(252.0, ids=[1, 3])
    assert vol.index.tolist() == [1, 3] and vol.returns_in_window.tolist() == [1, 1]
    with pytest.raises(ValueError, match="2 levels for 1"):
        returns.sample([1.0, 2.0], ids=[0])


def test_the_window_keeps_the_last_returns_oldest_first() -> None:
    rng = np.random.default_rng(SEED)
    levels = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 9)))
    returns = SampledReturns(1, window=3)
    for level in levels:
        returns.sample([level])
    expected = np.diff(np.log(levels))[-3:]
    np.testing.assert_allclose(returns.window_returns(0), expected, rtol=1e-12)
    vol = returns.volatility(100.0)
    assert vol.rolling[0] == pytest.approx(np.std(expected, ddof=1) * 10, rel=1e-12)


@pytest.mark.parametrize("protocol", [msgspec.json, msgspec.msgpack])
def test_capture_and_restore_round_trip_bitwise(protocol: object) -> None:
    rng = np.random.default_rng(SEED + 2)
    first = SampledReturns(5, window=4)
    second = SampledReturns(5, window=4)
    for step in range(11):
        levels = 100 * np.exp(rng.normal(0, 0.01, 5))
        levels[step % 5] = np.nan
        first.sample(levels)
        if step == 6:
            second.restore(protocol.decode(protocol.encode(first.capture()), type=ReturnsState))  # type: ignore[attr-defined]
        elif step > 6:
            second.sample(levels)
    assert first.capture() == second.capture()
    a, b = first.volatility(9.0), second.volatility(9.0)
    assert np.array_equal(a.session, b.session, equal_nan=True)
    assert np.array_equal(a.rolling, b.rolling, equal_nan=True)


def test_a_state_that_does_not_fit_is_refused() -> None:
    state = SampledReturns(3, window=4).capture()
    with pytest.raises(AnalyticsStateError, match="3 indices x 4"):
        SampledReturns(3, window=5).restore(state)
    with pytest.raises(AnalyticsStateError, match="rolling window has 8 bytes"):
        SampledReturns(3, window=4).restore(msgspec.structs.replace(state, ring=b"\0" * 8))
    heads = np.array([0, 9, 0], dtype="<i8").tobytes()
    with pytest.raises(AnalyticsStateError, match="out of range"):
        SampledReturns(3, window=4).restore(msgspec.structs.replace(state, ring_head=heads))


def test_a_window_needs_two_returns() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        SampledReturns(1, window=1)


def test_periods_per_year_are_trading_days_times_a_full_days_grid() -> None:
    calendar = TradingCalendar(holidays=["2026-01-01", "2026-12-25"], half_days=["2026-12-24"])
    days = [date(2026, 1, 1) + timedelta(days=k) for k in range(365)]
    weekdays = sum(1 for day in days if day.weekday() < 5)
    assert periods_per_year(calendar, 2026) == (weekdays - 2) * 370
    assert periods_per_year(calendar, 2026, 300_000_000_000) == (weekdays - 2) * 74
    assert periods_per_year(CALENDAR, 2026) == PPY
