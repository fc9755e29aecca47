"""Conflator: the last level of each index per interval of (monotone) event time."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.kernel.columns import LevelColumns
from engine.kernel.conflation import Conflator

SECOND = 1_000_000_000


def levels(ts: list[int], index: list[int]) -> LevelColumns:
    """Rows in the given order; level = 100 + row number, seq counts per index from 1."""
    idx = np.array(index, dtype=np.int32)
    seq = np.zeros(idx.size, dtype=np.int64)
    for k in set(index):
        seq[idx == k] = np.arange(1, np.count_nonzero(idx == k) + 1)
    return LevelColumns(
        ts_event=np.array(ts, dtype=np.int64),
        index=idx,
        level=100.0 + np.arange(idx.size, dtype=np.float64),
        seq=seq,
        security=np.arange(idx.size, dtype=np.int64) % 7,
    )


def rows_of(cols: LevelColumns) -> list[tuple[int, int, float, int, int]]:
    return list(
        zip(
            cols.ts_event.tolist(),
            cols.index.tolist(),
            cols.level.tolist(),
            cols.seq.tolist(),
            cols.security.tolist(),
            strict=True,
        )
    )


def reference_conflation(
    cols: LevelColumns, interval: int
) -> list[tuple[int, int, float, int, int]]:
    """Plain loop: monotone clock, keep the last row of each (index, clock interval)."""
    clock = None
    last: dict[tuple[int, int], int] = {}
    for i, (ts, k) in enumerate(zip(cols.ts_event.tolist(), cols.index.tolist(), strict=True)):
        clock = ts if clock is None else max(clock, ts)
        last[k, clock // interval] = i
    rows = rows_of(cols)
    return [rows[i] for i in sorted(last.values())]


def by_index(cols: LevelColumns) -> list[tuple[int, int, int, float, int, int]]:
    """Rows with their counts, sorted by index then seq."""
    counts = cols.count.tolist() if cols.count is not None else [1] * len(cols)
    rows = [(*row, n) for row, n in zip(rows_of(cols), counts, strict=True)]
    return sorted(
        (index, seq, ts, level, security, n) for ts, index, level, seq, security, n in rows
    )


def run(conflator: Conflator, cols: LevelColumns, cuts: list[int]) -> LevelColumns:
    bounds = [0, *cuts, len(cols)]
    out = [conflator.push(cols.take(np.arange(lo, hi))) for lo, hi in itertools.pairwise(bounds)]
    out.append(conflator.flush())
    return LevelColumns.concat(out)


def test_one_level_per_index_per_interval_the_last_one() -> None:
    ts = [0, 1, SECOND, 2 * SECOND - 1, 2 * SECOND, 2 * SECOND + 5, 5 * SECOND, 5 * SECOND + 1]
    index = [0, 1, 0, 1, 0, 0, 1, 1]
    cols = levels(ts, index)
    out = run(Conflator(2 * SECOND), cols, [])
    # interval 0: index 0 -> row 2, index 1 -> row 3; interval 1: index 0 -> row 5;
    # interval 2: index 1 -> row 7.
    assert out.level.tolist() == [102.0, 103.0, 105.0, 107.0]
    assert out.index.tolist() == [0, 1, 0, 1]
    bucket = out.ts_event // (2 * SECOND)
    pairs = list(zip(out.index.tolist(), bucket.tolist(), strict=True))
    assert len(pairs) == len(set(pairs))
    assert rows_of(out) == reference_conflation(cols, 2 * SECOND)


def test_quiet_index_is_released_by_a_later_event_of_another_index() -> None:
    conflator = Conflator(2 * SECOND)
    first = conflator.push(levels([SECOND // 2], [0]))
    assert len(first) == 0  # its interval is still open
    second = conflator.push(levels([SECOND], [1]))
    assert len(second) == 0  # same interval: still open
    later = levels([2 * SECOND + 100], [1])
    released = conflator.push(later)
    # Index 0 never ticked again, yet its level is out once the clock passed its interval.
    assert sorted(released.index.tolist()) == [0, 1]
    assert released.ts_event.tolist() == [SECOND // 2, SECOND]
    rest = conflator.flush()
    assert rest.ts_event.tolist() == [2 * SECOND + 100]
    assert len(conflator.flush()) == 0


def test_flush_releases_everything_held_and_resets() -> None:
    conflator = Conflator(10 * SECOND)
    cols = levels([1, 2, 3, 4, 5], [0, 1, 2, 0, 1])
    assert len(conflator.push(cols)) == 0
    out = conflator.flush()
    assert out.level.tolist() == [102.0, 103.0, 104.0]  # last of index 2, 0, 1 in row order
    assert out.index.tolist() == [2, 0, 1]
    assert len(conflator.flush()) == 0
    # After a flush the conflator keeps working with its clock.
    again = conflator.push(levels([11 * SECOND, 25 * SECOND], [0, 0]))
    assert again.ts_event.tolist() == [11 * SECOND]


def test_empty_push_releases_nothing() -> None:
    conflator = Conflator(SECOND)
    conflator.push(levels([0], [0]))
    assert len(conflator.push(LevelColumns.empty())) == 0
    assert len(conflator.flush()) == 1


def test_out_of_order_event_time_counts_in_the_current_interval() -> None:
    interval = 2 * SECOND
    # The third row is late (1.0 s after a 2.5 s row): on the monotone clock it is at 2.5 s.
    cols = levels([0, 2 * SECOND + SECOND // 2, SECOND, SECOND + 1, 3 * SECOND], [0, 0, 0, 0, 0])
    out = run(Conflator(interval), cols, [])
    clock = np.maximum.accumulate(cols.ts_event)
    kept_clock = clock[(out.level - 100.0).astype(np.intp)]
    bucket = kept_clock // interval
    assert bucket.tolist() == [0, 1]  # one level per interval of the monotone clock
    assert out.level.tolist() == [100.0, 104.0]  # the late rows were superseded in interval 1
    assert np.all(np.diff(out.seq) > 0)
    # Split right after the late row: still one level per monotone interval.
    split = run(Conflator(interval), cols, [3])
    assert rows_of(split) == rows_of(out)


def test_interval_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Conflator(0)
    with pytest.raises(ValueError):
        Conflator(-5)


@st.composite
def streams(draw: st.DrawFn) -> tuple[LevelColumns, int, list[int], list[int]]:
    interval = draw(st.integers(1, 50))
    n = draw(st.integers(0, 80))
    steps = draw(st.lists(st.integers(-30, 40), min_size=n, max_size=n))
    index = draw(st.lists(st.integers(0, 4), min_size=n, max_size=n))
    ts = (1000 + np.cumsum(np.array(steps, dtype=np.int64))).tolist()
    cuts_a = sorted(draw(st.lists(st.integers(0, n), max_size=10)))
    cuts_b = sorted(draw(st.lists(st.integers(0, n), max_size=10)))
    return levels(ts, index), interval, cuts_a, cuts_b


@pytest.mark.slow
@settings(derandomize=True, deadline=None, max_examples=300)
@given(streams())
def test_same_result_whatever_the_batch_split(
    case: tuple[LevelColumns, int, list[int], list[int]],
) -> None:
    cols, interval, cuts_a, cuts_b = case
    expected = reference_conflation(cols, interval)
    whole = run(Conflator(interval), cols, [])
    assert rows_of(whole) == expected
    assert rows_of(run(Conflator(interval), cols, cuts_a)) == expected
    assert rows_of(run(Conflator(interval), cols, cuts_b)) == expected
    # Never two levels of one index for one interval of the monotone clock.
    clock = np.maximum.accumulate(cols.ts_event) if len(cols) else cols.ts_event
    row = (whole.level - 100.0).astype(np.intp)
    keys = list(zip(whole.index.tolist(), (clock[row] // interval).tolist(), strict=True))
    assert len(keys) == len(set(keys))


def test_levels_released_before_the_interval_ends_never_happen() -> None:
    conflator = Conflator(SECOND)
    released: list[LevelColumns] = []
    for t in range(0, 10 * SECOND, SECOND // 4):
        out = conflator.push(levels([t], [t % 3]))
        # Everything released belongs to an interval strictly before the current clock's one.
        assert np.all(out.ts_event // SECOND < t // SECOND)
        released.append(out)
    released.append(conflator.flush())
    total = LevelColumns.concat(released)
    keys = zip(total.index.tolist(), (total.ts_event // SECOND).tolist(), strict=True)
    assert len(total) == len(set(keys))


def test_per_index_intervals_conflate_each_index_on_its_own_and_pass_zero_through() -> None:
    # index 0: every level; index 1: 1 s; index 2: 2 s.
    conflator = Conflator(np.array([0, SECOND, 2 * SECOND], dtype=np.int64))
    ts = [0, 1, 2, SECOND, SECOND + 1, 2 * SECOND + 1, 3 * SECOND]
    index = [0, 1, 2, 1, 0, 2, 1]
    out = run(conflator, levels(ts, index), [])
    # Rows: index 0 both (2 rows: 0 and 4), index 1 last of [0,1s) = row 1, of [1,2s) = row 3,
    # flushed row 6; index 2 last of [0,2s) = row 2, then row 5 flushed.
    assert (out.level - 100).astype(int).tolist() == [0, 1, 2, 3, 4, 5, 6]
    assert out.count is not None
    assert out.count.tolist() == [1, 1, 1, 1, 1, 1, 1]
    dense = levels([0, 1, 2, 3, SECOND + 5], [1, 1, 2, 1, 0])
    out = run(Conflator(np.array([0, SECOND, SECOND], dtype=np.int64)), dense, [])
    assert (out.level - 100).astype(int).tolist() == [2, 3, 4]
    assert out.count is not None
    assert out.count.tolist() == [1, 3, 1]  # row 3 stands for index 1's three levels


def test_counts_add_up_to_every_level_and_follow_across_batches() -> None:
    rng = np.random.default_rng(5)
    n = 500
    ts = np.sort(rng.integers(0, 20 * SECOND, n)).tolist()
    index = rng.integers(0, 4, n).tolist()
    cols = levels(ts, index)
    intervals = np.array([0, SECOND // 3, SECOND, 7 * SECOND], dtype=np.int64)
    whole = run(Conflator(intervals), cols, [])
    split = run(Conflator(intervals), cols, sorted(rng.integers(0, n, 12).tolist()))
    # A level held for a long interval may come out after a later one of a short interval:
    # the same levels and counts, each index's in tick order.
    assert by_index(split) == by_index(whole)
    for out in (whole, split):
        for k in range(4):
            assert np.all(np.diff(out.seq[out.index == k]) > 0)
    per_index = np.bincount(whole.index, weights=whole.count, minlength=4)
    assert per_index.tolist() == np.bincount(cols.index, minlength=4).tolist()
    # The scalar interval of replay gives what a vector of that interval gives.
    assert rows_of(run(Conflator(SECOND), cols, [])) == rows_of(
        run(Conflator(np.full(4, SECOND, dtype=np.int64)), cols, [])
    )


def test_held_levels_restored_into_a_new_conflator_continue_the_same() -> None:
    rng = np.random.default_rng(9)
    ts = np.sort(rng.integers(0, 10 * SECOND, 300)).tolist()
    cols = levels(ts, rng.integers(0, 3, 300).tolist())
    intervals = np.array([SECOND, 2 * SECOND, 0], dtype=np.int64)
    expected = run(Conflator(intervals), cols, [])
    first = Conflator(intervals)
    head = first.push(cols.take(np.arange(150)))
    assert len(first) > 0
    second = Conflator(intervals)
    second.restore(first.held())
    tail = run(second, cols.take(np.arange(150, 300)), [])
    assert by_index(LevelColumns.concat([head, tail])) == by_index(expected)


def test_restored_under_a_policy_passing_an_index_through_releases_its_held_level() -> None:
    first = Conflator(np.array([SECOND], dtype=np.int64))
    assert len(first.push(levels([1, 2, 3], [0, 0, 0]))) == 0
    passing = Conflator(np.zeros(1, dtype=np.int64))
    passing.restore(first.held())
    out = passing.push(levels([4], [0]))
    assert (out.level - 100).astype(int).tolist() == [2, 0]
    assert out.count is not None
    assert out.count.tolist() == [3, 1]


def test_release_lets_out_only_the_chosen_indices() -> None:
    conflator = Conflator(np.array([SECOND, SECOND], dtype=np.int64))
    conflator.push(levels([1, 2, 3], [0, 1, 0]))
    out = conflator.release(np.array([True, False]))
    assert out.index.tolist() == [0]
    assert out.count is not None
    assert out.count.tolist() == [2]
    assert conflator.flush().index.tolist() == [1]


def test_negative_per_index_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        Conflator(np.array([SECOND, -1], dtype=np.int64))
