"""``engine.kernel.segmented`` against ``run_index`` segment by segment, on edge cases."""

from __future__ import annotations

import numpy as np
import pytest

from engine.kernel import segmented
from engine.kernel.accumulation import ANCHOR_EVERY, ExactLevel, run_index
from engine.kernel.segmented import FEW_SEGMENTS, group_by_index, run_segments
from tests.support.seed import SEED


def test_group_by_index_ranks_each_pair_within_its_index_in_tick_order() -> None:
    segments = group_by_index(np.array([3, 1, 3, 3, 0, 1], dtype=np.uint16), 5)
    assert segments.index.tolist() == [0, 1, 3]
    assert segments.start.tolist() == [0, 1, 3]
    assert segments.length.tolist() == [1, 2, 3]
    assert segments.order.tolist() == [4, 1, 5, 0, 2, 3]
    assert segments.rank().tolist() == [0, 0, 1, 2, 0, 1]


def exact_for(index: int) -> ExactLevel:
    return lambda tick: 1000.0 + index + tick / 8.0  # any function of the stream will do


@pytest.mark.parametrize("n_indices", [FEW_SEGMENTS - 1, 400])
def test_run_segments_is_bitwise_run_index_on_each_segment(n_indices: int) -> None:
    """Carried levels negative, zero, infinite or NaN, peaks NaN or huge, anchors at any
    point: every level, carried level and peak bitwise those of ``run_index``."""
    rng = np.random.default_rng(SEED)
    n_pairs = 6_000
    pair_index = rng.integers(0, n_indices, n_pairs).astype(np.uint16)
    deltas = rng.normal(0.0, 5.0, n_pairs)
    deltas[rng.random(n_pairs) < 0.001] = -2_000.0  # collapses
    levels = rng.uniform(50.0, 2_000.0, n_indices)
    peaks = levels * rng.choice([1.0, 1.5, 20.0], n_indices)
    odd = rng.choice(n_indices, n_indices // 5, replace=False)
    levels[odd] = rng.choice([-100.0, 0.0, -0.0, np.inf, np.nan, 1e-300], odd.size)
    peaks[odd[::2]] = np.nan
    computed = rng.integers(0, 3 * ANCHOR_EVERY, n_indices)
    computed[::3] = ANCHOR_EVERY - rng.integers(0, 20, computed[::3].size)  # anchors inside
    ticks = np.arange(n_pairs, dtype=np.int64)
    segments = group_by_index(pair_index, n_indices)
    first_seq = computed[segments.index] + 1

    want = np.empty(n_pairs)
    want_levels, want_peaks = levels.copy(), peaks.copy()
    with np.errstate(invalid="ignore", over="ignore"):
        for segment, index in enumerate(segments.index.tolist()):
            lo = int(segments.start[segment])
            pairs = segments.order[lo : lo + int(segments.length[segment])]
            want[pairs], want_levels[index], want_peaks[index] = run_index(
                float(levels[index]),
                float(peaks[index]),
                deltas[pairs],
                first_seq=int(first_seq[segment]),
                ticks=ticks[pairs],
                exact=exact_for(index),
            )
        got, all_finite = run_segments(
            levels,
            peaks,
            deltas,
            pair_index,
            segments,
            first_seq=first_seq,
            ticks=ticks,
            exact_for=exact_for,
        )

    np.testing.assert_array_equal(got.view(np.uint64), want.view(np.uint64))
    np.testing.assert_array_equal(levels.view(np.uint64), want_levels.view(np.uint64))
    np.testing.assert_array_equal(peaks.view(np.uint64), want_peaks.view(np.uint64))
    assert all_finite == bool(np.isfinite(want).all())


@pytest.mark.parametrize("columns", [3, segmented.ROW_BY_ROW_COLUMNS + 5])
def test_running_sums_are_bitwise_a_cumsum_down_each_column(columns: int) -> None:
    rng = np.random.default_rng(SEED)
    grid = rng.normal(0.0, 1.0, (16, columns)) * 10.0 ** rng.integers(-8, 9, (16, columns))
    want = np.cumsum(grid, axis=0)
    segmented._running_sums(grid)
    np.testing.assert_array_equal(grid.view(np.uint64), want.view(np.uint64))
