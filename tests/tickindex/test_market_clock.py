"""The embedded run's event clock: trading time laid onto HKEX trading hours."""

from __future__ import annotations

import numpy as np
import pytest

from engine.calendar.sessions import NS_PER_HOUR, NS_PER_MINUTE, TradingCalendar, day_number
from tests.support.analytics_stream import hkt
from tickindex.market_clock import MarketClock, last_session_open

FRIDAY = day_number("2026-12-04")
MONDAY = FRIDAY + 3
CALENDAR = TradingCalendar(half_days=["2026-12-24"], holidays=["2026-12-25"])


@pytest.mark.parametrize(
    ("wall", "opened"),
    [
        (hkt(FRIDAY + 1, 3.0), hkt(FRIDAY, 9.5)),  # Saturday
        (hkt(MONDAY, 8.0), hkt(FRIDAY, 9.5)),  # before Monday's pre-opening
        (hkt(MONDAY, 12.5), hkt(MONDAY, 9.5)),  # lunch
        (hkt(MONDAY, 17.0), hkt(MONDAY, 9.5)),  # after the close
        (hkt(day_number("2026-12-26"), 10.0), hkt(day_number("2026-12-24"), 9.5)),  # holiday
    ],
)
def test_outside_trading_hours_the_clock_simulates_from_the_last_open(
    wall: int, opened: int
) -> None:
    assert last_session_open(CALENDAR, wall) == opened
    clock = MarketClock.for_wall_time(CALENDAR, wall)
    assert clock.simulated
    assert clock.start_ns == opened
    assert clock.trading_elapsed(5 * NS_PER_HOUR) == 5 * NS_PER_HOUR


@pytest.mark.parametrize("hours", [9.0, 9.75, 13.0, 16.1])
def test_inside_trading_hours_event_time_is_wall_time(hours: float) -> None:
    wall = hkt(MONDAY, hours)
    clock = MarketClock.for_wall_time(CALENDAR, wall)
    assert not clock.simulated
    assert clock.start_ns == wall
    elapsed = np.array([0, 1, 3 * NS_PER_MINUTE], dtype=np.int64)
    np.testing.assert_array_equal(clock.event_times(elapsed), wall + elapsed)


def test_live_trading_time_stops_over_lunch_and_after_the_close() -> None:
    clock = MarketClock.for_wall_time(CALENDAR, hkt(MONDAY, 11.5))
    half_hour = NS_PER_HOUR // 2
    assert clock.trading_elapsed(half_hour // 2) == half_hour // 2
    assert clock.trading_elapsed(NS_PER_HOUR) == half_hour  # 12:30: lunch
    assert clock.trading_elapsed(2 * NS_PER_HOUR) == 2 * half_hour  # 13:30
    closed = clock.trading_elapsed(6 * NS_PER_HOUR)  # 17:30
    assert closed == half_hour + 3 * NS_PER_HOUR + 10 * NS_PER_MINUTE
    assert clock.event_time_at(closed) == hkt(MONDAY, 16 + 1 / 6)


def test_simulated_day_skips_lunch_nights_weekends_and_holidays() -> None:
    clock = MarketClock(CALENDAR, hkt(FRIDAY, 9.5), simulated=True)
    morning = int(2.5 * NS_PER_HOUR)  # 09:30 - 12:00
    afternoon = 3 * NS_PER_HOUR + 10 * NS_PER_MINUTE  # 13:00 - 16:10
    day = morning + afternoon
    full_day = 3 * NS_PER_HOUR + afternoon
    trading = np.array(
        [1, morning - 1, morning, morning + 7, day - 1, day, day + 1, day + full_day],
        dtype=np.int64,
    )
    expected = [
        hkt(FRIDAY, 9.5) + 1,
        hkt(FRIDAY, 12.0) - 1,
        hkt(FRIDAY, 13.0),  # the end of a span is the start of the next
        hkt(FRIDAY, 13.0) + 7,
        hkt(FRIDAY, 16 + 1 / 6) - 1,
        hkt(MONDAY, 9.0),
        hkt(MONDAY, 9.0) + 1,
        hkt(MONDAY + 1, 9.0),
    ]
    np.testing.assert_array_equal(clock.event_times(trading), expected)
    assert CALENDAR.is_trading(clock.event_times(trading)).all()
    assert clock.event_time_at(morning) == hkt(FRIDAY, 12.0)
    assert clock.event_time_at(day) == hkt(FRIDAY, 16 + 1 / 6)


def test_half_day_and_holiday() -> None:
    eve = day_number("2026-12-24")
    clock = MarketClock(CALENDAR, hkt(eve, 9.5), simulated=True)
    morning = int(2.5 * NS_PER_HOUR) + 10 * NS_PER_MINUTE  # to the 12:10 close of a half day
    after = clock.event_times(np.array([morning - 1, morning], dtype=np.int64))
    np.testing.assert_array_equal(after, [hkt(eve, 12 + 1 / 6) - 1, hkt(eve + 4, 9.0)])


def test_a_clock_starts_inside_trading_hours() -> None:
    with pytest.raises(ValueError, match="inside a trading phase"):
        MarketClock(CALENDAR, hkt(MONDAY, 12.5), simulated=True)
