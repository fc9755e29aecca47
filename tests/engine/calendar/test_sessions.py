"""HKEX trading calendar: phases at every boundary, days, bounds, CSV loading, vectorisation."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from engine.calendar.sessions import Phase, TradingCalendar, day_date, day_number
from engine.core.errors import ReferenceDataError
from engine.core.timestamps import parse_timestamp
from tests.support.seed import SEED

FRIDAY = "2026-11-20"
SATURDAY = "2026-11-21"
SUNDAY = "2026-11-22"
HALF_DAY = "2026-12-24"  # Thursday
HOLIDAY = "2026-12-25"  # Friday


def hkt(day: str, clock: str) -> int:
    """Nanoseconds since the epoch of ``day`` at ``clock`` Hong Kong time."""
    return parse_timestamp(f"{day}T{clock}+08:00")


@pytest.fixture
def calendar() -> TradingCalendar:
    return TradingCalendar(holidays=[HOLIDAY], half_days=[HALF_DAY])


def phases(calendar: TradingCalendar, stamps: list[int]) -> list[Phase]:
    return [Phase(code) for code in calendar.phase(np.array(stamps, dtype=np.int64)).tolist()]


FULL_DAY = [
    ("00:00:00", Phase.CLOSED),
    ("08:59:59.999999999", Phase.CLOSED),
    ("09:00:00", Phase.PRE_OPENING),
    ("09:29:59.999999999", Phase.PRE_OPENING),
    ("09:30:00", Phase.MORNING),
    ("11:59:59.999999999", Phase.MORNING),
    ("12:00:00", Phase.LUNCH),
    ("12:59:59.999999999", Phase.LUNCH),
    ("13:00:00", Phase.AFTERNOON),
    ("15:59:59.999999999", Phase.AFTERNOON),
    ("16:00:00", Phase.CLOSING_AUCTION),
    ("16:09:59.999999999", Phase.CLOSING_AUCTION),
    ("16:10:00", Phase.CLOSED),
    ("23:59:59.999999999", Phase.CLOSED),
]


@pytest.mark.parametrize(("clock", "expected"), FULL_DAY)
def test_phase_at_every_boundary_of_a_full_day(
    calendar: TradingCalendar, clock: str, expected: Phase
) -> None:
    assert phases(calendar, [hkt(FRIDAY, clock)]) == [expected]


def test_boundaries_are_hong_kong_time_not_utc(calendar: TradingCalendar) -> None:
    # 09:30 HKT is 01:30 UTC; 16:10 HKT is 08:10 UTC.
    stamps = [
        parse_timestamp(f"{FRIDAY}T01:29:59.999999999Z"),
        parse_timestamp(f"{FRIDAY}T01:30:00Z"),
        parse_timestamp(f"{FRIDAY}T08:09:59.999999999Z"),
        parse_timestamp(f"{FRIDAY}T08:10:00Z"),
    ]
    assert phases(calendar, stamps) == [
        Phase.PRE_OPENING,
        Phase.MORNING,
        Phase.CLOSING_AUCTION,
        Phase.CLOSED,
    ]


HALF = [
    ("08:59:59.999999999", Phase.CLOSED),
    ("09:00:00", Phase.PRE_OPENING),
    ("09:30:00", Phase.MORNING),
    ("11:59:59.999999999", Phase.MORNING),
    ("12:00:00", Phase.CLOSING_AUCTION),
    ("12:09:59.999999999", Phase.CLOSING_AUCTION),
    ("12:10:00", Phase.CLOSED),
    ("13:00:00", Phase.CLOSED),
    ("14:00:00", Phase.CLOSED),
    ("16:00:00", Phase.CLOSED),
    ("16:05:00", Phase.CLOSED),
]


@pytest.mark.parametrize(("clock", "expected"), HALF)
def test_half_day_has_the_morning_session_and_a_midday_closing_auction(
    calendar: TradingCalendar, clock: str, expected: Phase
) -> None:
    assert phases(calendar, [hkt(HALF_DAY, clock)]) == [expected]


@pytest.mark.parametrize("day", [SATURDAY, SUNDAY, HOLIDAY])
def test_weekends_and_holidays_are_closed_all_day(calendar: TradingCalendar, day: str) -> None:
    stamps = [hkt(day, clock) for clock, _ in FULL_DAY]
    assert phases(calendar, stamps) == [Phase.CLOSED] * len(stamps)
    assert not calendar.is_trading(np.array(stamps)).any()
    assert not calendar.is_trading_day(day)


def test_is_trading_covers_auctions_and_continuous_sessions_only(
    calendar: TradingCalendar,
) -> None:
    stamps = np.array([hkt(FRIDAY, clock) for clock, _ in FULL_DAY])
    expected = [
        phase in (Phase.PRE_OPENING, Phase.MORNING, Phase.AFTERNOON, Phase.CLOSING_AUCTION)
        for _, phase in FULL_DAY
    ]
    assert calendar.is_trading(stamps).tolist() == expected
    assert sum(expected) == 8  # two stamps in each of the four trading phases


def test_trading_day_is_the_hong_kong_date(calendar: TradingCalendar) -> None:
    stamps = np.array(
        [
            parse_timestamp(f"{FRIDAY}T15:59:59.999999999Z"),  # 23:59:59.999999999 HKT Friday
            parse_timestamp(f"{FRIDAY}T16:00:00Z"),  # 00:00 HKT Saturday
            hkt(FRIDAY, "00:00:00"),  # Thursday 16:00 UTC
        ]
    )
    days = calendar.trading_day(stamps)
    assert days.dtype == np.int64
    assert [day_date(d) for d in days.tolist()] == [
        date(2026, 11, 20),
        date(2026, 11, 21),
        date(2026, 11, 20),
    ]


def test_negative_timestamps_floor_to_the_right_day(calendar: TradingCalendar) -> None:
    # 1969-12-31 23:00 UTC is 1970-01-01 07:00 HKT, a Thursday: closed before 09:00.
    stamp = -3600 * 10**9
    assert calendar.trading_day(np.array([stamp])).tolist() == [0]
    assert phases(calendar, [stamp, stamp + 2 * 3600 * 10**9]) == [
        Phase.CLOSED,
        Phase.PRE_OPENING,
    ]


def test_session_bounds_and_closing_auction_end(calendar: TradingCalendar) -> None:
    assert calendar.session_bounds(FRIDAY) == (hkt(FRIDAY, "09:30"), hkt(FRIDAY, "16:00"))
    assert calendar.closing_auction_end(FRIDAY) == hkt(FRIDAY, "16:10")
    assert calendar.session_bounds(HALF_DAY) == (hkt(HALF_DAY, "09:30"), hkt(HALF_DAY, "12:00"))
    assert calendar.closing_auction_end(HALF_DAY) == hkt(HALF_DAY, "12:10")
    # the instant the auction ends is the first closed instant
    end = calendar.closing_auction_end(day_number(FRIDAY))
    assert phases(calendar, [end - 1, end]) == [Phase.CLOSING_AUCTION, Phase.CLOSED]
    for day in (SATURDAY, HOLIDAY):
        with pytest.raises(ValueError, match="not a trading day"):
            calendar.session_bounds(day)
        with pytest.raises(ValueError, match="not a trading day"):
            calendar.closing_auction_end(day)


def test_next_and_previous_trading_day_skip_weekends_and_holidays(
    calendar: TradingCalendar,
) -> None:
    assert day_date(calendar.next_trading_day(FRIDAY)) == date(2026, 11, 23)
    # Thursday half day -> Friday holiday -> weekend -> Monday
    assert day_date(calendar.next_trading_day(HALF_DAY)) == date(2026, 12, 28)
    assert calendar.is_half_day(HALF_DAY)
    assert not calendar.is_half_day(FRIDAY)


def test_day_number_accepts_dates_strings_and_numbers() -> None:
    assert day_number("1970-01-01") == 0
    assert day_number(date(2026, 11, 20)) == day_number(FRIDAY) == 20_777
    assert day_number(20_777) == 20_777
    assert day_date(20_777) == date(2026, 11, 20)
    with pytest.raises(TypeError):
        day_number(True)


def test_from_csv_reads_holidays_and_half_days(tmp_path: Path) -> None:
    path = tmp_path / "calendar.csv"
    path.write_text(
        "date,kind\n# illustrative\n2026-12-25,holiday\n\n"
        "2026-12-24,half_day\n2026-12-31,half_day\n"
    )
    calendar = TradingCalendar.from_csv(path)
    assert calendar.holidays == (date(2026, 12, 25),)
    assert calendar.half_days == (date(2026, 12, 24), date(2026, 12, 31))
    assert phases(calendar, [hkt(HOLIDAY, "10:00"), hkt("2026-12-31", "12:05")]) == [
        Phase.CLOSED,
        Phase.CLOSING_AUCTION,
    ]


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("day,kind\n", 1, "header must be date,kind"),
        ("date,kind\n2026-12-25,holliday\n", 2, "kind must be holiday or half_day"),
        ("date,kind\n2026-12-25\n", 2, "kind must be holiday or half_day"),
        ("date,kind\n2026-12-25,holiday\n25/12/2026,holiday\n", 3, "date must be YYYY-MM-DD"),
        ("date,kind\n2026-12-25,holiday\n2026-12-25,half_day\n", 3, "listed twice"),
    ],
)
def test_from_csv_names_the_bad_line(tmp_path: Path, text: str, line: int, problem: str) -> None:
    path = tmp_path / "calendar.csv"
    path.write_text(text)
    with pytest.raises(ReferenceDataError, match=problem) as caught:
        TradingCalendar.from_csv(path)
    assert caught.value.line == line
    assert caught.value.path == str(path)


def test_a_day_cannot_be_both_holiday_and_half_day() -> None:
    with pytest.raises(ValueError, match="both a holiday and a half day"):
        TradingCalendar(holidays=[HOLIDAY], half_days=[date(2026, 12, 25)])


# -- vectorised vs a plain-Python classifier ---------------------------------------------------

HKT = timezone(timedelta(hours=8))


def reference_phase(ts: int, holidays: set[date], half_days: set[date]) -> Phase:
    """Phase of one timestamp through ``datetime``, one branch per rule."""
    seconds, nanos = divmod(ts, 10**9)
    local = datetime.fromtimestamp(seconds, HKT)
    if local.weekday() >= 5 or local.date() in holidays:
        return Phase.CLOSED
    clock = (local.hour * 3600 + local.minute * 60 + local.second) * 10**9 + nanos

    def at(hours: int, minutes: int) -> int:
        return (hours * 60 + minutes) * 60 * 10**9

    if clock < at(9, 0):
        return Phase.CLOSED
    if clock < at(9, 30):
        return Phase.PRE_OPENING
    if clock < at(12, 0):
        return Phase.MORNING
    if local.date() in half_days:
        return Phase.CLOSING_AUCTION if clock < at(12, 10) else Phase.CLOSED
    if clock < at(13, 0):
        return Phase.LUNCH
    if clock < at(16, 0):
        return Phase.AFTERNOON
    if clock < at(16, 10):
        return Phase.CLOSING_AUCTION
    return Phase.CLOSED


def test_vectorised_phases_match_a_per_timestamp_reference(rng: np.random.Generator) -> None:
    print(f"seed {SEED}")
    first, last = day_number("2024-01-01"), day_number("2028-01-01")
    weekdays = [d for d in range(first, last) if day_date(d).weekday() < 5]
    chosen = rng.choice(weekdays, size=60, replace=False).tolist()
    holidays, half_days = set(chosen[:40]), set(chosen[40:])
    calendar = TradingCalendar(holidays=holidays, half_days=half_days)

    ns_day = 86_400 * 10**9
    uniform = rng.integers(first * ns_day, last * ns_day, size=20_000)
    # boundary-heavy stamps: every phase boundary (and 12:10) of random days, +-1 ns
    clocks = np.array([9 * 60, 9 * 60 + 30, 12 * 60, 12 * 60 + 10, 13 * 60, 16 * 60, 16 * 60 + 10])
    days = rng.choice(np.array([*chosen, *weekdays[:200]]), size=3_000)
    edges = (
        days[:, None] * ns_day
        + clocks[None, :] * 60 * 10**9
        - 8 * 3600 * 10**9
        + rng.integers(-1, 2, size=(days.size, clocks.size))
    ).reshape(-1)
    stamps = np.concatenate([uniform, edges]).astype(np.int64)

    holiday_dates = {day_date(d) for d in holidays}
    half_dates = {day_date(d) for d in half_days}
    expected = [reference_phase(ts, holiday_dates, half_dates) for ts in stamps.tolist()]
    got = calendar.phase(stamps)
    assert got.dtype == np.uint8
    mismatches = np.flatnonzero(got != np.array(expected, dtype=np.uint8))
    assert mismatches.size == 0, f"first mismatch at ts={stamps[mismatches[0]]}"
    # every phase occurs, so the comparison exercised every rule
    assert set(np.unique(got).tolist()) == {int(phase) for phase in Phase}
    expected_days = [
        (datetime.fromtimestamp(ts // 10**9, HKT).date() - date(1970, 1, 1)).days
        for ts in stamps.tolist()
    ]
    assert calendar.trading_day(stamps).tolist() == expected_days
    trading = {Phase.PRE_OPENING, Phase.MORNING, Phase.AFTERNOON, Phase.CLOSING_AUCTION}
    assert calendar.is_trading(stamps).tolist() == [phase in trading for phase in expected]
