"""Vectorised index levels after every tick of a batch.

For a batch of ticks (security, price) in event order, every index containing the ticked
security gets its level after that tick, in tick order, with no Python loop over ticks:

1. A stable sort by security puts each security's ticks in event order; the previous price of a
   tick is its left neighbour in the run, or the stored price for the first of a run.
2. Each tick expands into (tick, index) pairs through the membership table
   (``engine.kernel.memberships``); the pair's level change is price change x IS x FAF x CF /
   divisor ("level weight").
3. A stable sort of the pairs by index groups each index's changes in tick order; each index
   adds them to its carried running level (``engine.kernel.accumulation``), with exact recomputes at
   points fixed by the stream, so levels never depend on how the stream was cut into batches.
   All indices do so at once (``engine.kernel.segmented``): a batch costs per level, not per
   index touched.
4. Prices take the last price of each security.

A level that comes out NaN or infinite (reference data or an event gone wrong; screened prices
alone cannot cause one) is withheld: not returned, no sequence number used, counted in
``nonfinite_levels`` and described in ``take_withheld()``; the index's published level stays the
last finite one (``published_levels``) and later levels are recomputed exactly until finite.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from engine.core.growth import appended
from engine.kernel.accumulation import exact_sum
from engine.kernel.level_updates import BatchRanges, LevelUpdates, WithheldLevel, withhold
from engine.kernel.memberships import MembershipTable
from engine.kernel.ordering import run_starts, stable_order
from engine.kernel.segmented import Segments, group_by_index, run_segments
from engine.refdata.universe import Universe, rows_by_index

__all__ = ["IndexCalculator", "LevelUpdates", "WithheldLevel"]


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
        self._n_securities = universe.n_securities
        self._n_indices = len(universe.indices)
        self._prices = universe.prev_close.astype(np.float64, copy=True)
        self._divisors = universe.divisors.astype(np.float64, copy=True)
        self._seq = np.zeros(self._n_indices, dtype=np.int64)
        # Levels computed per index, withheld ones included: the exact recomputes' schedule.
        self._computed = np.zeros(self._n_indices, dtype=np.int64)
        self.nonfinite_levels = 0
        self._withheld: list[WithheldLevel] = []
        # With ``track_ranges``: each ``apply``'s high and low per index (day figures).
        self.track_ranges = False
        self.last_ranges: BatchRanges | None = None
        self._set_membership(universe.weights())

    def _set_membership(self, weights: NDArray[np.float64]) -> None:
        m = self.universe.membership
        self._members = MembershipTable(
            m.security, m.index, weights, self._n_securities, self._n_indices
        )
        # Each index's rows, for exact recomputes (``math.fsum``: their order does not matter).
        rows_of = rows_by_index(m.index, self._n_indices)
        by_index = rows_of.order
        self._by_index_weights = weights[by_index]
        self._by_index_security = m.security[by_index].astype(np.intp)
        self._by_index_index = m.index[by_index].astype(np.intp)
        self._index_start = np.concatenate(([0], rows_of.ends)).astype(np.intp)
        self._refresh_level_weights()

    def _refresh_level_weights(self) -> None:
        self._members.set_divisors(self._divisors)
        self._by_index_level_weights = self._by_index_weights / self._divisors[self._by_index_index]
        self._levels = self.recompute_levels()
        self._peaks = np.abs(self._levels)
        self._last_good = self._levels.copy()

    # -- read-only views of the state ---------------------------------------------------------

    @property
    def prices(self) -> NDArray[np.float64]:
        """Last price per security id (read-only view)."""
        return _read_only(self._prices)

    @property
    def levels(self) -> NDArray[np.float64]:
        """Current level per index id (read-only view)."""
        return _read_only(self._levels)

    @property
    def published_levels(self) -> NDArray[np.float64]:
        """Last finite level per index id: ``levels`` unless a level was withheld since."""
        return _read_only(np.where(np.isfinite(self._levels), self._levels, self._last_good))

    def take_withheld(self) -> list[WithheldLevel]:
        """Levels withheld as NaN or infinite since the last call, in order; then forget them."""
        withheld, self._withheld = self._withheld, []
        return withheld

    @property
    def divisors(self) -> NDArray[np.float64]:
        """Current divisor per index id (read-only view)."""
        return _read_only(self._divisors)

    def member_weights(self) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.float64]]:
        """The current membership rows: index id, security id and IS x FAF x CF of each.

        Rows are grouped by index id (membership file order within an index); read-only views,
        replaced by a maintenance event (``rebase``): ask again after one.
        """
        return (
            _read_only(self._by_index_index),
            _read_only(self._by_index_security),
            _read_only(self._by_index_weights),
        )

    @property
    def seq(self) -> NDArray[np.int64]:
        """Sequence number of the last level published per index id (read-only view)."""
        return _read_only(self._seq)

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
        if universe.securities[: old.n_securities] != old.securities:
            raise ValueError("security ids must be kept: new securities are appended")
        self.universe = universe
        self._n_securities = universe.n_securities
        self._prices = prices.astype(np.float64, copy=True)
        self._divisors = divisors.astype(np.float64, copy=True)
        self._set_membership(universe.weights())

    def add_securities(self, codes: Iterable[str]) -> int:
        """Append securities that belong to no index yet; returns how many were new.

        Amortised O(k) for k new codes, whatever the number of securities: only per-security
        state grows (price NaN until the first tick, no membership row). Indices, levels,
        divisors, running sums and sequence numbers are untouched, so levels stay bitwise
        those of a calculator that knew the codes from the start. Known codes are skipped.
        """
        grown = self.universe.with_securities(codes)
        added = grown.n_securities - self._n_securities
        if added:
            self.universe = grown
            self._n_securities = grown.n_securities
            self._prices = appended(self._prices, added, np.nan)
            self._members.add_securities(added)
        return added

    def restore(
        self,
        prices: NDArray[np.float64],
        divisors: NDArray[np.float64],
        seq: NDArray[np.int64],
        *,
        levels: NDArray[np.float64] | None = None,
        peaks: NDArray[np.float64] | None = None,
        computed: NDArray[np.int64] | None = None,
        last_good: NDArray[np.float64] | None = None,
    ) -> None:
        """Replace the state with a checkpoint's (arrays sized for this universe).

        ``levels`` and ``peaks`` are the running levels and peaks (else recomputed: exact, maybe
        not bitwise), ``computed`` and ``last_good`` those of ``resume_state()`` (needed bitwise
        only after a withheld level).
        """
        per_index = (seq, levels, peaks, computed, last_good)
        if (prices.shape, divisors.shape) != (self._prices.shape, self._divisors.shape) or any(
            a is not None and a.shape != self._seq.shape for a in per_index
        ):
            raise ValueError("checkpoint arrays do not fit this universe")
        self._prices = prices.astype(np.float64, copy=True)
        self._divisors = divisors.astype(np.float64, copy=True)
        self._seq = seq.astype(np.int64, copy=True)
        self._computed = (self._seq if computed is None else computed).astype(np.int64)
        self._refresh_level_weights()
        if levels is not None and peaks is not None:
            self._levels = levels.astype(np.float64, copy=True)
            self._peaks = peaks.astype(np.float64, copy=True)
            self._last_good = np.where(np.isfinite(self._levels), self._levels, self._last_good)
        if last_good is not None:
            self._last_good = last_good.astype(np.float64, copy=True)

    def resume_state(self) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """Per index: levels computed (withheld too; they time exact recomputes), last finite."""
        return self._computed.copy(), self._last_good.copy()

    @property
    def peaks(self) -> NDArray[np.float64]:
        """Largest level magnitude per index since its last exact recompute (for checkpoints)."""
        return _read_only(self._peaks)

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

    def apply(
        self, security: ArrayLike, price: ArrayLike, ts_event: ArrayLike | None = None
    ) -> LevelUpdates:
        """Apply a batch of ticks and return every affected index level after every tick.

        Parameters
        ----------
        security : array_like of int
            Security id of each tick, in event order; the same security may repeat.
        price : array_like of float
            Traded price of each tick; finite and positive.
        ts_event : array_like of int, optional
            Event time of each tick, only to describe withheld levels (``take_withheld``).

        Returns
        -------
        LevelUpdates
            In tick order; levels that came out NaN or infinite are withheld (module docstring).

        Raises
        ------
        TypeError
            When ``security`` is not integer ids (codes go through ``Universe.security_ids``).
        ValueError
            On unknown security ids or non-positive / non-finite prices; screen ticks first
            (``engine.kernel.screening``) to route such ticks elsewhere. Nothing is applied then.
        """
        self.last_ranges = None
        ids = np.asarray(security)
        if ids.size and ids.dtype.kind not in "iu":
            raise TypeError(f"security must be integer ids, got {ids.dtype}: use security_ids")
        sec = ids.astype(np.intp, copy=False)
        px = np.asarray(price, dtype=np.float64)
        if sec.shape != px.shape or sec.ndim != 1:
            raise ValueError("security and price must be 1-d arrays of equal length")
        if sec.size == 0:
            return LevelUpdates.empty()
        if sec.min() < 0 or sec.max() >= self._n_securities:
            raise ValueError("security id out of range; screen ticks before apply")
        if not np.all((px > 0.0) & (px < np.inf)):
            raise ValueError("prices must be finite and positive; screen ticks before apply")
        updates, level_finite = self._apply_batch(sec, px)
        if level_finite is None:
            return updates
        kept, withheld = withhold(updates, level_finite, sec, px, ts_event)
        self._withheld.extend(withheld)
        self.nonfinite_levels += len(withheld)
        return kept

    def _apply_batch(
        self, sec: NDArray[np.intp], px: NDArray[np.float64]
    ) -> tuple[LevelUpdates, NDArray[np.bool_] | None]:
        """Updates of one batch, and which levels are finite (None: all of them)."""
        n = sec.size
        # 1. previous price of each tick
        order = stable_order(sec, self._n_securities)
        sorted_sec = sec[order]
        sorted_px = px[order]
        starts = np.flatnonzero(run_starts(sorted_sec))
        ends = np.append(starts[1:] - 1, n - 1)
        previous = np.empty(n, dtype=np.float64)
        previous[1:] = sorted_px[:-1]
        previous[starts] = self._prices[sorted_sec[starts]]
        change = np.empty(n, dtype=np.float64)
        change[order] = sorted_px - previous

        # 2. expand ticks into (tick, index) pairs
        counts = self._members.counts(sec)
        n_pairs = int(counts.sum())
        if n_pairs == 0:
            self._prices[sorted_sec[ends]] = sorted_px[ends]
            return LevelUpdates.empty(), None
        pair_tick = np.repeat(np.arange(n, dtype=np.int64), counts)
        pair_index, delta = self._members.expand(sec, change, counts)

        # 3. per index, in tick order: running levels
        segments = group_by_index(pair_index, self._n_indices)
        seg_index = segments.index
        prices_at = _PricesAt(sorted_sec, order, sorted_px, self._prices)
        carried = self._levels[seg_index]
        good = np.isfinite(carried)
        self._last_good[seg_index[good]] = carried[good]
        level, all_finite = run_segments(
            self._levels,
            self._peaks,
            delta,
            pair_index,
            segments,
            first_seq=self._computed[seg_index] + 1,
            ticks=pair_tick,
            exact_for=lambda index: partial(self._exact_level_after, index, prices_at),
        )

        # 4. commit: last price per security, sequence numbers of the finite levels
        self._prices[sorted_sec[ends]] = sorted_px[ends]
        self._computed[seg_index] += segments.length
        finite: NDArray[np.bool_] | None = None
        if all_finite:
            if segments.ranked:  # by the vectorised path: one gather, no scatter
                seq = segments.rank() + np.take(self._seq + 1, pair_index)
            else:
                seq = np.empty(n_pairs, dtype=np.int64)
                first = self._seq[seg_index] + 1 - segments.start
                in_order = np.arange(n_pairs, dtype=np.int64)
                seq[segments.order] = in_order + np.repeat(first, segments.length)
            self._seq[seg_index] += segments.length
        else:
            finite = np.isfinite(level)
            seq = self._seq_of_finite(level, finite, segments)
        updates = LevelUpdates(
            tick=pair_tick, index=pair_index.astype(np.int32), level=level, seq=seq
        )
        if self.track_ranges and finite is None:
            grouped = level[segments.order]  # by index: a segment's levels are contiguous
            self.last_ranges = BatchRanges(
                segments.index,
                np.maximum.reduceat(grouped, segments.start),
                np.minimum.reduceat(grouped, segments.start),
            )
        return updates, finite

    def _seq_of_finite(
        self, level: NDArray[np.float64], finite: NDArray[np.bool_], segments: Segments
    ) -> NDArray[np.int64]:
        """Sequence numbers of the levels counting only finite ones (the others' are
        meaningless); notes the last finite level of each index."""
        finite_sorted = finite[segments.order]
        kept: NDArray[np.int64] = np.cumsum(finite_sorted) - finite_sorted  # finite before
        first = self._seq[segments.index] + 1 - kept[segments.start]
        seq = np.empty(level.size, dtype=np.int64)
        seq[segments.order] = kept + np.repeat(first, segments.length)
        self._seq[segments.index] += np.add.reduceat(finite_sorted.astype(np.int64), segments.start)
        position = np.arange(level.size)
        last_finite = np.maximum.reduceat(np.where(finite_sorted, position, -1), segments.start)
        some = last_finite >= segments.start  # the segment has a finite level
        self._last_good[segments.index[some]] = level[segments.order[last_finite[some]]]
        return seq


def _read_only(array: NDArray[Any]) -> NDArray[Any]:
    view = array.view()
    view.flags.writeable = False
    return view


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
