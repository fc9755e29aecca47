"""The event clock of the embedded run: simulated trading time laid onto HKEX trading hours.

The market simulator runs on a continuous clock of *trading* time. ``MarketClock`` lays it onto
the calendar's trading phases (09:00 - 12:00 and 13:00 - 16:10 HKT on a full day, 09:00 - 12:10
on a half day), skipping the lunch break, nights, weekends and holidays, so every simulated tick
falls inside a trading phase and the analytics' boundaries pass as on a real trading day.

- **live**: when the wall clock is inside a trading phase, event time is wall time; trading
  time stops while the market is closed (no ticks over lunch) and resumes with it;
- **simulated**: outside trading hours no boundary would ever pass on wall time, so the clock
  starts at the most recent session open (09:30 HKT of the last trading day that has opened)
  and trading time passes with wall time: the board shows a live-looking trading day, said
  to be simulated.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from engine.analytics.schedule import trading_segments
from engine.calendar.sessions import (
    HKT_OFFSET_NS,
    MORNING_OPEN,
    NS_PER_DAY,
    TradingCalendar,
)


def last_session_open(calendar: TradingCalendar, wall_ns: int) -> int:
    """09:30 HKT of the last trading day whose continuous session has opened by ``wall_ns``."""
    day = int(calendar.trading_day(np.array([wall_ns]))[0])
    while True:
        opens = day * NS_PER_DAY - HKT_OFFSET_NS + MORNING_OPEN
        if calendar.is_trading_day(day) and opens <= wall_ns:
            return opens
        day -= 1


class MarketClock:
    """Trading time since ``start_ns`` <-> event time, through the calendar's trading phases.

    Parameters
    ----------
    calendar : TradingCalendar
        Trading days, holidays and half days.
    start_ns : int
        Event time of trading time 0; must be inside a trading phase.
    simulated : bool
        Whether trading time passes with wall time from a past session open (simulated) or
        event time is wall time (live).
    """

    def __init__(self, calendar: TradingCalendar, start_ns: int, *, simulated: bool) -> None:
        if not calendar.is_trading(np.array([start_ns]))[0]:
            raise ValueError("a market clock starts inside a trading phase")
        self.calendar = calendar
        self.start_ns = start_ns
        self.simulated = simulated
        # The trading spans from the start on, and the trading time done at the end of each.
        self._starts: list[int] = []
        self._ends: list[int] = []
        self._done: list[int] = []
        self._add_day(int(calendar.trading_day(np.array([start_ns]))[0]))

    @classmethod
    def for_wall_time(cls, calendar: TradingCalendar, wall_ns: int) -> MarketClock:
        """Live when ``wall_ns`` is inside a trading phase, else simulated from the last open."""
        if calendar.is_trading(np.array([wall_ns]))[0]:
            return cls(calendar, wall_ns, simulated=False)
        return cls(calendar, last_session_open(calendar, wall_ns), simulated=True)

    def trading_elapsed(self, wall_elapsed_ns: int) -> int:
        """Trading time reached ``wall_elapsed_ns`` of wall time after the start."""
        if self.simulated:
            return wall_elapsed_ns
        now = self.start_ns + wall_elapsed_ns
        self._cover(now)
        starts, ends = np.array(self._starts), np.array(self._ends)
        return int(np.clip(np.minimum(ends, now) - starts, 0, None).sum())

    def event_times(self, trading_ns: NDArray[np.int64]) -> NDArray[np.int64]:
        """Event time of each trading time (ns since the start; the end of a trading span is
        the start of the next one)."""
        if trading_ns.size == 0:
            return trading_ns
        self._cover_trading(int(trading_ns.max()))
        done = np.array(self._done, dtype=np.int64)
        span = np.searchsorted(done, trading_ns, side="right")
        before = np.concatenate([[0], done])[span]
        result: NDArray[np.int64] = np.array(self._starts, dtype=np.int64)[span] + (
            trading_ns - before
        )
        return result

    def event_time_at(self, trading_ns: int) -> int:
        """Event time reached at trading time ``trading_ns``: the end of a trading span stays
        there (12:00:00 closes the morning; the next tick comes at 13:00 or later)."""
        self._cover_trading(trading_ns)
        span = int(np.searchsorted(np.array(self._done), trading_ns, side="left"))
        before = self._done[span - 1] if span else 0
        return self._starts[span] + trading_ns - before

    def _cover_trading(self, trading_ns: int) -> None:
        while self._done[-1] <= trading_ns:
            self._add_day(self.calendar.next_trading_day(self._last_day()))

    def _cover(self, event_ns: int) -> None:
        while self._ends[-1] <= event_ns:
            self._add_day(self.calendar.next_trading_day(self._last_day()))

    def _last_day(self) -> int:
        return int(self.calendar.trading_day(np.array([self._ends[-1] - 1]))[0])

    def _add_day(self, day: int) -> None:
        for opens, end in trading_segments(self.calendar, day):
            start = max(opens, self.start_ns)
            if end <= start:
                continue
            self._starts.append(start)
            self._ends.append(end)
            self._done.append((self._done[-1] if self._done else 0) + end - start)
