"""Analytics boundaries: where batches are cut and which boundaries pass at each cut."""

from __future__ import annotations

import msgspec
import numpy as np
import pytest
from numpy.typing import NDArray

from engine.analytics.schedule import (
    AnalyticsSchedule,
    BoundaryKind,
    Cut,
    ScheduleState,
    grid_points,
)
from engine.kernel.columns import TickColumns
from tests.support.analytics_stream import (
    CALENDAR,
    FRIDAY,
    MONDAY,
    batches,
    hkt,
    random_splits,
)
from tests.support.seed import SEED

S = 1_000_000_000
MINUTE = 60 * S

CutRow = tuple[int, list[int], list[int]]


def rows(cuts: list[Cut], offset: int = 0) -> list[CutRow]:
    return [(offset + c.position, c.ts.tolist(), c.kind.tolist()) for c in cuts]


def brute_force_cuts(ts: NDArray[np.int64], interval: int, sample: int) -> list[CutRow]:
    """Every candidate boundary after the first tick, checked with ``TradingCalendar.phase``."""
    low, high = int(ts[0]), int(ts.max())
    found: dict[int, dict[int, int]] = {}
    for step, kind in ((interval, BoundaryKind.INTERVAL), (sample, BoundaryKind.SAMPLE)):
        times = np.arange((low // step + 1) * step, high + 1, step, dtype=np.int64)
        for b in times[CALENDAR.is_trading(times - 1)].tolist():
            position = int(np.argmax(ts >= b))
            found.setdefault(position, {}).setdefault(b, 0)
            found[position][b] |= kind
    for day in range(int(CALENDAR.trading_day(np.array([low]))[0]), MONDAY + 4):
        if not CALENDAR.is_trading_day(day):
            continue
        close = CALENDAR.closing_auction_end(day)
        if low < close <= high:
            position = int(np.argmax(ts >= close))
            found.setdefault(position, {}).setdefault(close, 0)
            found[position][close] |= BoundaryKind.CLOSE
    out = []
    for position in sorted(found):
        times_kinds = found[position]
        intervals = [b for b, k in times_kinds.items() if k & BoundaryKind.INTERVAL]
        for b in intervals[:-1] if intervals else []:
            times_kinds[b] &= ~BoundaryKind.INTERVAL
        kept = sorted((b, k) for b, k in times_kinds.items() if k)
        out.append((position, [b for b, _ in kept], [int(k) for _, k in kept]))
    return out


def jittered_stream(rng: np.random.Generator, n: int, days: list[int]) -> NDArray[np.int64]:
    """Tick times over the given days' trading hours, out of order by up to 2 s."""
    parts = []
    for day in days:
        span = (hkt(day, 8.9), hkt(day, 16.3))
        parts.append(np.sort(rng.integers(*span, n // len(days))))
    ts = np.concatenate(parts)
    return ts + rng.integers(-2 * S, 2 * S, ts.size)


def test_cuts_match_a_brute_force_search_however_the_stream_is_batched() -> None:
    rng = np.random.default_rng(SEED)
    print("seed", SEED)
    ts = jittered_stream(rng, 4000, [FRIDAY, MONDAY, MONDAY + 2])
    expected = brute_force_cuts(ts, 10 * S, MINUTE)
    assert sum(BoundaryKind.CLOSE in BoundaryKind(k) for _, _, ks in expected for k in ks) == 3
    whole = AnalyticsSchedule(CALENDAR, 10 * S, MINUTE)
    assert rows(whole.cuts(ts)) == expected
    for parts in (2, 50, 2000):
        schedule = AnalyticsSchedule(CALENDAR, 10 * S, MINUTE)
        got: list[CutRow] = []
        splits = random_splits(rng, ts.size, parts)
        for start, end in zip([0, *splits], [*splits, ts.size], strict=True):
            got += rows(schedule.cuts(ts[start:end]), start)
        assert got == expected


def test_a_full_day_has_370_one_minute_grid_points_and_none_in_the_lunch_break() -> None:
    grid = grid_points(CALENDAR, FRIDAY, MINUTE)
    assert grid.size == 370
    assert grid[0] == hkt(FRIDAY, 9 + 1 / 60)
    assert hkt(FRIDAY, 12.0) in grid and hkt(FRIDAY, 13.0) not in grid
    assert grid[180] == hkt(FRIDAY, 13 + 1 / 60)
    assert grid[-1] == CALENDAR.closing_auction_end(FRIDAY)
    assert grid_points(CALENDAR, MONDAY - 1, MINUTE).size == 0  # Sunday
    assert grid_points(CALENDAR, MONDAY + 2, MINUTE)[-1] == hkt(MONDAY + 2, 12 + 10 / 60)


def test_a_quiet_spell_is_one_interval_boundary_but_every_grid_point() -> None:
    schedule = AnalyticsSchedule(CALENDAR)
    assert schedule.cuts(np.array([hkt(FRIDAY, 10.0) + S // 2])) == []
    (cut,) = schedule.cuts(np.array([hkt(FRIDAY, 10 + 5.5 / 60), hkt(FRIDAY, 10.0)]))
    assert cut.position == 0
    assert cut.interval == hkt(FRIDAY, 10 + 5.5 / 60)
    assert cut.samples.tolist() == [hkt(FRIDAY, 10 + m / 60) for m in range(1, 6)]
    assert not cut.final


def test_lunch_passes_at_noon_and_the_close_is_final_once() -> None:
    schedule = AnalyticsSchedule(CALENDAR)
    schedule.cuts(np.array([hkt(FRIDAY, 12.0) - S // 2]))
    (lunch,) = schedule.cuts(np.array([hkt(FRIDAY, 13.0) + S // 2]))
    assert lunch.samples.tolist() == [hkt(FRIDAY, 12.0)]
    assert lunch.interval == hkt(FRIDAY, 12.0)
    close = CALENDAR.closing_auction_end(FRIDAY)
    schedule.cuts(np.array([close - S // 2]))
    (cut,) = schedule.cuts(np.array([close + 5 * MINUTE, close + 6 * MINUTE]))
    assert cut.final and cut.closes.tolist() == [close] and cut.interval == close
    assert cut.kind.tolist() == [BoundaryKind.INTERVAL | BoundaryKind.SAMPLE | BoundaryKind.CLOSE]
    assert schedule.advance_to(close + 10 * MINUTE) is None


def test_a_tick_exactly_on_a_boundary_comes_after_it() -> None:
    schedule = AnalyticsSchedule(CALENDAR, start_ns=hkt(FRIDAY, 10.0))
    (cut,) = schedule.cuts(np.array([hkt(FRIDAY, 10.0) + S - 1, hkt(FRIDAY, 10.0) + S]))
    assert (cut.position, cut.interval) == (1, hkt(FRIDAY, 10.0) + S)


def test_late_ticks_after_a_cut_do_not_cut_again() -> None:
    schedule = AnalyticsSchedule(CALENDAR, start_ns=hkt(FRIDAY, 10.0))
    base = hkt(FRIDAY, 10.0)
    ts = np.array([base + S + 5, base + S - 5, base + 2 * S - 1, base + 2 * S])
    assert [(c.position, c.interval) for c in schedule.cuts(ts)] == [
        (0, base + S),
        (3, base + 2 * S),
    ]


def test_the_next_boundary_after_friday_close_is_monday_pre_opening() -> None:
    schedule = AnalyticsSchedule(CALENDAR, start_ns=CALENDAR.closing_auction_end(FRIDAY))
    assert schedule.cuts(np.array([hkt(MONDAY, 9.0)])) == []
    (cut,) = schedule.cuts(np.array([hkt(MONDAY, 9.0) + S]))
    assert cut.interval == hkt(MONDAY, 9.0) + S and cut.samples.size == 0


def test_a_gap_of_days_passes_each_trading_day_close() -> None:
    schedule = AnalyticsSchedule(CALENDAR)
    schedule.cuts(np.array([hkt(FRIDAY, 15.0)]))
    (cut,) = schedule.cuts(np.array([hkt(MONDAY + 3, 9.5)]))  # Mon, Wed half day; Tue holiday
    closes = [CALENDAR.closing_auction_end(d) for d in (FRIDAY, MONDAY, MONDAY + 2)]
    assert cut.closes.tolist() == closes
    assert closes[-1] == hkt(MONDAY + 2, 12 + 10 / 60)
    assert cut.interval == hkt(MONDAY + 3, 9.5)
    assert cut.samples.size == 70 + 370 + 190 + 30


def test_advance_to_passes_the_close_at_the_end_of_the_stream() -> None:
    schedule = AnalyticsSchedule(CALENDAR)
    assert schedule.advance_to(hkt(FRIDAY, 16.0)) is None  # only sets the start
    assert schedule.advance_to(hkt(FRIDAY, 16.0) + S // 2) is None
    cut = schedule.advance_to(CALENDAR.closing_auction_end(FRIDAY))
    assert cut is not None and cut.final and cut.position == 0
    assert cut.samples.size == 10
    assert schedule.through == CALENDAR.closing_auction_end(FRIDAY)


def test_capture_and_restore_continue_the_same_cuts() -> None:
    rng = np.random.default_rng(SEED + 1)
    ts = jittered_stream(rng, 1500, [FRIDAY])
    expected = rows(AnalyticsSchedule(CALENDAR, 5 * S).cuts(ts))
    first = AnalyticsSchedule(CALENDAR, 5 * S)
    got = rows(first.cuts(ts[:700]))
    data = msgspec.json.encode(first.capture())
    second = AnalyticsSchedule(CALENDAR, 5 * S)
    second.restore(msgspec.json.decode(data, type=ScheduleState))
    assert second.through == first.through
    assert got + rows(second.cuts(ts[700:]), 700) == expected


def test_empty_batches_pass_nothing() -> None:
    schedule = AnalyticsSchedule(CALENDAR)
    assert schedule.cuts(np.empty(0, dtype=np.int64)) == []
    assert schedule.through is None


@pytest.mark.parametrize(("interval", "sample"), [(0, MINUTE), (S, -1)])
def test_intervals_must_be_positive(interval: int, sample: int) -> None:
    with pytest.raises(ValueError, match="positive"):
        AnalyticsSchedule(CALENDAR, interval, sample)


def test_batches_helper_keeps_every_tick() -> None:
    rng = np.random.default_rng(SEED)
    ts = jittered_stream(rng, 100, [FRIDAY])
    ticks = TickColumns(ts, np.zeros(ts.size, dtype=np.int64), np.ones(ts.size))
    parts = batches(ticks, random_splits(rng, ts.size, 7))
    assert np.array_equal(np.concatenate([p.ts_event for p in parts]), ts)
