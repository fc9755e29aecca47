"""When analytics are taken: interval boundaries, sample grid points and session closes.

Three kinds of boundary, all in event time (int ns since the epoch):

- **interval** boundaries: multiples of ``interval_ns`` (default 1 s);
- **sample** grid points: multiples of ``sample_ns`` (default 60 s), where returns are sampled;
- the **session close** of each trading day, ``TradingCalendar.closing_auction_end`` (16:10
  HKT, 12:10 on a half day), whose figures are flagged final.

Interval and sample boundaries exist only inside trading phases, in this precise sense: a
boundary ``b`` exists when the instant just before it, ``b - 1``, is in a trading phase, i.e.
when the interval it ends was traded. On a full day the 60 s grid is 09:01 ... 12:00 and
13:01 ... 16:10 (370 points): 12:00 ends the morning session, 13:00 would only repeat it.

A figure at boundary ``t`` describes the state after every tick with ``ts_event < t`` and none
after. Ticks may arrive slightly out of order (across securities), so boundaries are crossed in
**arrival order**: a cut is made just before the first tick (in arrival order) whose ``ts_event``
is at or after the next boundary, and every boundary up to that tick's time passes there (a
gap in the feed passes many at once). A tick arriving later with an earlier time is applied
after the cut and counts in the next figures. This is the rule ``IndexPipeline.process``
follows for maintenance events, and it does not depend on how the stream is batched.

At one cut, sample grid points do not collapse (each is a sample, all with the state at the
cut); interval boundaries collapse to the last one passed (a quiet minute is one record, not
60); every close passed is kept. The integration takes the boundaries of a cut in time order
and, at one time, the sample first, then the figures, then the day roll of a close (16:10:00 is
a grid point, an interval boundary and the close: its sample belongs to the closing session).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import msgspec
import numpy as np
from numpy.typing import ArrayLike, NDArray

from engine.calendar.sessions import (
    AFTERNOON_OPEN,
    HKT_OFFSET_NS,
    MORNING_CLOSE,
    NS_PER_DAY,
    PRE_OPENING_START,
    TradingCalendar,
)

DEFAULT_INTERVAL_NS = 1_000_000_000
DEFAULT_SAMPLE_NS = 60_000_000_000


class BoundaryKind(enum.IntFlag):
    """What a boundary time is; one time can be several (16:10:00 is all three)."""

    INTERVAL = 1
    SAMPLE = 2
    CLOSE = 4


def trading_segments(calendar: TradingCalendar, day: int) -> list[tuple[int, int]]:
    """The trading time of a day as ``[start, end)`` spans in ns since the epoch.

    A full day is 09:00 - 12:00 (pre-opening and morning) and 13:00 - 16:10 (afternoon and
    closing auction); a half day 09:00 - 12:10; a weekend day or holiday has none. The end of
    the last span is ``closing_auction_end``.
    """
    if not calendar.is_trading_day(day):
        return []
    midnight = day * NS_PER_DAY - HKT_OFFSET_NS
    close = calendar.closing_auction_end(day)
    if calendar.is_half_day(day):
        return [(midnight + PRE_OPENING_START, close)]
    return [
        (midnight + PRE_OPENING_START, midnight + MORNING_CLOSE),
        (midnight + AFTERNOON_OPEN, close),
    ]


def grid_points(calendar: TradingCalendar, day: int, step_ns: int) -> NDArray[np.int64]:
    """Multiples of ``step_ns`` that are boundaries on ``day`` (``b - 1`` in trading time)."""
    parts = [_multiples(start, end, step_ns) for start, end in trading_segments(calendar, day)]
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)


def _multiples(low: int, high: int, step: int) -> NDArray[np.int64]:
    """Multiples of ``step`` in ``(low, high]``."""
    return np.arange((low // step + 1) * step, high + 1, step, dtype=np.int64)


@dataclass(frozen=True)
class Cut:
    """Boundaries passed before the tick at ``position`` of a batch.

    Attributes
    ----------
    position : int
        Ticks ``[previous cut, position)`` of the batch are applied before these boundaries.
    ts : ndarray of int64
        The boundary times passed, increasing, distinct.
    kind : ndarray of uint8
        ``BoundaryKind`` flags of each time; only the last interval boundary passed carries
        ``INTERVAL``.
    """

    position: int
    ts: NDArray[np.int64]
    kind: NDArray[np.uint8]

    def _of(self, kind: BoundaryKind) -> NDArray[np.int64]:
        selected: NDArray[np.int64] = self.ts[(self.kind & kind) != 0]
        return selected

    @property
    def samples(self) -> NDArray[np.int64]:
        """Grid points passed, in order (each one is a sample)."""
        return self._of(BoundaryKind.SAMPLE)

    @property
    def closes(self) -> NDArray[np.int64]:
        """Session closes passed (usually none or one; several after a feed gap of days)."""
        return self._of(BoundaryKind.CLOSE)

    @property
    def interval(self) -> int | None:
        """The last interval boundary passed, None when none did."""
        found = self._of(BoundaryKind.INTERVAL)
        return int(found[-1]) if found.size else None

    @property
    def final(self) -> bool:
        """Whether a session close passed."""
        return bool(self.closes.size)


class ScheduleState(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Where a schedule stands: every boundary at or before ``through`` has passed."""

    through: int | None


class AnalyticsSchedule:
    """Finds where tick batches are cut for analytics, and which boundaries pass at each cut.

    Parameters
    ----------
    calendar : TradingCalendar
        Trading days and phases.
    interval_ns : int
        Interval boundaries: multiples of this, in trading time.
    sample_ns : int
        Sample grid points: multiples of this, in trading time.
    start_ns : int, optional
        Boundaries at or before this time never pass; default: the first tick's time.

    Raises
    ------
    ValueError
        When an interval is not positive.
    """

    def __init__(
        self,
        calendar: TradingCalendar,
        interval_ns: int = DEFAULT_INTERVAL_NS,
        sample_ns: int = DEFAULT_SAMPLE_NS,
        *,
        start_ns: int | None = None,
    ) -> None:
        if interval_ns <= 0 or sample_ns <= 0:
            raise ValueError(f"intervals must be positive, got {interval_ns} and {sample_ns}")
        self.calendar = calendar
        self.interval_ns = int(interval_ns)
        self.sample_ns = int(sample_ns)
        self._through = start_ns
        self._segments: dict[int, list[tuple[int, int]]] = {}
        self._upcoming_after: int | None = None
        self._upcoming_at = 0

    @property
    def through(self) -> int | None:
        """Every boundary at or before this time has passed; None before the first tick."""
        return self._through

    def cuts(self, ts_event: ArrayLike) -> list[Cut]:
        """The cuts of one batch, in order, given its ticks' times in arrival order.

        Advances the schedule past them: call it once per batch, in stream order.

        Parameters
        ----------
        ts_event : array_like of int64
            Event times of the batch's ticks, in arrival order (not necessarily sorted).

        Returns
        -------
        list of Cut
            Increasing positions; empty when no boundary passes in this batch.
        """
        ts = np.asarray(ts_event, dtype=np.int64)
        if ts.size == 0:
            return []
        if self._through is None:
            self._through = int(ts[0])
        if int(ts.max()) < self._upcoming():
            return []  # the common case: a batch within one interval
        reached = np.maximum.accumulate(ts)
        found: list[Cut] = []
        while True:
            upcoming = self._upcoming()
            position = int(np.searchsorted(reached, upcoming, side="left"))
            if position == ts.size:
                return found
            found.append(self._pass(self._through, int(ts[position]), position))

    def advance_to(self, ts: int) -> Cut | None:
        """Pass every boundary at or before ``ts`` as if a tick at ``ts`` arrived (idle, end).

        Returns
        -------
        Cut or None
            ``position`` 0; None when no boundary passes.
        """
        if self._through is None:
            self._through = int(ts)
            return None
        if ts < self._next_boundary(self._through):
            return None
        return self._pass(self._through, int(ts), 0)

    def capture(self) -> ScheduleState:
        """The position of the schedule, for a checkpoint."""
        return ScheduleState(self._through)

    def restore(self, state: ScheduleState) -> None:
        """Resume from ``capture()``."""
        self._through = state.through

    # -- boundaries ------------------------------------------------------------------------

    def _day_segments(self, day: int) -> list[tuple[int, int]]:
        segments = self._segments.get(day)
        if segments is None:
            if len(self._segments) > 64:
                self._segments.clear()
            segments = self._segments[day] = trading_segments(self.calendar, day)
        return segments

    def next_boundary(self) -> int | None:
        """The first boundary after ``through``, None before the first tick (the idle advance
        of a quiet live feed asks it)."""
        return None if self._through is None else self._upcoming()

    def boundary_after(self, after: int) -> int:
        """The first boundary (interval, sample or close) strictly after ``after``."""
        return self._next_boundary(after)

    def _upcoming(self) -> int:
        """The next boundary after ``through`` (cached: it moves only when a cut passes)."""
        assert self._through is not None
        if self._upcoming_after != self._through:
            self._upcoming_at = self._next_boundary(self._through)
            self._upcoming_after = self._through
        return self._upcoming_at

    def _next_boundary(self, after: int) -> int:
        """The first boundary strictly after ``after``."""
        day = int(self.calendar.trading_day(np.array([after]))[0])
        while True:
            segments = self._day_segments(day)
            for number, (start, end) in enumerate(segments):
                if end <= after:
                    continue
                low = max(start, after)
                candidates = [
                    first
                    for step in (self.interval_ns, self.sample_ns)
                    if (first := (low // step + 1) * step) <= end
                ]
                if number == len(segments) - 1:
                    candidates.append(end)
                if candidates:
                    return min(candidates)
            day += 1

    def _pass(self, low: int, until: int, position: int) -> Cut:
        """The cut passing every boundary in ``(low, until]``; ``through`` moves to ``until``."""
        first_day, last_day = self.calendar.trading_day(np.array([low, until])).tolist()
        times: list[NDArray[np.int64]] = []
        kinds: list[NDArray[np.uint8]] = []
        last_interval = -1
        for day in range(int(first_day), int(last_day) + 1):
            segments = self._day_segments(day)
            for number, (start, end) in enumerate(segments):
                span_low, span_high = max(start, low), min(end, until)
                if span_high <= span_low:
                    continue
                samples = _multiples(span_low, span_high, self.sample_ns)
                times.append(samples)
                kinds.append(np.full(samples.size, BoundaryKind.SAMPLE, dtype=np.uint8))
                interval = span_high // self.interval_ns * self.interval_ns
                if interval > span_low:
                    last_interval = max(last_interval, interval)
                if number == len(segments) - 1 and low < end <= until:
                    times.append(np.array([end], dtype=np.int64))
                    kinds.append(np.array([BoundaryKind.CLOSE], dtype=np.uint8))
        if last_interval >= 0:
            times.append(np.array([last_interval], dtype=np.int64))
            kinds.append(np.array([BoundaryKind.INTERVAL], dtype=np.uint8))
        self._through = until
        return _merged_cut(position, times, kinds)


def _merged_cut(
    position: int, times: list[NDArray[np.int64]], kinds: list[NDArray[np.uint8]]
) -> Cut:
    """One row per distinct time, the kinds of equal times or-ed together."""
    if not times:
        return Cut(position, np.empty(0, dtype=np.int64), np.empty(0, dtype=np.uint8))
    ts = np.concatenate(times)
    kind = np.concatenate(kinds)
    unique, inverse = np.unique(ts, return_inverse=True)
    merged = np.zeros(unique.size, dtype=np.uint8)
    np.bitwise_or.at(merged, inverse, kind)
    return Cut(position, unique, merged)
