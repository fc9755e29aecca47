"""The HKEX trading calendar: trading phases of event timestamps, vectorised.

Hong Kong time (Asia/Hong_Kong) is UTC+8 all year (no daylight saving), so the local date and
time of day follow from integer arithmetic on nanoseconds since the epoch. A full trading day:

=====================  ===============  =====================
phase                  HKT              ``Phase``
=====================  ===============  =====================
pre-opening session    09:00 - 09:30    ``PRE_OPENING``
morning session        09:30 - 12:00    ``MORNING``
lunch break            12:00 - 13:00    ``LUNCH``
afternoon session      13:00 - 16:00    ``AFTERNOON``
closing auction        16:00 - 16:10    ``CLOSING_AUCTION``
otherwise              -                ``CLOSED``
=====================  ===============  =====================

Every interval includes its start and excludes its end (09:30:00 is ``MORNING``, 16:10:00 is
``CLOSED``). A half day has the morning session only, the closing auction runs 12:00 - 12:10.
Weekends and holidays are closed all day. No holiday table is built in: the caller passes the
exchange's holidays and half days (constructor arguments or ``TradingCalendar.from_csv``).
Unscheduled closures (typhoon signal 8, black rainstorm) are not modelled.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import date, timedelta
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray

from engine.core.errors import ReferenceDataError
from engine.refdata.reference_text import read_reference_text, reference_rows

NS_PER_SECOND = 1_000_000_000
NS_PER_MINUTE = 60 * NS_PER_SECOND
NS_PER_HOUR = 60 * NS_PER_MINUTE
NS_PER_DAY = 24 * NS_PER_HOUR
HKT_OFFSET_NS = 8 * NS_PER_HOUR
"""Hong Kong time minus UTC, in nanoseconds."""

_EPOCH = date(1970, 1, 1)
_EPOCH_WEEKDAY = _EPOCH.weekday()  # Thursday = 3, Monday = 0


class Phase(enum.IntEnum):
    """Trading phase of a timestamp; the value is the ``uint8`` code ``phase()`` returns."""

    CLOSED = 0
    PRE_OPENING = 1
    MORNING = 2
    LUNCH = 3
    AFTERNOON = 4
    CLOSING_AUCTION = 5

    @property
    def label(self) -> str:
        """Lower-case name used in reports."""
        return self.name.lower()


TRADING_PHASES = (Phase.PRE_OPENING, Phase.MORNING, Phase.AFTERNOON, Phase.CLOSING_AUCTION)
"""Phases in which prices form: the auctions and continuous trading (not lunch, not closed)."""
CONTINUOUS_PHASES = (Phase.MORNING, Phase.AFTERNOON)
"""The continuous trading sessions."""

_IS_TRADING = np.zeros(len(Phase), dtype=bool)
_IS_TRADING[list(TRADING_PHASES)] = True
_IS_CONTINUOUS = np.zeros(len(Phase), dtype=bool)
_IS_CONTINUOUS[list(CONTINUOUS_PHASES)] = True


def _hm(hours: int, minutes: int) -> int:
    return hours * NS_PER_HOUR + minutes * NS_PER_MINUTE


PRE_OPENING_START = _hm(9, 0)
MORNING_OPEN = _hm(9, 30)
MORNING_CLOSE = _hm(12, 0)
AFTERNOON_OPEN = _hm(13, 0)
AFTERNOON_CLOSE = _hm(16, 0)
CLOSING_AUCTION_LENGTH = _hm(0, 10)


def _schedule(*starts: tuple[int, Phase]) -> tuple[NDArray[np.int64], NDArray[np.uint8]]:
    """Phase start times (ns after local midnight) and the lookup table of a kind of day.

    ``phase = table[searchsorted(bounds, time_of_day, side="right")]``.
    """
    bounds = np.array([start for start, _ in starts], dtype=np.int64)
    table = np.array([Phase.CLOSED, *(phase for _, phase in starts)], dtype=np.uint8)
    return bounds, table


_FULL_BOUNDS, _FULL_TABLE = _schedule(
    (PRE_OPENING_START, Phase.PRE_OPENING),
    (MORNING_OPEN, Phase.MORNING),
    (MORNING_CLOSE, Phase.LUNCH),
    (AFTERNOON_OPEN, Phase.AFTERNOON),
    (AFTERNOON_CLOSE, Phase.CLOSING_AUCTION),
    (AFTERNOON_CLOSE + CLOSING_AUCTION_LENGTH, Phase.CLOSED),
)
_HALF_BOUNDS, _HALF_TABLE = _schedule(
    (PRE_OPENING_START, Phase.PRE_OPENING),
    (MORNING_OPEN, Phase.MORNING),
    (MORNING_CLOSE, Phase.CLOSING_AUCTION),
    (MORNING_CLOSE + CLOSING_AUCTION_LENGTH, Phase.CLOSED),
)

DayLike = date | str | int
"""A calendar day: a ``date``, an ISO ``YYYY-MM-DD`` string or days since 1970-01-01."""


def day_number(day: DayLike) -> int:
    """Days since 1970-01-01 of ``day`` (a ``date``, ``"YYYY-MM-DD"`` or already a number).

    Raises
    ------
    ValueError
        On a string that is not an ISO date.
    TypeError
        On a bool.
    """
    if isinstance(day, bool):
        raise TypeError("a day is a date, an ISO string or an int, not a bool")
    if isinstance(day, int | np.integer):
        return int(day)
    if isinstance(day, str):
        day = date.fromisoformat(day.strip())
    return (day - _EPOCH).days


def day_date(day: int) -> date:
    """The ``date`` of a day number (inverse of ``day_number``)."""
    return _EPOCH + timedelta(days=int(day))


def _day_and_time(ts_ns: ArrayLike) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Hong Kong date (days since 1970-01-01) and time of day (ns) of each timestamp."""
    day, time_of_day = np.divmod(np.asarray(ts_ns, dtype=np.int64) + HKT_OFFSET_NS, NS_PER_DAY)
    return day, time_of_day


def is_trading_phase(phase: NDArray[np.uint8]) -> NDArray[np.bool_]:
    """True where a ``Phase`` code is one of ``TRADING_PHASES``."""
    result: NDArray[np.bool_] = _IS_TRADING[phase]
    return result


def is_continuous_phase(phase: NDArray[np.uint8]) -> NDArray[np.bool_]:
    """True where a ``Phase`` code is one of ``CONTINUOUS_PHASES``."""
    result: NDArray[np.bool_] = _IS_CONTINUOUS[phase]
    return result


class TradingCalendar:
    """HKEX trading phases and days in Hong Kong time, vectorised over timestamp arrays.

    Parameters
    ----------
    holidays : iterable of date, str or int, optional
        Exchange holidays falling on weekdays (closed all day).
    half_days : iterable of date, str or int, optional
        Days with the morning session only (closing auction 12:00 - 12:10), e.g. the eves of
        Christmas, New Year and Lunar New Year.

    Raises
    ------
    ValueError
        When a day is both a holiday and a half day.

    Examples
    --------
    Illustrative dates; take the real ones from the exchange's circular for the year:

    >>> calendar = TradingCalendar(
    ...     holidays=["2026-01-01", "2026-02-17", "2026-02-18", "2026-02-19"],
    ...     half_days=["2026-02-16", "2026-12-24", "2026-12-31"],
    ... )
    >>> Phase(calendar.phase(np.array([1771205400_000000000]))[0]).name  # 2026-02-16 09:30 HKT
    'MORNING'

    The same as a file for ``TradingCalendar.from_csv``::

        date,kind
        2026-01-01,holiday
        2026-02-16,half_day
    """

    def __init__(self, holidays: Iterable[DayLike] = (), half_days: Iterable[DayLike] = ()) -> None:
        self._holidays = np.unique(np.array([day_number(d) for d in holidays], dtype=np.int64))
        self._half_days = np.unique(np.array([day_number(d) for d in half_days], dtype=np.int64))
        both = np.intersect1d(self._holidays, self._half_days)
        if both.size:
            raise ValueError(f"{day_date(int(both[0]))} is both a holiday and a half day")

    @classmethod
    def from_csv(cls, path: str | Path) -> TradingCalendar:
        """A calendar from a CSV file with header ``date,kind``.

        ``date`` is ``YYYY-MM-DD`` (Hong Kong date), ``kind`` is ``holiday`` or ``half_day``;
        blank lines and lines starting with ``#`` are skipped.

        Raises
        ------
        ReferenceDataError
            Naming the file and line of a bad row.
        """
        days = _read_calendar_csv(Path(path))
        return cls(
            [day for day, kind in days if kind == "holiday"],
            [day for day, kind in days if kind == "half_day"],
        )

    @property
    def holidays(self) -> tuple[date, ...]:
        """The configured holidays, sorted."""
        return tuple(day_date(d) for d in self._holidays.tolist())

    @property
    def half_days(self) -> tuple[date, ...]:
        """The configured half days, sorted."""
        return tuple(day_date(d) for d in self._half_days.tolist())

    # -- per timestamp, vectorised ------------------------------------------------------------

    def trading_day(self, ts_ns: ArrayLike) -> NDArray[np.int64]:
        """Hong Kong calendar date of each timestamp, as days since 1970-01-01.

        This is the local date whatever the phase (a Saturday stays a Saturday); use
        ``is_trading_days`` to know whether the exchange opens on it.

        Parameters
        ----------
        ts_ns : array_like of int64
            Integer nanoseconds since the epoch (UTC).

        Returns
        -------
        ndarray of int64
            Days since 1970-01-01 of the Hong Kong date, one per timestamp.
        """
        day, _ = _day_and_time(ts_ns)
        return day

    def phase(self, ts_ns: ArrayLike) -> NDArray[np.uint8]:
        """``Phase`` code of each timestamp.

        Parameters
        ----------
        ts_ns : array_like of int64
            Integer nanoseconds since the epoch (UTC).

        Returns
        -------
        ndarray of uint8
            One ``Phase`` value per timestamp.
        """
        day, time_of_day = _day_and_time(ts_ns)
        phase = _FULL_TABLE[np.searchsorted(_FULL_BOUNDS, time_of_day, side="right")]
        half = np.isin(day, self._half_days)
        if half.any():
            half_phase = _HALF_TABLE[np.searchsorted(_HALF_BOUNDS, time_of_day, side="right")]
            phase = np.where(half, half_phase, phase)
        result: NDArray[np.uint8] = np.where(self.is_trading_days(day), phase, Phase.CLOSED)
        return result.astype(np.uint8, copy=False)

    def is_trading(self, ts_ns: ArrayLike) -> NDArray[np.bool_]:
        """True where ``phase(ts_ns)`` is a trading phase: an auction or continuous trading.

        Parameters
        ----------
        ts_ns : array_like of int64
            Integer nanoseconds since the epoch (UTC).
        """
        return is_trading_phase(self.phase(ts_ns))

    # -- per day ------------------------------------------------------------------------------

    def is_trading_days(self, days: ArrayLike) -> NDArray[np.bool_]:
        """True for days (array of days since 1970-01-01) that are neither weekend nor holiday."""
        day = np.asarray(days, dtype=np.int64)
        weekday = (day + _EPOCH_WEEKDAY) % 7
        result: NDArray[np.bool_] = (weekday < 5) & ~np.isin(day, self._holidays)
        return result

    def is_trading_day(self, day: DayLike) -> bool:
        """Whether the exchange trades on ``day``."""
        return bool(self.is_trading_days(np.array([day_number(day)]))[0])

    def is_half_day(self, day: DayLike) -> bool:
        """Whether ``day`` is a configured half day (morning session only)."""
        return bool(np.isin(day_number(day), self._half_days))

    def next_trading_day(self, day: DayLike) -> int:
        """The first trading day strictly after ``day``, as days since 1970-01-01."""
        candidate = day_number(day) + 1
        while not self.is_trading_day(candidate):
            candidate += 1
        return candidate

    def session_bounds(self, day: DayLike) -> tuple[int, int]:
        """Start and end of continuous trading on a trading day, ns since the epoch (UTC).

        Parameters
        ----------
        day : date, str or int
            A trading day (``date``, ``"YYYY-MM-DD"`` or days since 1970-01-01).

        Returns
        -------
        open_ns, close_ns : int
            09:30 HKT, and 16:00 HKT (12:00 on a half day) when the closing auction starts.

        Raises
        ------
        ValueError
            When ``day`` is a weekend day or a holiday.
        """
        number = self._require_trading_day(day)
        midnight = number * NS_PER_DAY - HKT_OFFSET_NS
        close = MORNING_CLOSE if self.is_half_day(number) else AFTERNOON_CLOSE
        return midnight + MORNING_OPEN, midnight + close

    def closing_auction_end(self, day: DayLike) -> int:
        """When the closing auction of a trading day ends (16:10, half day 12:10 HKT), in ns.

        The first instant of ``Phase.CLOSED`` after the auction: the day's closing prices and
        levels are final then, and the end-of-day roll may run.

        Parameters
        ----------
        day : date, str or int
            A trading day.

        Returns
        -------
        int
            Nanoseconds since the epoch (UTC).

        Raises
        ------
        ValueError
            When ``day`` is a weekend day or a holiday.
        """
        return self.session_bounds(day)[1] + CLOSING_AUCTION_LENGTH

    def _require_trading_day(self, day: DayLike) -> int:
        number = day_number(day)
        if not self.is_trading_day(number):
            raise ValueError(f"{day_date(number)} is not a trading day")
        return number


def _read_calendar_csv(path: Path) -> list[tuple[int, str]]:
    """(day number, kind) per row of a ``date,kind`` file."""
    reader = reference_rows(path, read_reference_text(path))
    first = next(reader, None)
    if first is None or [c.strip() for c in first[1][:2]] != ["date", "kind"]:
        raise ReferenceDataError(str(path), 1, "header must be date,kind")
    rows: list[tuple[int, str]] = []
    seen: dict[int, int] = {}
    for line, values in reader:
        cells = [value.strip() for value in values]
        if not any(cells) or cells[0].startswith("#"):
            continue
        if len(cells) > len(first[1]):
            raise ReferenceDataError(
                str(path), line, f"expected {len(first[1])} columns, got {len(cells)}"
            )
        if len(cells) < 2 or cells[1] not in ("holiday", "half_day"):
            kind = cells[1] if len(cells) > 1 else ""
            raise ReferenceDataError(
                str(path), line, f"kind must be holiday or half_day, got {kind[:40]!r}"
            )
        try:
            day = day_number(cells[0])
        except ValueError:
            raise ReferenceDataError(
                str(path), line, f"date must be YYYY-MM-DD, got {cells[0][:40]!r}"
            ) from None
        if day in seen:
            raise ReferenceDataError(
                str(path), line, f"{cells[0]} is listed twice (first on line {seen[day]})"
            )
        seen[day] = line
        rows.append((day, cells[1]))
    return rows
