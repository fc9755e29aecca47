"""Vectorised index levels after every tick of a batch.

For a batch of ticks (security, price) in event order, every index containing the ticked
security gets its level after that tick, in tick order, with no Python loop over ticks:

1. A stable sort by security puts each security's ticks in event order; the previous price of a
   tick is its left neighbour in the run, or the stored price for the first of a run.
2. Each tick expands into (tick, index) pairs through a CSR membership table; the pair's level
   change is price change x IS x FAF x CF / divisor ("level weight").
3. A stable sort of the pairs by index groups each index's changes in tick order; each index
   adds them to its carried running level (``engine.accumulation``), with exact recomputes at
   points fixed by the stream, so levels never depend on how the stream was cut into batches.
4. Prices take the last price of each security.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np
from numpy.typing import ArrayLike, NDArray

from engine.accumulation import exact_sum, run_index
from engine.ordering import stable_order
from engine.universe import Universe


@dataclass(frozen=True)
class LevelUpdates:
    """Levels produced by one batch, one row per (tick, index containing the ticked security).

    Rows are in tick order; within a tick, in index id order.

    Attributes
    ----------
    tick : ndarray of int64
        Position of the tick in the batch that produced the level.
    index : ndarray of int32
        Index id (position in ``Universe.indices``).
    level : ndarray of float64
        Index level just after that tick.
    seq : ndarray of int64
        Per-index sequence number, 1 for the first level an index ever publishes, no gaps.
    """

    tick: NDArray[np.int64]
    index: NDArray[np.int32]
    level: NDArray[np.float64]
    seq: NDArray[np.int64]

    def __len__(self) -> int:
        return int(self.tick.size)

    @staticmethod
    def empty() -> LevelUpdates:
        """No levels."""
        return LevelUpdates(
            tick=np.empty(0, dtype=np.int64),
            index=np.empty(0, dtype=np.int32),
            level=np.empty(0, dtype=np.float64),
            seq=np.empty(0, dtype=np.int64),
        )

    @staticmethod
    def concat(parts: list[tuple[int, LevelUpdates]]) -> LevelUpdates:
        """Join updates of consecutive sub-batches, each given with its first tick's position."""
        if not parts:
            return LevelUpdates.empty()
        return LevelUpdates(
            tick=np.concatenate([part.tick + offset for offset, part in parts]),
            index=np.concatenate([part.index for _, part in parts]),
            level=np.concatenate([part.level for _, part in parts]),
            seq=np.concatenate([part.seq for _, part in parts]),
        )


class IndexCalculator:
    """The mutable state of an index family and the batch tick processor.

    Parameters
    ----------
    universe : Universe
        Reference data; prices start at the previous close, so levels start at the previous
        closing levels.
    """

    def __init__(self, universe: Universe) -> None:
        self.universe = universe
        self._n_securities = len(universe.securities)
        self._n_indices = len(universe.indices)
        self._prices = universe.prev_close.astype(np.float64, copy=True)
        self._divisors = universe.divisors.astype(np.float64, copy=True)
        self._seq = np.zeros(self._n_indices, dtype=np.int64)
        self._set_membership(universe.weights())

    def _set_membership(self, weights: NDArray[np.float64]) -> None:
        m = self.universe.membership
        by_security = np.lexsort((m.index, m.security))
        index_dtype = np.uint16 if self._n_indices <= 1 << 16 else np.int32
        self._weights = weights[by_security]
        self._member_index = m.index[by_security].astype(index_dtype)
        self._member_security = m.security[by_security].astype(np.intp)
        counts = np.bincount(m.security, minlength=self._n_securities)
        self._member_count = counts.astype(np.int64)
        self._member_start = (np.cumsum(counts) - counts).astype(np.int64)
        by_index = np.lexsort((m.security, m.index))
        self._by_index_weights = weights[by_index]
        self._by_index_security = m.security[by_index].astype(np.intp)
        self._by_index_index = m.index[by_index].astype(np.intp)
        index_counts = np.bincount(m.index, minlength=self._n_indices)
        self._index_start = np.concatenate(([0], np.cumsum(index_counts))).astype(np.intp)
        self._refresh_level_weights()

    def _refresh_level_weights(self) -> None:
        self._level_weights = self._weights / self._divisors[self._member_index]
        self._by_index_level_weights = self._by_index_weights / self._divisors[self._by_index_index]
        self._levels = self.recompute_levels()
        self._peaks = np.abs(self._levels)

    # -- read-only views of the state ---------------------------------------------------------

    @property
    def prices(self) -> NDArray[np.float64]:
        """Last price per security id (read-only view)."""
        view = self._prices.view()
        view.flags.writeable = False
        return view

    @property
    def levels(self) -> NDArray[np.float64]:
        """Current level per index id (read-only view)."""
        view = self._levels.view()
        view.flags.writeable = False
        return view

    @property
    def divisors(self) -> NDArray[np.float64]:
        """Current divisor per index id (read-only view)."""
        view = self._divisors.view()
        view.flags.writeable = False
        return view

    @property
    def seq(self) -> NDArray[np.int64]:
        """Sequence number of the last level published per index id (read-only view)."""
        view = self._seq.view()
        view.flags.writeable = False
        return view

    def rebase(
        self, universe: Universe, prices: NDArray[np.float64], divisors: NDArray[np.float64]
    ) -> None:
        """Switch to new reference data at a maintenance event.

        The indices stay the same and existing securities keep their ids (new ones are
        appended); per-index sequence numbers carry on.
        """
        old = self.universe
        if universe.index_codes != old.index_codes:
            raise ValueError("an event cannot change the set of indices")
        if universe.securities[: len(old.securities)] != old.securities:
            raise ValueError("security ids must be kept: new securities are appended")
        self.universe = universe
        self._n_securities = len(universe.securities)
        self._prices = prices.astype(np.float64, copy=True)
        self._divisors = divisors.astype(np.float64, copy=True)
        self._set_membership(universe.weights())

    def restore(
        self,
        prices: NDArray[np.float64],
        divisors: NDArray[np.float64],
        seq: NDArray[np.int64],
        levels: NDArray[np.float64] | None = None,
        peaks: NDArray[np.float64] | None = None,
    ) -> None:
        """Replace the state with a checkpoint's (arrays sized for this universe).

        ``levels`` and ``peaks`` are the running levels and their peaks; without them the
        levels are recomputed, which is exact but may differ in the last bit from the run.
        """
        if (
            prices.shape != self._prices.shape
            or divisors.shape != self._divisors.shape
            or seq.shape != self._seq.shape
        ):
            raise ValueError("checkpoint arrays do not fit this universe")
        self._prices = prices.astype(np.float64, copy=True)
        self._divisors = divisors.astype(np.float64, copy=True)
        self._seq = seq.astype(np.int64, copy=True)
        self._refresh_level_weights()
        if levels is not None and peaks is not None:
            self._levels = levels.astype(np.float64, copy=True)
            self._peaks = peaks.astype(np.float64, copy=True)

    @property
    def peaks(self) -> NDArray[np.float64]:
        """Largest level magnitude per index since its last exact recompute (for checkpoints)."""
        view = self._peaks.view()
        view.flags.writeable = False
        return view

    def recompute_levels(self) -> NDArray[np.float64]:
        """Exact recompute of every level from prices, weights and divisors (``math.fsum``)."""
        return np.array(
            [self._exact_level(k, self._prices) for k in range(self._n_indices)],
            dtype=np.float64,
        )

    def _exact_level_after(self, index: int, prices_at: _PricesAt, tick: int) -> float:
        rows = slice(self._index_start[index], self._index_start[index + 1])
        members = self._by_index_security[rows]
        return exact_sum(prices_at(members, tick), self._by_index_level_weights[rows])

    def _exact_level(self, index: int, prices: NDArray[np.float64]) -> float:
        rows = slice(self._index_start[index], self._index_start[index + 1])
        return exact_sum(prices[self._by_index_security[rows]], self._by_index_level_weights[rows])

    # -- the hot path -------------------------------------------------------------------------

    def apply(self, security: ArrayLike, price: ArrayLike) -> LevelUpdates:
        """Apply a batch of ticks and return every affected index level after every tick.

        Parameters
        ----------
        security : array_like of int
            Security id of each tick, in event order; the same security may repeat.
        price : array_like of float
            Traded price of each tick; finite and positive.

        Returns
        -------
        LevelUpdates
            In tick order.

        Raises
        ------
        ValueError
            On unknown security ids or non-positive / non-finite prices; screen ticks first
            (``engine.screening``) to route such ticks elsewhere. Nothing is applied then.
        """
        sec = np.asarray(security, dtype=np.intp)
        px = np.asarray(price, dtype=np.float64)
        if sec.shape != px.shape or sec.ndim != 1:
            raise ValueError("security and price must be 1-d arrays of equal length")
        if sec.size == 0:
            return LevelUpdates.empty()
        if sec.min() < 0 or sec.max() >= self._n_securities:
            raise ValueError("security id out of range; screen ticks before apply")
        if not np.all((px > 0.0) & (px < np.inf)):
            raise ValueError("prices must be finite and positive; screen ticks before apply")
        return self._apply_batch(sec, px)

    def _apply_batch(self, sec: NDArray[np.intp], px: NDArray[np.float64]) -> LevelUpdates:
        n = sec.size
        # 1. previous price of each tick
        order = stable_order(sec, self._n_securities)
        sorted_sec = sec[order]
        sorted_px = px[order]
        run_start = np.empty(n, dtype=bool)
        run_start[0] = True
        np.not_equal(sorted_sec[1:], sorted_sec[:-1], out=run_start[1:])
        starts = np.flatnonzero(run_start)
        ends = np.append(starts[1:] - 1, n - 1)
        previous = np.empty(n, dtype=np.float64)
        previous[1:] = sorted_px[:-1]
        previous[starts] = self._prices[sorted_sec[starts]]
        change = np.empty(n, dtype=np.float64)
        change[order] = sorted_px - previous

        # 2. expand ticks into (tick, index) pairs
        counts = self._member_count[sec]
        first_pair = np.cumsum(counts) - counts
        n_pairs = int(first_pair[-1] + counts[-1])
        if n_pairs == 0:
            self._prices[sorted_sec[ends]] = sorted_px[ends]
            return LevelUpdates.empty()
        pair_rank = np.arange(n_pairs, dtype=np.int64)
        pair_tick = np.repeat(np.arange(n, dtype=np.int64), counts)
        member = pair_rank + np.repeat(self._member_start[sec] - first_pair, counts)
        pair_index = self._member_index[member]
        delta = change[pair_tick] * self._level_weights[member]

        # 3. per index, in tick order: sequence numbers and running levels
        by_index = np.argsort(pair_index, kind="stable")
        index_sorted = pair_index[by_index]
        seg_flag = np.empty(n_pairs, dtype=bool)
        seg_flag[0] = True
        np.not_equal(index_sorted[1:], index_sorted[:-1], out=seg_flag[1:])
        seg_start = np.flatnonzero(seg_flag)
        seg_len = np.diff(seg_start, append=n_pairs)
        seg_index = index_sorted[seg_start].astype(np.intp)
        seq_sorted = pair_rank + np.repeat(self._seq[seg_index] + 1 - seg_start, seg_len)
        delta_sorted = delta[by_index]
        tick_sorted = pair_tick[by_index]
        level_sorted = np.empty(n_pairs, dtype=np.float64)
        prices_at = _PricesAt(sorted_sec, order, sorted_px, self._prices)
        bounds = np.append(seg_start, n_pairs).tolist()
        for segment, index in enumerate(seg_index.tolist()):
            lo, hi = bounds[segment], bounds[segment + 1]
            level_sorted[lo:hi], self._levels[index], self._peaks[index] = run_index(
                float(self._levels[index]),
                float(self._peaks[index]),
                delta_sorted[lo:hi],
                first_seq=int(seq_sorted[lo]),
                ticks=tick_sorted[lo:hi],
                exact=partial(self._exact_level_after, index, prices_at),
            )

        # 4. commit: last price per security, sequence numbers
        self._prices[sorted_sec[ends]] = sorted_px[ends]
        self._seq[seg_index] += seg_len
        level = np.empty(n_pairs, dtype=np.float64)
        level[by_index] = level_sorted
        seq = np.empty(n_pairs, dtype=np.int64)
        seq[by_index] = seq_sorted
        return LevelUpdates(tick=pair_tick, index=pair_index.astype(np.int32), level=level, seq=seq)


class _PricesAt:
    """Securities' prices just after a given tick of the batch (for exact recomputes)."""

    def __init__(
        self,
        sorted_sec: NDArray[np.intp],
        order: NDArray[np.intp],
        sorted_px: NDArray[np.float64],
        before: NDArray[np.float64],
    ) -> None:
        self._n = order.size
        self._order = order
        self._keys: NDArray[np.int64] | None = None
        self._sorted_sec = sorted_sec
        self._sorted_px = sorted_px
        self._before = before

    def __call__(self, securities: NDArray[np.intp], tick: int) -> NDArray[np.float64]:
        prices = self._before[securities]
        # Built on first use only: most batches need no exact recompute at all.
        if self._keys is None:
            self._keys = self._sorted_sec.astype(np.int64) * self._n + self._order
        last = np.searchsorted(self._keys, securities * self._n + tick, side="right") - 1
        hit = last >= 0
        hit[hit] = self._sorted_sec[last[hit]] == securities[hit]
        prices[hit] = self._sorted_px[last[hit]]
        return prices
