"""Day figures (change, day range, drawdowns) against pandas; batching, restarts, bad data."""

from __future__ import annotations

import dataclasses
from typing import Any

import msgspec
import numpy as np
import pytest

from engine.analytics.day_figure_types import DayFiguresConfig, DayFiguresState
from engine.analytics.day_figures import DayFigureTracker
from engine.analytics.errors import AnalyticsConfigError, AnalyticsStateError
from engine.analytics.returns import periods_per_year
from engine.kernel.columns import LevelColumns, TickColumns
from tests.support.analytics_reference import closes_through, day_figures_at, levels_frame
from tests.support.analytics_stream import (
    CALENDAR,
    FRIDAY,
    AnalyticsRun,
    Emitted,
    batches,
    hkt,
    random_splits,
    run_in_batches,
    simulated_days,
    whole_run,
)
from tests.support.seed import SEED

HIGHS = DayFiguresConfig(reference_highs={"HSI": 25_800.0 * 1.001, "HSCEI": 9_150.0 * 1.5})
OPTIONS: dict[str, Any] = {
    "ppy": periods_per_year(CALENDAR, 2026),
    "interval_ns": 30_000_000_000,
    "window": 30,
    "config": HIGHS,
}


def assert_same(first: list[Emitted], second: list[Emitted]) -> None:
    """Bitwise the same figures at the same boundaries."""
    assert [(e.ts, e.final) for e in first] == [(e.ts, e.final) for e in second]
    for a, b in zip(first, second, strict=True):
        for columns_a, columns_b in ((a.figures, b.figures), (a.volatility, b.volatility)):
            for field in dataclasses.fields(columns_a):
                x, y = getattr(columns_a, field.name), getattr(columns_b, field.name)
                assert np.array_equal(x, y, equal_nan=True), field.name
        assert (a.last_returns is None) == (b.last_returns is None)
        if a.last_returns is not None and b.last_returns is not None:
            assert np.array_equal(a.last_returns, b.last_returns, equal_nan=True)


def test_day_figures_match_pandas_over_two_days_with_a_day_roll() -> None:
    print("seed", SEED)
    run = whole_run(SEED, **OPTIONS)
    frame = levels_frame(run.all_levels, CALENDAR)
    initial = np.array([spec.prev_close_level for spec in run.universe.indices])
    references = np.full(initial.size, np.nan)
    references[:2] = [25_800.0 * 1.001, 9_150.0 * 1.5]
    friday_close = CALENDAR.closing_auction_end(FRIDAY)
    checked = [e for k, e in enumerate(run.emitted) if k % 41 == 0 or e.final]
    assert len(checked) > 30
    for emitted in checked:
        day = int(CALENDAR.trading_day(np.array([emitted.ts - 1]))[0])
        prev_close = closes_through(frame, [FRIDAY] if emitted.ts > friday_close else [], initial)
        expected = day_figures_at(frame, emitted.ts, day, prev_close, references)
        for name, values in expected.items():
            got = getattr(emitted.figures, name)
            np.testing.assert_allclose(got, values, rtol=1e-9, equal_nan=True, err_msg=name)
    figures = [e.figures for e in run.emitted]
    assert not any((f.drawdown_day > 0).any() for f in figures)
    assert any(f.drawdown_ref[0] == 0 for f in figures), "a new high resets the drawdown"
    assert all(np.isnan(f.ref_high[2:]).all() for f in figures)


def test_the_close_becomes_the_previous_close_at_the_day_roll() -> None:
    run = whole_run(SEED, **OPTIONS)
    at = next(k for k, e in enumerate(run.emitted) if e.final)
    friday, monday = run.emitted[at].figures, run.emitted[at + 1].figures
    assert np.array_equal(monday.prev_close, friday.level)
    assert np.isnan(monday.open).all()  # the pre-opening auction is not the open
    assert not np.array_equal(friday.prev_close, friday.level)


def test_figures_are_the_same_however_the_stream_is_batched() -> None:
    rng = np.random.default_rng(SEED + 3)
    whole = whole_run(SEED, **OPTIONS)
    _, ticks = simulated_days(SEED)
    split = run_in_batches(SEED, random_splits(rng, len(ticks), 400), **OPTIONS)
    assert_same(split.emitted, whole.emitted)


@pytest.mark.slow
def test_out_of_order_ticks_give_the_same_figures_however_batched() -> None:
    rng = np.random.default_rng(SEED + 4)
    _, ticks = simulated_days(SEED)
    jitter = rng.integers(-500_000_000, 500_000_000, len(ticks))
    shuffled = TickColumns(ticks.ts_event + jitter, ticks.security, ticks.price)
    whole = run_in_batches(SEED, ticks=shuffled, **OPTIONS)
    split = run_in_batches(SEED, random_splits(rng, len(ticks), 300), ticks=shuffled, **OPTIONS)
    assert_same(split.emitted, whole.emitted)
    assert len(whole.emitted) == len(whole_run(SEED, **OPTIONS).emitted)


def test_a_restart_from_a_captured_state_gives_the_same_figures() -> None:
    rng = np.random.default_rng(SEED + 5)
    whole = whole_run(SEED, **OPTIONS)
    universe, ticks = simulated_days(SEED)
    parts = batches(ticks, random_splits(rng, len(ticks), 40))
    first = AnalyticsRun(universe, CALENDAR, **OPTIONS)
    stop = len(parts) // 2 + 3
    for batch in parts[:stop]:
        first.process(batch)
    second = AnalyticsRun(universe, CALENDAR, **OPTIONS)
    second.pipeline = first.pipeline  # the engine's own checkpoint is tested elsewhere
    second.pipeline.observers[:] = [second.levels.append, second.figures.update]
    second.restore(first.capture())
    for batch in parts[stop:]:
        second.process(batch)
    second.finish(CALENDAR.closing_auction_end(FRIDAY + 3))
    assert_same(first.emitted + second.emitted, whole.emitted)


def levels(rows: list[tuple[int, int, float]]) -> LevelColumns:
    ts, index, level = zip(*rows, strict=True)
    n = len(rows)
    return LevelColumns(
        ts_event=np.array(ts, dtype=np.int64),
        index=np.array(index, dtype=np.int32),
        level=np.array(level, dtype=np.float64),
        seq=np.arange(n, dtype=np.int64),
        security=np.zeros(n, dtype=np.int64),
    )


def tracker(prev_close: list[float], **highs: float) -> DayFigureTracker:
    codes = [f"IX{k}" for k in range(len(prev_close))]
    config = DayFiguresConfig(reference_highs=highs)
    return DayFigureTracker(codes, prev_close, CALENDAR, config)


def test_nan_infinite_and_zero_levels_do_not_raise() -> None:
    figures = tracker([0.0, 100.0, np.nan])
    figures.update(levels([(hkt(FRIDAY, 10), 0, np.nan), (hkt(FRIDAY, 10), 1, np.inf)]))
    figures.update(levels([(hkt(FRIDAY, 10.1), 1, 0.0), (hkt(FRIDAY, 10.1), 2, -np.inf)]))
    out = figures.figures()
    assert np.isnan(out.change_pct[[0, 2]]).all()
    assert out.level[1] == 0.0 and out.change_pct[1] == -100.0
    assert out.high[1] == 0.0 and np.isnan(out.drawdown_day[1])
    assert np.isnan(out.high[[0, 2]]).all()


def test_open_is_the_first_continuous_level_and_the_range_counts_the_auctions() -> None:
    figures = tracker([100.0, 200.0])
    figures.update(levels([(hkt(FRIDAY, 9.2), 0, 90.0), (hkt(FRIDAY, 9.2), 1, 210.0)]))
    assert np.isnan(figures.figures().open).all()
    figures.update(levels([(hkt(FRIDAY, 9.6), 0, 99.0), (hkt(FRIDAY, 9.7), 0, 98.0)]))
    figures.update(levels([(hkt(FRIDAY, 13.5), 1, 205.0), (hkt(FRIDAY, 16.05), 0, 120.0)]))
    out = figures.figures()
    assert out.open.tolist() == [99.0, 205.0]
    assert out.high.tolist() == [120.0, 210.0] and out.low.tolist() == [90.0, 205.0]
    assert out.drawdown_day.tolist() == [0.0, 205.0 / 210.0 - 1.0]


def test_levels_outside_trading_move_the_level_not_the_range() -> None:
    figures = tracker([100.0])
    figures.update(levels([(hkt(FRIDAY, 10), 0, 101.0)]))
    figures.update(levels([(hkt(FRIDAY, 12.5), 0, 105.0)]))
    out = figures.figures()
    assert (out.level[0], out.high[0], out.drawdown_day[0]) == (105.0, 101.0, 0.0)
    assert figures.ignored_levels == 1


def test_reference_highs_carry_over_days_and_reset_at_new_highs() -> None:
    figures = tracker([100.0, 100.0], IX0=110.0)
    figures.update(levels([(hkt(FRIDAY, 10), 0, 99.0), (hkt(FRIDAY, 10), 1, 99.0)]))
    out = figures.figures()
    assert out.ref_high[0] == 110.0 and out.drawdown_ref[0] == pytest.approx(99 / 110 - 1)
    assert np.isnan(out.ref_high[1]) and np.isnan(out.drawdown_ref[1])
    figures.update(levels([(hkt(FRIDAY, 11), 0, 115.0)]))
    assert figures.figures().drawdown_ref[0] == 0.0
    figures.roll_day(FRIDAY)
    figures.update(levels([(hkt(FRIDAY + 3, 10), 0, 112.0)]))
    out = figures.figures()
    assert out.ref_high[0] == 115.0 and out.prev_close[0] == 115.0 and out.high[0] == 112.0


def test_late_levels_are_ignored_and_a_later_day_rolls_the_current_one() -> None:
    figures = tracker([100.0])
    figures.update(levels([(hkt(FRIDAY, 10), 0, 101.0), (hkt(FRIDAY + 3, 10), 0, 103.0)]))
    out = figures.figures()
    assert (out.prev_close[0], out.high[0], figures.day) == (101.0, 103.0, FRIDAY + 3)
    figures.update(levels([(hkt(FRIDAY, 11), 0, 150.0)]))
    assert figures.late_levels == 1 and figures.figures().high[0] == 103.0
    with pytest.raises(ValueError, match="has started"):
        figures.roll_day(FRIDAY)


def test_capture_and_restore_round_trip_bitwise() -> None:
    figures = tracker([100.0, 50.0], IX1=60.0)
    figures.update(levels([(hkt(FRIDAY, 9.6), 0, 101.5), (hkt(FRIDAY, 9.7), 1, 49.0)]))
    data = msgspec.msgpack.encode(figures.capture())
    again = tracker([1.0, 1.0])
    again.restore(msgspec.msgpack.decode(data, type=DayFiguresState))
    assert again.capture() == figures.capture()
    batch = levels([(hkt(FRIDAY, 10), 1, 61.0)])
    figures.update(batch)
    again.update(batch)
    for name in ("level", "open", "high", "drawdown_ref", "ref_high"):
        assert np.array_equal(
            getattr(again.figures(), name), getattr(figures.figures(), name), equal_nan=True
        )
    with pytest.raises(AnalyticsStateError, match="2 indices do not fit 3"):
        tracker([1.0, 2.0, 3.0]).restore(figures.capture())


def test_bad_configuration_and_ids_are_refused() -> None:
    with pytest.raises(AnalyticsConfigError, match="unknown index 'NOPE'"):
        tracker([1.0], NOPE=2.0)
    with pytest.raises(AnalyticsConfigError, match="IX0 must be positive"):
        tracker([1.0], IX0=float("nan"))
    with pytest.raises(msgspec.ValidationError, match="unknown field"):
        msgspec.convert({"reference_highs": {}, "extra": 1}, DayFiguresConfig)
    with pytest.raises(ValueError, match="out of range"):
        tracker([1.0]).update(levels([(hkt(FRIDAY, 10), 1, 1.0)]))
    with pytest.raises(ValueError, match="2 elements"):
        DayFigureTracker(["A", "B"], [1.0], CALENDAR)
