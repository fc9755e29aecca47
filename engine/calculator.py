"""Vectorised index levels after every tick of a batch.

For a batch of ticks (security, price) in event order, every index containing the ticked
security gets its level after that tick, in tick order, with no Python loop over ticks:

1. A stable sort by security puts each security's ticks in event order; the previous price of a
   tick is its left neighbour in the run, or the stored price for the first of a run.
2. Each tick expands into (tick, index) pairs through a CSR membership table; the pair's level
   change is price change x IS x FAF x CF / divisor ("level weight").
3. A stable sort of the pairs by index and a segmented cumulative sum give each index's level
   after each of its ticks.
4. Prices are set to the last price of each security and levels are re-anchored from the arrays
   (O(memberships)), so rounding never accumulates across batches.

Summing changes can lose precision when a level collapses within a batch (a price crashing by
orders of magnitude). A cheap bound flags that case and the batch is split until the levels
are exact again; ordinary market data never takes that path.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from engine.universe import Universe

# Largest (level + churn) / smallest level an index may see within one batch before the
# summed changes could lose more than ~1e-13 relative precision; beyond it the batch is split.
_CANCELLATION_GUARD = 8.0


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
        self._security_key = np.uint16 if self._n_securities <= 1 << 16 else np.int64
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
        self._refresh_level_weights()

    def _refresh_level_weights(self) -> None:
        self._level_weights = self._weights / self._divisors[self._member_index]
        self._levels = self.recompute_levels()

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
        self._security_key = np.uint16 if self._n_securities <= 1 << 16 else np.int64
        self._prices = prices.astype(np.float64, copy=True)
        self._divisors = divisors.astype(np.float64, copy=True)
        self._set_membership(universe.weights())

    def restore(
        self, prices: NDArray[np.float64], divisors: NDArray[np.float64], seq: NDArray[np.int64]
    ) -> None:
        """Replace the state with a checkpoint's (arrays sized for this universe)."""
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

    def recompute_levels(self) -> NDArray[np.float64]:
        """Full recompute of every level from prices, weights and divisors, O(memberships)."""
        contribution = self._prices[self._member_security] * self._level_weights
        levels = np.bincount(self._member_index, weights=contribution, minlength=self._n_indices)
        return levels.astype(np.float64, copy=False)

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
        return self._apply_valid(sec, px)

    def _apply_valid(self, sec: NDArray[np.intp], px: NDArray[np.float64]) -> LevelUpdates:
        if sec.size == 1:
            return self._apply_single(int(sec[0]), float(px[0]))
        updates = self._apply_batch(sec, px)
        if updates is not None:
            return updates
        half = sec.size // 2
        head = self._apply_valid(sec[:half], px[:half])
        tail = self._apply_valid(sec[half:], px[half:])
        return LevelUpdates.concat([(0, head), (half, tail)])

    def _apply_single(self, security: int, price: float) -> LevelUpdates:
        start = self._member_start[security]
        members = self._member_index[start : start + self._member_count[security]]
        self._prices[security] = price
        self._levels = self.recompute_levels()
        self._seq[members] += 1
        return LevelUpdates(
            tick=np.zeros(members.size, dtype=np.int64),
            index=members.astype(np.int32),
            level=self._levels[members],
            seq=self._seq[members].copy(),
        )

    def _apply_batch(self, sec: NDArray[np.intp], px: NDArray[np.float64]) -> LevelUpdates | None:
        """Vectorised batch; returns None (state untouched) when precision is at risk."""
        n = sec.size
        # 1. previous price of each tick
        order = np.argsort(sec.astype(self._security_key), kind="stable")
        sorted_sec = sec[order]
        sorted_px = px[order]
        run_start = np.empty(n, dtype=bool)
        run_start[0] = True
        np.not_equal(sorted_sec[1:], sorted_sec[:-1], out=run_start[1:])
        starts = np.flatnonzero(run_start)
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
            ends = np.append(starts[1:] - 1, n - 1)
            self._prices[sorted_sec[ends]] = sorted_px[ends]
            return LevelUpdates.empty()
        pair_rank = np.arange(n_pairs, dtype=np.int64)
        pair_tick = np.repeat(np.arange(n, dtype=np.int64), counts)
        member = pair_rank + np.repeat(self._member_start[sec] - first_pair, counts)
        pair_index = self._member_index[member]
        delta = change[pair_tick] * self._level_weights[member]

        # 3. segmented cumulative sum per index
        by_index = np.argsort(pair_index, kind="stable")
        index_sorted = pair_index[by_index]
        delta_sorted = delta[by_index]
        running = np.cumsum(delta_sorted)
        seg_flag = np.empty(n_pairs, dtype=bool)
        seg_flag[0] = True
        np.not_equal(index_sorted[1:], index_sorted[:-1], out=seg_flag[1:])
        seg_start = np.flatnonzero(seg_flag)
        seg_len = np.diff(seg_start, append=n_pairs)
        seg_index = index_sorted[seg_start].astype(np.intp)
        base = running[seg_start] - delta_sorted[seg_start]
        start_level = self._levels[seg_index]
        running -= np.repeat(base - start_level, seg_len)

        churn = np.add.reduceat(np.abs(delta_sorted), seg_start)
        lowest = np.minimum.reduceat(np.abs(running), seg_start)
        if np.any(np.abs(start_level) + churn + np.abs(base) > _CANCELLATION_GUARD * lowest):
            return None

        level = np.empty(n_pairs, dtype=np.float64)
        level[by_index] = running
        seq = np.empty(n_pairs, dtype=np.int64)
        seq[by_index] = pair_rank + np.repeat(self._seq[seg_index] + 1 - seg_start, seg_len)

        # 4. commit: last price per security, sequence numbers, re-anchored levels
        ends = np.append(starts[1:] - 1, n - 1)
        self._prices[sorted_sec[ends]] = sorted_px[ends]
        self._seq[seg_index] += seg_len
        self._levels = self.recompute_levels()
        return LevelUpdates(tick=pair_tick, index=pair_index.astype(np.int32), level=level, seq=seq)
