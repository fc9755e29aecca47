"""Daily OHLC bars from level streams: definitions, day boundaries, batch-split invariance."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from engine.calendar.ohlc import NO_TS, OhlcBars, OhlcTracker
from engine.calendar.sessions import Phase, TradingCalendar, day_number
from engine.core.timestamps import parse_timestamp
from engine.kernel.columns import LevelColumns
from tests.support.seed import SEED

FRIDAY = "2026-11-20"
SATURDAY = "2026-11-21"
MONDAY = "2026-11-23"
HALF_DAY = "2026-12-24"
HOLIDAY = "2026-12-25"


def hkt(day: str, clock: str) -> int:
    return parse_timestamp(f"{day}T{clock}+08:00")


def level_columns(rows: list[tuple[int, int, float]]) -> LevelColumns:
    """Levels from (ts, index, level) rows, in the given (publication) order."""
    return LevelColumns(
        ts_event=np.array([r[0] for r in rows], dtype=np.int64),
        index=np.array([r[1] for r in rows], dtype=np.int32),
        level=np.array([r[2] for r in rows], dtype=np.float64),
        seq=np.arange(1, len(rows) + 1, dtype=np.int64),
        security=np.zeros(len(rows), dtype=np.int64),
    )


@pytest.fixture
def calendar() -> TradingCalendar:
    return TradingCalendar(holidays=[HOLIDAY], half_days=[HALF_DAY])


# (ts, index, level): index 0 trades all day, index 1 only in the afternoon of day one.
DAY_ONE = [
    (hkt(FRIDAY, "08:55"), 0, 50.0),  # closed: ignored
    (hkt(FRIDAY, "09:20"), 0, 110.0),  # pre-opening: in high, not the open
    (hkt(FRIDAY, "09:30"), 0, 101.0),  # first morning level: the open
    (hkt(FRIDAY, "10:00"), 0, 105.0),
    (hkt(FRIDAY, "12:30"), 0, 200.0),  # lunch: ignored
    (hkt(FRIDAY, "13:30"), 1, 20.0),  # index 1's first continuous level: its open
    (hkt(FRIDAY, "14:00"), 0, 95.0),
    (hkt(FRIDAY, "16:00"), 1, 21.0),  # closing auction
    (hkt(FRIDAY, "16:05"), 0, 99.0),  # closing auction: the close
    (hkt(FRIDAY, "16:10"), 0, 300.0),  # auction over: ignored
]
WEEKEND = [(hkt(SATURDAY, "10:00"), 0, 500.0)]  # closed all day: ignored
DAY_TWO = [
    (hkt(MONDAY, "09:31"), 0, 98.0),
    (hkt(MONDAY, "16:09:59.999999999"), 0, 97.0),
]


def assert_bar(
    bars: OhlcBars, index: int, expected: tuple[float, float, float, float, int]
) -> None:
    got = (
        float(bars.open[index]),
        float(bars.high[index]),
        float(bars.low[index]),
        float(bars.close[index]),
        int(bars.count[index]),
    )
    assert all(
        (math.isnan(g) and math.isnan(e)) or g == e for g, e in zip(got, expected, strict=True)
    ), f"index {index}: got {got}, expected {expected}"


def test_bars_follow_the_definitions(calendar: TradingCalendar) -> None:
    tracker = OhlcTracker(2, calendar, initial_levels=[100.0, 19.0])
    tracker.update(level_columns(DAY_ONE))
    friday = tracker.finish_day(FRIDAY)
    assert friday.day.tolist() == [day_number(FRIDAY)] * 2
    assert friday.index.tolist() == [0, 1]
    assert_bar(friday, 0, (101.0, 110.0, 95.0, 99.0, 5))
    assert_bar(friday, 1, (20.0, 21.0, 20.0, 21.0, 2))
    assert friday.close_ts.tolist() == [hkt(FRIDAY, "16:05"), hkt(FRIDAY, "16:00")]
    assert tracker.ignored_levels == 3

    tracker.update(level_columns(WEEKEND + DAY_TWO))
    monday = tracker.finish_day(MONDAY)
    assert_bar(monday, 0, (98.0, 98.0, 97.0, 97.0, 2))
    # index 1 published nothing: no open/high/low, the close carries from Friday
    assert_bar(monday, 1, (math.nan, math.nan, math.nan, 21.0, 0))
    assert monday.close_ts.tolist() == [hkt(MONDAY, "16:09:59.999999999"), NO_TS]
    assert tracker.ignored_levels == 4
    assert tracker.pending_days == ()


def test_a_day_without_levels_carries_the_initial_levels(calendar: TradingCalendar) -> None:
    tracker = OhlcTracker(2, calendar, initial_levels=[100.0, 19.0])
    tracker.update(level_columns(DAY_TWO))
    assert tracker.finish_day(FRIDAY).close.tolist() == [100.0, 19.0]
    monday = tracker.finish_day(MONDAY)
    assert monday.close.tolist() == [97.0, 19.0]


def test_day_boundary_inside_one_batch(calendar: TradingCalendar) -> None:
    stream = DAY_ONE + WEEKEND + DAY_TWO
    whole = OhlcTracker(2, calendar)
    whole.update(level_columns(stream))
    assert whole.pending_days == (day_number(FRIDAY), day_number(MONDAY))
    assert whole.current_day == day_number(MONDAY)

    split = OhlcTracker(2, calendar)
    split.update(level_columns(stream[:7]))  # Friday morning to early afternoon
    split.update(level_columns(stream[7:]))  # Friday close, the weekend and Monday: one batch
    for tracker in (whole, split):
        friday = tracker.finish_day(FRIDAY)
        assert_bar(friday, 0, (101.0, 110.0, 95.0, 99.0, 5))
        assert_bar(friday, 1, (20.0, 21.0, 20.0, 21.0, 2))
        monday = tracker.finish_day(MONDAY)
        assert_bar(monday, 0, (98.0, 98.0, 97.0, 97.0, 2))
        assert_bar(monday, 1, (math.nan, math.nan, math.nan, 21.0, 0))


def test_snapshot_shows_the_running_day(calendar: TradingCalendar) -> None:
    tracker = OhlcTracker(2, calendar, initial_levels=[100.0, 19.0])
    assert len(tracker.snapshot()) == 0
    tracker.update(level_columns(DAY_ONE[:4]))
    running = tracker.snapshot()
    assert_bar(running, 0, (101.0, 110.0, 101.0, 105.0, 3))
    assert_bar(running, 1, (math.nan, math.nan, math.nan, 19.0, 0))
    tracker.update(level_columns(DAY_ONE[4:] + DAY_TWO))
    # Monday's snapshot carries index 1 from Friday, still pending
    assert tracker.snapshot().close.tolist() == [97.0, 21.0]
    assert tracker.snapshot(FRIDAY).close.tolist() == [99.0, 21.0]
    assert tracker.pending_days == (day_number(FRIDAY), day_number(MONDAY))


def test_half_day_closes_with_the_midday_auction(calendar: TradingCalendar) -> None:
    tracker = OhlcTracker(1, calendar)
    tracker.update(
        level_columns(
            [
                (hkt(HALF_DAY, "09:30"), 0, 10.0),
                (hkt(HALF_DAY, "11:00"), 0, 12.0),
                (hkt(HALF_DAY, "12:05"), 0, 11.0),  # closing auction of a half day
                (hkt(HALF_DAY, "13:30"), 0, 99.0),  # no afternoon session: ignored
            ]
        )
    )
    assert_bar(tracker.finish_day(HALF_DAY), 0, (10.0, 12.0, 10.0, 11.0, 3))
    assert tracker.ignored_levels == 1


def test_levels_of_a_finished_day_are_late(calendar: TradingCalendar) -> None:
    tracker = OhlcTracker(2, calendar)
    tracker.update(level_columns(DAY_ONE))
    before = tracker.finish_day(FRIDAY)
    tracker.update(level_columns([(hkt(FRIDAY, "16:06"), 0, 1.0), *DAY_TWO]))
    assert tracker.late_levels == 1
    assert tracker.snapshot(MONDAY).close.tolist() == [97.0, before.close[1]]
    with pytest.raises(ValueError, match="already finished"):
        tracker.finish_day(FRIDAY)


def test_finish_day_checks_order_and_calendar(calendar: TradingCalendar) -> None:
    tracker = OhlcTracker(2, calendar)
    tracker.update(level_columns(DAY_ONE + DAY_TWO))
    with pytest.raises(ValueError, match="not a trading day"):
        tracker.finish_day(SATURDAY)
    with pytest.raises(ValueError, match="finish 2026-11-20 before 2026-11-23"):
        tracker.finish_day(MONDAY)
    with pytest.raises(ValueError, match="out of range"):
        tracker.update(level_columns([(hkt(MONDAY, "10:00"), 2, 1.0)]))
    with pytest.raises(ValueError, match="2 elements"):
        OhlcTracker(2, calendar, initial_levels=[1.0])


def test_records_name_the_indices(calendar: TradingCalendar) -> None:
    tracker = OhlcTracker(2, calendar)
    tracker.update(level_columns(DAY_ONE))
    records = tracker.finish_day(FRIDAY).records(("HSI", "HSCEI"))
    assert records[0] == {
        "date": FRIDAY,
        "index": "HSI",
        "open": 101.0,
        "high": 110.0,
        "low": 95.0,
        "close": 99.0,
        "count": 5,
    }
    assert records[1]["index"] == "HSCEI"


# -- random streams: batch-split invariance and a plain-Python reference -----------------------

TRADING = {Phase.PRE_OPENING, Phase.MORNING, Phase.AFTERNOON, Phase.CLOSING_AUCTION}
CONTINUOUS = {Phase.MORNING, Phase.AFTERNOON}


def reference_bars(
    calendar: TradingCalendar,
    stream: LevelColumns,
    days: list[int],
    n_indices: int,
    initial: list[float],
) -> dict[tuple[int, int], tuple[float, float, float, float, int]]:
    """Bars by a loop over levels, one (day, index) at a time."""
    carried = list(initial)
    bars = {}
    phase = [Phase(p) for p in calendar.phase(stream.ts_event).tolist()]
    day = calendar.trading_day(stream.ts_event).tolist()
    for d in days:
        for k in range(n_indices):
            rows = [
                (p, lv)
                for p, dd, ix, lv in zip(
                    phase, day, stream.index.tolist(), stream.level.tolist(), strict=True
                )
                if dd == d and ix == k and p in TRADING
            ]
            values = [lv for _, lv in rows]
            opens = [lv for p, lv in rows if p in CONTINUOUS]
            if values:
                carried[k] = values[-1]
            bars[d, k] = (
                opens[0] if opens else math.nan,
                max(values) if values else math.nan,
                min(values) if values else math.nan,
                carried[k],
                len(values),
            )
    return bars


def random_stream(
    rng: np.random.Generator, days: list[int], closed_days: list[int], n_indices: int
) -> LevelColumns:
    """Levels between 08:00 and 17:00 HKT of random days, a tenth on a phase boundary."""
    ns_minute = 60 * 10**9
    size = 6_000
    day = rng.choice(np.array(days + closed_days), size=size)
    minute = np.where(
        rng.random(size) < 0.1,
        rng.choice(np.array([540, 570, 720, 730, 780, 960, 970]), size=size),
        rng.integers(8 * 60, 17 * 60, size=size),
    )
    ts = day * 1440 * ns_minute + (minute - 8 * 60) * ns_minute
    ts += np.where(rng.random(size) < 0.5, 0, rng.integers(0, ns_minute, size=size))
    ts = np.sort(ts)
    return LevelColumns(
        ts_event=ts.astype(np.int64),
        index=rng.integers(0, n_indices, size=size).astype(np.int32),
        level=np.round(rng.uniform(900.0, 1100.0, size=size), 2),
        seq=np.arange(size, dtype=np.int64),
        security=np.zeros(size, dtype=np.int64),
    )


def feed(tracker: OhlcTracker, stream: LevelColumns, cuts: list[int]) -> None:
    bounds = [0, *cuts, len(stream)]
    for lo, hi in itertools.pairwise(bounds):
        tracker.update(stream.take(np.arange(lo, hi)))


def test_batch_split_invariance_and_reference(rng: np.random.Generator) -> None:
    print(f"seed {SEED}")
    calendar = TradingCalendar(holidays=["2026-11-25"], half_days=["2026-11-24"])
    days = [day_number(d) for d in ("2026-11-20", "2026-11-23", "2026-11-24", "2026-11-26")]
    n = 4
    initial = [1000.0, 1001.0, 1002.0, 1003.0]
    closed = [day_number("2026-11-22"), day_number("2026-11-25")]  # a Sunday, the holiday
    stream = random_stream(rng, days, closed, n)
    expected = reference_bars(calendar, stream, days, n, initial)

    splits = [[], [1, 2, 3, 4000], sorted(rng.choice(len(stream), 40, replace=False).tolist())]
    splits.append(list(range(1, len(stream))))  # one level per batch
    results = []
    for cuts in splits:
        tracker = OhlcTracker(n, calendar, initial_levels=initial)
        feed(tracker, stream, cuts)
        results.append(OhlcBars_concat([tracker.finish_day(d) for d in days]))
        assert tracker.ignored_levels == sum(
            1 for p in calendar.phase(stream.ts_event).tolist() if Phase(p) not in TRADING
        )
    first = results[0]
    for other in results[1:]:
        for name in ("day", "index", "open", "high", "low", "close", "count", "close_ts"):
            assert np.array_equal(getattr(first, name), getattr(other, name), equal_nan=True), name
    got = {
        (d, k): (o, h, lo, c, cnt)
        for d, k, o, h, lo, c, cnt in zip(
            first.day.tolist(),
            first.index.tolist(),
            first.open.tolist(),
            first.high.tolist(),
            first.low.tolist(),
            first.close.tolist(),
            first.count.tolist(),
            strict=True,
        )
    }
    assert got.keys() == expected.keys()
    for key, want in expected.items():
        assert np.allclose(got[key], want, rtol=0, atol=0, equal_nan=True), (key, got[key], want)
    # the stream exercised both kinds of level: counted and ignored
    assert 0 < int(first.count.sum()) < len(stream)
    assert np.all(first.count > 0)


def OhlcBars_concat(parts: list[OhlcBars]) -> OhlcBars:
    return OhlcBars(
        *(
            np.concatenate([getattr(p, name) for p in parts])
            for name in OhlcBars.__dataclass_fields__
        )
    )
