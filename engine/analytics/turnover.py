"""Turnover (price x volume) per security and per index for the day, against recent days.

Each tick batch adds price x volume to its securities' turnover for the day so far. A tick
without volume (NaN) adds nothing; a tick whose product is not a finite number >= 0 (NaN or
infinite price, negative volume or price), or whose security id is unknown, is ignored and
counted (``Turnover.ignored``). An index's turnover is the sum of its constituents' turnover:
a security in several indices counts in full in each of them.

At a day roll the day's totals join a ring buffer of the last K days per security; the liquidity
signal compares today's turnover so far with their average (``turnover_ratio``).
"""

from __future__ import annotations

from typing import Annotated

import msgspec
import numpy as np
from numpy.typing import ArrayLike, NDArray

from engine.analytics.constituents import MemberRows


class TurnoverConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Turnover settings.

    Attributes
    ----------
    days : int
        How many past trading days the average turnover is taken over (K).
    """

    days: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 20


class TurnoverState(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Checkpoint form of a ``Turnover`` (MessagePack keeps the floats bitwise).

    ``history`` is the (days, securities) ring buffer row by row, NaN where a day is missing;
    ``next_day`` the row the next day roll writes.
    """

    today: list[float]
    history: list[float]
    next_day: int
    ignored: int


class Turnover:
    """Per-security turnover of the day so far, and the average of the last K days.

    Parameters
    ----------
    n_securities : int
        Number of securities (ids ``0 .. n_securities - 1``); ``grow`` adds more.
    config : TurnoverConfig, optional
        K, the number of past days averaged.
    """

    def __init__(self, n_securities: int, config: TurnoverConfig | None = None) -> None:
        self._days = (config or TurnoverConfig()).days
        self._today = np.zeros(n_securities, dtype=np.float64)
        self._history = np.full((self._days, n_securities), np.nan)
        self._next_day = 0
        self.ignored = 0
        """Ticks ignored so far: product not finite and >= 0, or unknown security id."""

    @property
    def n_securities(self) -> int:
        """Number of securities tracked."""
        return self._today.size

    @property
    def today(self) -> NDArray[np.float64]:
        """Turnover per security id for the day so far (read-only view)."""
        view = self._today.view()
        view.flags.writeable = False
        return view

    def grow(self, n_securities: int) -> None:
        """Track securities up to ``n_securities`` (new ones: nothing today, no history)."""
        added = n_securities - self._today.size
        if added > 0:
            self._today = np.concatenate((self._today, np.zeros(added)))
            self._history = np.hstack((self._history, np.full((self._days, added), np.nan)))

    def add(self, security: ArrayLike, price: ArrayLike, volume: ArrayLike) -> int:
        """Add a batch of ticks' price x volume; returns how many of them were ignored.

        Parameters
        ----------
        security : array_like of int
            Security id of each tick.
        price, volume : array_like of float
            Traded price and volume of each tick; NaN volume: the tick carries none.
        """
        sec = np.asarray(security, dtype=np.int64).reshape(-1)
        px = np.asarray(price, dtype=np.float64).reshape(-1)
        vol = np.asarray(volume, dtype=np.float64).reshape(-1)
        if not sec.shape == px.shape == vol.shape:
            raise ValueError("security, price and volume must have the same length")
        with np.errstate(all="ignore"):
            value = px * vol
        # Sequential in tick order (unlike a bincount per batch, then added): the totals are
        # bitwise the same however the stream is cut into batches.
        if sec.size == 0:
            return 0
        in_range = sec.min() >= 0 and sec.max() < self._today.size
        if in_range and value.min() >= 0.0 and value.max() < np.inf:  # every tick counts
            np.add.at(self._today, sec, value)
            return 0
        carried = ~np.isnan(vol)
        good = carried & (value >= 0) & (value < np.inf) & (sec >= 0) & (sec < self._today.size)
        np.add.at(self._today, sec[good], value[good])
        ignored = int(np.count_nonzero(carried & ~good))
        self.ignored += ignored
        return ignored

    def by_index(self, members: MemberRows, index_ids: ArrayLike) -> NDArray[np.float64]:
        """Turnover of each of ``index_ids`` for the day so far: the sum over its constituents
        (a security in several indices counts in each)."""
        ids = np.asarray(index_ids, dtype=np.intp).reshape(-1)
        rows, position = members.selected(ids)
        today = self._today[members.security[rows]]
        total = np.bincount(position, weights=today, minlength=ids.size)
        return total.astype(np.float64, copy=False)

    def roll(self) -> None:
        """End the day: its totals join the last K days, and the new day starts at 0."""
        self._history[self._next_day] = self._today
        self._next_day = (self._next_day + 1) % self._days
        self._today = np.zeros_like(self._today)

    def average(self) -> NDArray[np.float64]:
        """Mean daily turnover per security over the days held (at most K); NaN without any."""
        held = ~np.isnan(self._history)
        days = held.sum(axis=0)
        total = np.where(held, self._history, 0.0).sum(axis=0)
        mean = np.full(total.size, np.nan)
        np.divide(total, days, out=mean, where=days > 0)
        return mean

    def turnover_ratio(self, securities: ArrayLike) -> NDArray[np.float64]:
        """Today's turnover so far over the average of the last K days, per security.

        NaN where the security has no history yet or its average is not positive.
        """
        sec = np.asarray(securities, dtype=np.intp).reshape(-1)
        average = self.average()[sec]
        ratio = np.full(sec.size, np.nan)
        np.divide(self._today[sec], average, out=ratio, where=average > 0)
        return ratio

    def capture(self) -> TurnoverState:
        """The state to checkpoint."""
        return TurnoverState(
            self._today.tolist(), self._history.ravel().tolist(), self._next_day, self.ignored
        )

    def restore(self, state: TurnoverState) -> None:
        """Resume from ``capture()`` output (its securities; K must be this one's).

        Raises
        ------
        ValueError
            When the state was taken with another number of days, or is inconsistent.
        """
        n = len(state.today)
        if len(state.history) != self._days * n or not 0 <= state.next_day < self._days:
            raise ValueError(f"turnover checkpoint does not fit {self._days} days")
        self._today = np.array(state.today, dtype=np.float64)
        self._history = np.array(state.history, dtype=np.float64).reshape(self._days, n)
        self._next_day = state.next_day
        self.ignored = state.ignored


__all__ = ["Turnover", "TurnoverConfig", "TurnoverState"]
