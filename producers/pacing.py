"""Real-time pacing for the Kafka producers and consumers of the command line.

- ``continuous_session``/``describe_hkt``: when HKEX continuous trading (09:30-12:00, 13:00-16:00
  Hong Kong time; morning only on half days; holidays from
  ``engine.calendar.sessions.TradingCalendar``)
  next runs, for ``tickindex simulate --session-aware``;
- ``ReplayPacer``: cuts a batch of historical ticks into a few time slices and says when each
  slice is due, so a replay at N x speed sleeps once per slice, never once per tick;
- ``StopControl``: ends a real-time loop on SIGINT/SIGTERM or after a wall-time budget, with
  sleeps that wake up at once when asked to stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

from engine.calendar.sessions import (
    AFTERNOON_CLOSE,
    AFTERNOON_OPEN,
    HKT_OFFSET_NS,
    MORNING_CLOSE,
    MORNING_OPEN,
    NS_PER_DAY,
    NS_PER_SECOND,
    TradingCalendar,
)

T = TypeVar("T")


def continuous_session(calendar: TradingCalendar, t_ns: int) -> tuple[int, int]:
    """The first continuous trading session (morning or afternoon) that ends after ``t_ns``.

    Parameters
    ----------
    calendar : TradingCalendar
        Trading days, holidays and half days.
    t_ns : int
        A moment, integer nanoseconds since the epoch.

    Returns
    -------
    (int, int)
        The session's open and close, nanoseconds since the epoch; the market is open at
        ``t_ns`` exactly when ``open <= t_ns``.
    """
    day = int(calendar.trading_day([t_ns])[0])
    if not calendar.is_trading_day(day):
        day = calendar.next_trading_day(day)
    while True:
        midnight = day * NS_PER_DAY - HKT_OFFSET_NS
        sessions = [(MORNING_OPEN, MORNING_CLOSE)]
        if not calendar.is_half_day(day):
            sessions.append((AFTERNOON_OPEN, AFTERNOON_CLOSE))
        for open_at, close_at in sessions:
            if midnight + close_at > t_ns:
                return midnight + open_at, midnight + close_at
        day = calendar.next_trading_day(day)


def describe_hkt(t_ns: int) -> str:
    """``t_ns`` in Hong Kong time, e.g. ``2026-11-23 09:30:00 HKT``."""
    moment = datetime.fromtimestamp((t_ns + HKT_OFFSET_NS) // NS_PER_SECOND, tz=UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S HKT")


@dataclass(frozen=True)
class Slice:
    """Rows ``start:stop`` of a batch, due at wall time ``due`` (seconds on the pacer's clock)."""

    start: int
    stop: int
    due: float


class ReplayPacer:
    """Reproduces the event-time gaps of historical ticks at ``speed`` x, slice by slice.

    The first tick is due when the pacer sees it; a tick at event time ``t`` is due
    ``(t - first) / speed`` seconds later. Ticks are grouped into slices covering ``window_s``
    of wall time each, and a slice is due with its last tick, so no tick leaves before its time
    and none is more than ``window_s`` late (unless publishing itself falls behind). Event time
    is the running maximum of ``ts_event``, so a tick stamped earlier than its predecessor
    travels with it.

    Parameters
    ----------
    speed : float
        Event seconds per wall second (1 = the original pace).
    window_s : float
        Wall time covered by one slice, seconds.
    clock : callable
        Monotonic clock in seconds; also the ``clock`` attribute, the time base of ``due``.
    """

    def __init__(
        self, speed: float, *, window_s: float = 0.05, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be positive, got {speed}")
        self.speed = speed
        self.window_ns = max(1, round(window_s * speed * NS_PER_SECOND))
        self.clock = clock
        self._first_event: int | None = None
        self._first_wall = 0.0
        self._event_high: int | None = None

    def slices(self, ts_event: NDArray[np.int64]) -> list[Slice]:
        """Cut one batch (in publishing order) into slices, each with its due time.

        Parameters
        ----------
        ts_event : ndarray of int64
            Event times of the batch, nanoseconds.

        Returns
        -------
        list of Slice
            Consecutive slices covering the batch; at most one per ``window_s`` of wall time.
        """
        if ts_event.size == 0:
            return []
        if self._first_event is None:
            self._first_event = int(ts_event[0])
            self._event_high = self._first_event
            self._first_wall = self.clock()
        assert self._event_high is not None
        pace = np.maximum.accumulate(np.maximum(ts_event, self._event_high))
        self._event_high = int(pace[-1])
        bucket = (pace - self._first_event) // self.window_ns
        stops = [*(np.flatnonzero(np.diff(bucket)) + 1).tolist(), int(pace.size)]
        out = []
        start = 0
        for stop in stops:
            offset_s = (int(pace[stop - 1]) - self._first_event) / NS_PER_SECOND / self.speed
            out.append(Slice(start, stop, self._first_wall + offset_s))
            start = stop
        return out


class StopControl:
    """Ends a real-time loop on SIGINT/SIGTERM or once ``duration_s`` of wall time has passed.

    Parameters
    ----------
    duration_s : float, optional
        Wall-time budget from construction; None for no limit.
    clock : callable
        Monotonic clock in seconds; also the ``clock`` attribute.
    """

    def __init__(
        self, duration_s: float | None = None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.clock = clock
        self.deadline = None if duration_s is None else clock() + duration_s
        self.interrupted = False
        self._event: asyncio.Event | None = None
        self._signals: list[int] = []

    @property
    def event(self) -> asyncio.Event:
        """Set when a stop was requested (created in the running event loop on first use)."""
        if self._event is None:
            self._event = asyncio.Event()
        return self._event

    def install_signal_handlers(self) -> None:
        """Make SIGINT and SIGTERM request a stop (main thread of a Unix event loop only)."""
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(signum, self.request_stop)
                self._signals.append(signum)

    def remove_signal_handlers(self) -> None:
        """Undo ``install_signal_handlers``."""
        loop = asyncio.get_running_loop()
        for signum in self._signals:
            loop.remove_signal_handler(signum)
        self._signals.clear()

    def request_stop(self) -> None:
        """Ask the loop to stop (what the signal handlers call)."""
        self.interrupted = True
        self.event.set()

    def remaining(self) -> float | None:
        """Seconds left of the budget (0 when spent), None without a budget."""
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - self.clock())

    @property
    def stopped(self) -> bool:
        """Whether a stop was requested or the budget is spent."""
        return self.event.is_set() or self.remaining() == 0.0

    async def sleep(self, seconds: float) -> bool:
        """Sleep ``seconds`` or until stopped, whichever comes first.

        Returns
        -------
        bool
            True when the loop should stop.
        """
        left = self.remaining()
        timeout = max(0.0, seconds if left is None else min(seconds, left))
        if self.event.is_set() or timeout <= 0:
            await asyncio.sleep(0)  # let signal handlers and other tasks run
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.event.wait(), timeout)
        return self.stopped

    async def guard(self, awaitable: Awaitable[T]) -> T | None:
        """Await ``awaitable`` unless a stop comes first, which cancels it.

        Returns
        -------
        object or None
            Its result, or None when it was cancelled by the stop.
        """
        task = asyncio.ensure_future(awaitable)
        stopping = asyncio.ensure_future(self._stopped())
        try:
            await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            return None
        return task.result()

    async def _stopped(self) -> None:
        while not await self.sleep(3600.0):
            pass
