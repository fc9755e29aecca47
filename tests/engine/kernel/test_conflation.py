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
