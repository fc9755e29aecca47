"""A seeded, vectorised market simulator producing realistic HKEX-style tick streams.

Model, per security:

* ticks arrive as a Poisson process whose rate is proportional to the square root of the
  free-float market capitalisation, so large caps trade far more often than small caps; the
  superposition is one Poisson stream of the configured total rate whose ticks are marked with
  a security drawn with probability proportional to its rate;
* the "true" price follows a geometric random walk in log space, the step scaled by the square
  root of the time since the security's previous tick, plus rare +-2-5% jumps;
* the published price is the true price rounded to the HKEX spread table: to the bid or the
  ask around it (a coin toss per tick, like buyer- and seller-initiated trades), or to the
  nearest valid price when the bid-ask bounce is turned off;
* the volume of a trade is a whole number of board lots, 1 to ``max_lots`` (geometric: small
  trades are common, block-sized ones rare), drawn from a generator of its own seeded from the
  same seed, so that the prices are exactly those of a simulator without volumes.

Nothing loops per tick in Python; batches are whole numpy arrays.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from engine.kernel.columns import TickColumns
from engine.kernel.ordering import run_starts, stable_order
from engine.refdata.universe import Universe
from producers.tick_sizes import quotes_around, round_to_tick

NS_PER_SECOND = 1_000_000_000
# HKEX continuous trading is about 5.5 hours a day, 252 days a year; volatilities are annualised
# over trading time so a simulated second is a trading second.
TRADING_SECONDS_PER_DAY = 5.5 * 3600.0
TRADING_SECONDS_PER_YEAR = 252 * TRADING_SECONDS_PER_DAY
DEFAULT_RATE = 2_000.0
LOT_SIZE = 100
MAX_LOTS = 100
VOLUME_STREAM = 1
"""Spawn key of the volume generator's seed: an independent stream of the same seed."""
LOT_COUNT_P = 0.08
"""Success probability of the geometric number of lots: about 12 lots a trade on average."""


def free_float_caps(universe: Universe) -> NDArray[np.float64]:
    """Free-float market capitalisation per security id at the previous close.

    A security in several indices may carry different share counts or free-float factors in
    each (e.g. H shares only); the largest is taken.

    Parameters
    ----------
    universe : Universe
        The index family.

    Returns
    -------
    ndarray of float64
        prev_close x issued_shares x FAF, maximised over memberships, per security id.
    """
    m = universe.membership
    caps = np.zeros(len(universe.securities), dtype=np.float64)
    row_caps = universe.prev_close[m.security] * m.issued_shares * m.faf
    np.maximum.at(caps, m.security, row_caps)
    return caps


class MarketSimulator:
    """Generates ticks for every security of a universe, batch after batch.

    Same universe, seed, parameters and sequence of calls give identical ticks.

    Parameters
    ----------
    universe : Universe
        Securities, previous closes (the starting prices) and capitalisations (tick rates).
    seed : int
        Seed of the random generator.
    start_ns : int
        Event time the simulation starts at, integer nanoseconds since the Unix epoch.
    rate : float
        Expected ticks per second of event time over all securities.
    volatility : (float, float)
        Range of the annualised volatility; the largest cap gets the low end, the smallest cap
        the high end, with a little per-stock noise.
    jumps_per_day : float
        Expected jumps per security per trading day (5.5 hours).
    jump_size : (float, float)
        Range of the absolute log size of a jump; the sign is a coin toss.
    rate_exponent : float
        Tick rate is proportional to free-float capitalisation to this power.
    quote_bounce : bool
        Trade at the bid or the ask around the true price (True) or at the nearest tick.
    lot_size : int
        Shares in a board lot; every volume is a multiple of it.
    max_lots : int
        Most lots in one trade.
    """

    def __init__(
        self,
        universe: Universe,
        seed: int,
        *,
        start_ns: int,
        rate: float = DEFAULT_RATE,
        volatility: tuple[float, float] = (0.20, 0.50),
        jumps_per_day: float = 1.0,
        jump_size: tuple[float, float] = (0.02, 0.05),
        rate_exponent: float = 0.5,
        quote_bounce: bool = True,
        lot_size: int = LOT_SIZE,
        max_lots: int = MAX_LOTS,
    ) -> None:
        if not rate > 0:
            raise ValueError(f"rate must be positive, got {rate}")
        if lot_size < 1 or max_lots < 1:
            raise ValueError(f"lot_size and max_lots must be positive, got {lot_size}, {max_lots}")
        if len(universe.securities) == 0:
            raise ValueError("the universe has no securities")
        self.universe = universe
        self.seed = seed
        self.rate = float(rate)
        self.jump_size = jump_size
        self.quote_bounce = quote_bounce
        self._rng = np.random.default_rng(seed)
        self._volume_rng = np.random.default_rng(
            np.random.SeedSequence(seed, spawn_key=(VOLUME_STREAM,))
        )
        self.lot_size = lot_size
        self.max_lots = max_lots
        n = len(universe.securities)

        caps = free_float_caps(universe)
        intensity = np.power(np.maximum(caps, 0.0), rate_exponent)
        if not intensity.sum() > 0:
            intensity = np.ones(n)
        self._share: NDArray[np.float64] = intensity / intensity.sum()
        self._cumulative_share = np.cumsum(self._share)
        self._cumulative_share[-1] = 1.0

        size_rank = np.empty(n, dtype=np.float64)
        size_rank[np.argsort(caps, kind="stable")] = np.linspace(0.0, 1.0, n)
        low, high = volatility
        noise = self._rng.uniform(0.9, 1.1, n)
        self.volatility = np.clip((high - (high - low) * size_rank) * noise, low, high)
        self._variance_per_ns = self.volatility**2 / (TRADING_SECONDS_PER_YEAR * NS_PER_SECOND)
        self._jumps_per_ns = jumps_per_day / (TRADING_SECONDS_PER_DAY * NS_PER_SECOND)

        self._log_price = np.log(universe.prev_close.astype(np.float64))
        self._last_tick_ns = np.full(n, start_ns, dtype=np.int64)
        self._tick_count = np.zeros(n, dtype=np.int64)
        self._now_ns = int(start_ns)

    @property
    def now_ns(self) -> int:
        """Event time the simulation has reached (the last tick, or the end of the last span)."""
        return self._now_ns

    @property
    def rates(self) -> NDArray[np.float64]:
        """Expected ticks per second per security id."""
        return self.rate * self._share

    @property
    def last_tick_ns(self) -> NDArray[np.int64]:
        """Event time of the last tick per security id (``start_ns`` before its first tick)."""
        view = self._last_tick_ns.view()
        view.flags.writeable = False
        return view

    @property
    def true_prices(self) -> NDArray[np.float64]:
        """Current unrounded price per security id."""
        return np.exp(self._log_price)

    def next_batch(self, n_ticks: int) -> TickColumns:
        """The next ``n_ticks`` ticks, whatever event time they span.

        Parameters
        ----------
        n_ticks : int
            Number of ticks, non-negative.

        Returns
        -------
        TickColumns
            Ticks with non-decreasing event times after ``now_ns``, which moves to the last one,
            and per-security sequence numbers (1 for a security's first tick, no gaps).
        """
        if n_ticks < 0:
            raise ValueError(f"n_ticks must be non-negative, got {n_ticks}")
        if n_ticks == 0:
            return TickColumns.empty()
        gaps = np.rint(self._rng.exponential(NS_PER_SECOND / self.rate, n_ticks))
        ts_event = self._now_ns + np.cumsum(gaps.astype(np.int64))
        self._now_ns = int(ts_event[-1])
        return self._ticks_at(ts_event)

    def batch_for(self, duration_ns: int) -> TickColumns:
        """Every tick of the next ``duration_ns`` nanoseconds of event time.

        Parameters
        ----------
        duration_ns : int
            Length of the span, non-negative.

        Returns
        -------
        TickColumns
            About ``rate x duration`` ticks in (now_ns, now_ns + duration_ns], in event order;
            ``now_ns`` moves to the end of the span even when no tick falls in it.
        """
        if duration_ns < 0:
            raise ValueError(f"duration_ns must be non-negative, got {duration_ns}")
        n_ticks = int(self._rng.poisson(self.rate * duration_ns / NS_PER_SECOND))
        span_start = self._now_ns
        self._now_ns += int(duration_ns)
        if n_ticks == 0:
            return TickColumns.empty()
        # Given their count, the arrival times of a Poisson process are uniform over the span.
        offsets = np.sort(self._rng.integers(1, duration_ns, n_ticks, endpoint=True))
        return self._ticks_at(span_start + offsets.astype(np.int64))

    def _ticks_at(self, ts_event: NDArray[np.int64]) -> TickColumns:
        n = ts_event.size
        rng = self._rng
        security = np.searchsorted(self._cumulative_share, rng.random(n), side="right")
        security = np.minimum(security, self._share.size - 1).astype(np.int64)
        shock = rng.standard_normal(n)
        jump_draw = rng.random(n)
        jump_magnitude = rng.uniform(*self.jump_size, n)
        jump_sign = rng.choice(np.array([-1.0, 1.0]), n)
        buyer_initiated = rng.random(n) < 0.5

        # Group each security's ticks, in event order, to diff times and cumsum returns per run.
        order = stable_order(security, self._share.size)
        sorted_security = security[order]
        sorted_ts = ts_event[order]
        starts = np.flatnonzero(run_starts(sorted_security))
        run_length = np.diff(starts, append=n)
        run_security = sorted_security[starts]

        previous_ts = np.empty(n, dtype=np.int64)
        previous_ts[1:] = sorted_ts[:-1]
        previous_ts[starts] = self._last_tick_ns[run_security]
        elapsed_ns = (sorted_ts - previous_ts).astype(np.float64)

        variance = self._variance_per_ns[sorted_security] * elapsed_ns
        jumped = jump_draw[order] < -np.expm1(-self._jumps_per_ns * elapsed_ns)
        log_return = -0.5 * variance + np.sqrt(variance) * shock[order]
        log_return += np.where(jumped, jump_sign[order] * jump_magnitude[order], 0.0)

        running = np.cumsum(log_return)
        before_run = running[starts] - log_return[starts]
        log_price = running + np.repeat(self._log_price[run_security] - before_run, run_length)

        run_end = starts + run_length - 1
        self._log_price[run_security] = log_price[run_end]
        self._last_tick_ns[run_security] = sorted_ts[run_end]
        seq = np.empty(n, dtype=np.int64)
        seq[order] = np.arange(n) + np.repeat(
            self._tick_count[run_security] + 1 - starts, run_length
        )
        self._tick_count[run_security] += run_length

        true_price = np.empty(n, dtype=np.float64)
        true_price[order] = np.exp(log_price)
        if self.quote_bounce:
            bid, ask = quotes_around(true_price)
            price = np.where(buyer_initiated, ask, bid)
        else:
            price = round_to_tick(true_price)
        lots = np.minimum(self._volume_rng.geometric(LOT_COUNT_P, n), self.max_lots)
        volume = (lots * self.lot_size).astype(np.float64)
        return TickColumns(
            ts_event=ts_event, security=security, price=price, seq=seq, volume=volume
        )
