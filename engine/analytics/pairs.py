"""Pair analytics: relative strength of index A against index B, rolling beta and correlation.

For each configured pair (default: HSCI SmallCap vs HSI and HS TECH vs HSI), at each boundary:

- relative strength ``rs = 100 x (A / A_base) / (B / B_base)``. With ``base = "open"`` the base
  levels are the day's levels at the first boundary at or after the continuous session's open
  (09:30 HKT) where both levels are finite and positive: ``rs`` is 100 there, and NaN before it
  on that day (the pre-opening auction). With an ISO date, the base levels are that date's
  closes (``set_base_levels``: the analytics engine sets them from its close history as soon
  as that date has closed, or from a restored state); NaN while it has none. A level of A
  or B that is not finite and positive gives NaN.
  ``rs_change`` is the change (in rs points) since the previous boundary, ``rs_change_day``
  since the day's first finite ``rs`` at or after the open;
- rolling ``beta = cov(rA, rB) / var(rB)`` and ``corr`` of A's sampled log returns on B's over
  the last ``window`` paired returns: a sample where either return is NaN is skipped, the
  others fill a ring buffer per pair. Both are computed from the buffer in two passes (means,
  then centred sums), never from running sums that drift; NaN with fewer than 2 paired returns
  or when a variance is 0. They change only at samples, and are held between them.

Sampled returns come from the returns part (``SampledReturns.last_returns()``): one array per
grid sample, indexed by index id, NaN where an index has no return at that sample (the return
across the lunch break or overnight is one return like any other).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import msgspec
import numpy as np
from numpy.typing import NDArray

from engine.analytics.hedge import HedgeLines, hedge_lines
from engine.analytics.pair_buffers import PairBuffers, PairBufferState
from engine.calendar.sessions import TradingCalendar
from engine.core.columnar import Columnar


class PairConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One pair of indices, A measured against B.

    Attributes
    ----------
    name : str
        The pair's name (record key, and the ``<PAIR>`` of signal series).
    a, b : str
        Index codes of A (the sleeve) and B (the benchmark).
    base : str
        ``"open"`` (rebase at each session open) or an ISO date ``YYYY-MM-DD`` (rebase at that
        date's close).
    window : int
        Paired sampled returns in the rolling beta and correlation (at least 2).
    sleeve_notional : float or None
        HK$ long A for the hedge line; None: no hedge line.
    hedge_with : str
        Index whose futures hedge the sleeve (the HSI futures' multipliers apply); the beta used
        is A's on B, so neutral when this is B.
    """

    name: str
    a: str
    b: str
    base: str = "open"
    window: int = 120
    sleeve_notional: float | None = None
    hedge_with: str = "HSI"

    def __post_init__(self) -> None:
        if not self.name or "." in self.name:
            raise ValueError(f"pair name {self.name!r} must be non-empty without '.'")
        if self.a == self.b:
            raise ValueError(f"pair {self.name}: a and b are the same index {self.a}")
        if self.window < 2:
            raise ValueError(f"pair {self.name}: window must be at least 2, got {self.window}")
        if self.base != "open":
            try:
                date.fromisoformat(self.base)
            except ValueError:
                raise ValueError(
                    f"pair {self.name}: base must be 'open' or YYYY-MM-DD, got {self.base[:40]!r}"
                ) from None
        notional = self.sleeve_notional
        if notional is not None and not (0 < notional < float("inf")):
            raise ValueError(f"pair {self.name}: sleeve_notional must be positive and finite")


SMALLCAP_VS_HSI = PairConfig("SMALLCAP_VS_HSI", "HSCI_SC", "HSI")
HSTECH_VS_HSI = PairConfig("HSTECH_VS_HSI", "HSTECH", "HSI")
DEFAULT_PAIRS = (SMALLCAP_VS_HSI, HSTECH_VS_HSI)


class PairsConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The configured pairs (names unique)."""

    pairs: tuple[PairConfig, ...] = DEFAULT_PAIRS

    def __post_init__(self) -> None:
        names = [pair.name for pair in self.pairs]
        duplicated = sorted({name for name in names if names.count(name) > 1})
        if duplicated:
            raise ValueError(f"pair names must be unique: {', '.join(duplicated)}")


PAIR_FIELDS = ("rs", "rs_change", "rs_change_day", "beta", "corr")
"""Fields of a pair usable as signal series ``<PAIR>.<field>``."""


@dataclass(frozen=True)
class PairFigures(Columnar):
    """Pair analytics at one boundary, one row per configured pair (config order).

    Attributes
    ----------
    rs, rs_change, rs_change_day : ndarray of float64
        Relative strength and its changes (see the module docstring); NaN where undefined.
    beta, corr : ndarray of float64
        Rolling beta and correlation of A's returns on B's; NaN with < 2 paired returns.
    returns_in_window : ndarray of int64
        Paired returns in the rolling window.
    level_a, level_b, hedge_level : ndarray of float64
        Levels of A, B and the hedge index at the boundary.
    sleeve_notional : ndarray of float64
        Configured notional, NaN for a pair without one.
    names : tuple of str
        The pairs' names.
    """

    rs: NDArray[np.float64]
    rs_change: NDArray[np.float64]
    rs_change_day: NDArray[np.float64]
    beta: NDArray[np.float64]
    corr: NDArray[np.float64]
    returns_in_window: NDArray[np.int64]
    level_a: NDArray[np.float64]
    level_b: NDArray[np.float64]
    hedge_level: NDArray[np.float64]
    sleeve_notional: NDArray[np.float64]
    names: tuple[str, ...] = ()

    def hedge(self) -> HedgeLines:
        """The hedge line of each pair (``valid`` False without a notional, beta or level)."""
        return hedge_lines(self.beta, self.sleeve_notional, self.hedge_level)

    def series(self) -> dict[str, float]:
        """``<PAIR>.<field>`` -> value for every field of ``PAIR_FIELDS`` (signal inputs)."""
        return {
            f"{name}.{field}": float(getattr(self, field)[row])
            for row, name in enumerate(self.names)
            for field in PAIR_FIELDS
        }


class PairState(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Checkpoint of one pair: its definition, return buffer and bases (None: NaN)."""

    name: str
    a: str
    b: str
    base: str
    buffer: PairBufferState
    base_a: float | None
    base_b: float | None
    base_day: int
    day_rs: float | None
    day: int
    last_rs: float | None


class PairsState(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Checkpoint of ``PairAnalytics`` (JSON and MessagePack safe: no NaN)."""

    pairs: tuple[PairState, ...]


def _or_none(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


def _or_nan(value: float | None) -> float:
    return np.nan if value is None else value


class PairAnalytics:
    """Relative strength, rolling beta and correlation of configured pairs (module docstring).

    Parameters
    ----------
    pairs : sequence of PairConfig
        The pairs, in output order.
    index_ids : mapping of str to int
        Index id of each index code (e.g. ``{code: universe.index_id(code)}``).
    calendar : TradingCalendar
        Session opens of ``base = "open"`` pairs and of ``rs_change_day``.
    base_levels : mapping of str to (float, float), optional
        Pair name -> closes of A and B on the pair's base date (dated bases only).

    Raises
    ------
    KeyError
        When a pair names an index missing from ``index_ids``.
    """

    def __init__(
        self,
        pairs: Sequence[PairConfig],
        index_ids: Mapping[str, int],
        calendar: TradingCalendar,
        base_levels: Mapping[str, tuple[float, float]] | None = None,
    ) -> None:
        self._pairs = tuple(pairs)
        self._calendar = calendar
        self._a = np.array([index_ids[p.a] for p in self._pairs], dtype=np.intp)
        self._b = np.array([index_ids[p.b] for p in self._pairs], dtype=np.intp)
        self._hedge = np.array([index_ids[p.hedge_with] for p in self._pairs], dtype=np.intp)
        self._notional = np.array([_or_nan(p.sleeve_notional) for p in self._pairs])
        self._at_open = np.array([p.base == "open" for p in self._pairs], dtype=bool)
        self._buffers = PairBuffers([p.window for p in self._pairs])
        n = len(self._pairs)
        self._base_a = np.full(n, np.nan)
        self._base_b = np.full(n, np.nan)
        self._base_day = np.full(n, -1, dtype=np.int64)  # day of an "open" base
        self._day_rs = np.full(n, np.nan)  # rs at the day's open
        self._day = np.full(n, -1, dtype=np.int64)  # day of day_rs
        self._last_rs = np.full(n, np.nan)
        self._open_of: tuple[int, int] = (-1, 0)  # (day, its open in ns) cached
        for name, (close_a, close_b) in (base_levels or {}).items():
            self.set_base_levels(name, close_a, close_b)

    @property
    def pairs(self) -> tuple[PairConfig, ...]:
        """The configured pairs."""
        return self._pairs

    def set_base_levels(self, name: str, close_a: float, close_b: float) -> None:
        """Set the base-date closes of A and B of the dated pair ``name``.

        Closes that are not finite and positive leave the pair without a base (``rs`` NaN).

        Raises
        ------
        KeyError
            When no pair has that name.
        ValueError
            When the pair rebases at the open (its bases are taken from the stream).
        """
        if name not in self.names:
            raise KeyError(f"no pair named {name!r}")
        row = self.names.index(name)
        if self._at_open[row]:
            raise ValueError(f"pair {name} rebases at the open: no base levels to set")
        closes = np.array([close_a, close_b], dtype=np.float64)
        if not (np.isfinite(closes).all() and (closes > 0).all()):
            closes[:] = np.nan  # unusable closes: no relative strength rather than a wrong one
        self._base_a[row], self._base_b[row] = closes

    @property
    def names(self) -> tuple[str, ...]:
        """The pairs' names."""
        return tuple(p.name for p in self._pairs)

    def sample(self, returns: NDArray[np.float64]) -> None:
        """Add one grid sample's log returns (indexed by index id, NaN where none).

        A pair takes the sample only when both its returns are finite.
        """
        self._buffers.append(returns[self._a], returns[self._b])

    def at_boundary(self, ts_event: int, levels: NDArray[np.float64]) -> PairFigures:
        """The figures at boundary ``ts_event`` from the index levels there (by index id).

        Call once per boundary, in event-time order: ``rs_change`` is against the previous
        call, and the open bases are taken by it.
        """
        level_a, level_b = levels[self._a], levels[self._b]
        day, after_open = self._session_day(ts_event)
        usable = np.isfinite(level_a) & (level_a > 0) & np.isfinite(level_b) & (level_b > 0)
        rebase = after_open & self._at_open & (self._base_day != day) & usable
        self._base_a = np.where(rebase, level_a, self._base_a)
        self._base_b = np.where(rebase, level_b, self._base_b)
        self._base_day = np.where(rebase, day, self._base_day)
        with np.errstate(all="ignore"):
            rs = 100.0 * (level_a / self._base_a) / (level_b / self._base_b)
        stale = self._at_open & (self._base_day != day)
        rs = np.where(usable & np.isfinite(rs) & ~stale, rs, np.nan)
        anchor = after_open & (self._day != day) & np.isfinite(rs)
        self._day_rs = np.where(anchor, rs, self._day_rs)
        self._day = np.where(anchor, day, self._day)
        rs_change_day = np.where(self._day == day, rs - self._day_rs, np.nan)
        rs_change = rs - self._last_rs
        self._last_rs = rs
        beta, corr, count = self._buffers.beta_corr()
        return PairFigures(
            rs=rs,
            rs_change=rs_change,
            rs_change_day=rs_change_day,
            beta=beta,
            corr=corr,
            returns_in_window=count,
            level_a=level_a.astype(np.float64, copy=True),
            level_b=level_b.astype(np.float64, copy=True),
            hedge_level=levels[self._hedge].astype(np.float64, copy=True),
            sleeve_notional=self._notional.copy(),
            names=self.names,
        )

    def _session_day(self, ts_event: int) -> tuple[int, bool]:
        """The Hong Kong day of ``ts_event`` and whether its continuous session has opened."""
        day = int(self._calendar.trading_day(np.array([ts_event]))[0])
        if self._open_of[0] != day:
            is_trading = self._calendar.is_trading_day(day)
            opens = self._calendar.session_bounds(day)[0] if is_trading else np.iinfo(np.int64).max
            self._open_of = (day, opens)
        return day, ts_event >= self._open_of[1]

    def capture(self) -> PairsState:
        """The buffers and bases, for ``restore`` (bitwise through msgspec JSON or MessagePack)."""
        return PairsState(
            tuple(
                PairState(
                    name=pair.name,
                    a=pair.a,
                    b=pair.b,
                    base=pair.base,
                    buffer=self._buffers.capture(row),
                    base_a=_or_none(self._base_a[row]),
                    base_b=_or_none(self._base_b[row]),
                    base_day=int(self._base_day[row]),
                    day_rs=_or_none(self._day_rs[row]),
                    day=int(self._day[row]),
                    last_rs=_or_none(self._last_rs[row]),
                )
                for row, pair in enumerate(self._pairs)
            )
        )

    def restore(self, state: PairsState) -> None:
        """Resume from ``capture()``: pairs are matched by name.

        A captured pair whose A, B or base differ from its configuration now, or that is no
        longer configured, is dropped (a configured pair without state starts empty); a
        buffer longer than the pair's window now keeps its latest returns. Base levels given
        to the constructor stay where the state has none.
        """
        captured = {pair.name: pair for pair in state.pairs}
        for row, pair in enumerate(self._pairs):
            saved = captured.get(pair.name)
            if saved is None or (saved.a, saved.b, saved.base) != (pair.a, pair.b, pair.base):
                continue
            self._buffers.restore(row, saved.buffer)
            if saved.base_a is not None and saved.base_b is not None:
                self._base_a[row], self._base_b[row] = saved.base_a, saved.base_b
            self._base_day[row] = saved.base_day
            self._day_rs[row], self._day[row] = _or_nan(saved.day_rs), saved.day
            self._last_rs[row] = _or_nan(saved.last_rs)
