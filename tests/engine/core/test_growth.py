"""``engine.core.growth.appended``: np.append in amortised O(k), earlier views untouched."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.core.growth import appended


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 70), max_size=30))
def test_equals_np_append_and_keeps_earlier_views(counts: list[int]) -> None:
    array = np.arange(3, dtype=np.int64)
    history = [(array, array.copy())]
    for step, count in enumerate(counts):
        expected = np.append(array, np.full(count, -step, dtype=np.int64))
        array = appended(array, count, -step)
        np.testing.assert_array_equal(array, expected)
        assert array.flags.writeable
        history.append((array, array.copy()))
    for view, values in history[:-1]:
        np.testing.assert_array_equal(view, values)  # later appends wrote past their end


def test_appends_into_spare_room_then_doubles() -> None:
    array = appended(np.zeros(100), 1, np.nan)
    again = appended(array, 5, 1.0)
    buffer = again.base
    assert buffer is not None and buffer is array.base  # no copy
    assert again.size == 106 and np.isnan(again[100]) and (again[101:] == 1.0).all()
    big = appended(again, buffer.size, 2.0)  # past the capacity: a new buffer
    assert big.base is not None and big.base is not buffer and big.base.size >= 2 * big.size
    np.testing.assert_array_equal(big[:106], again)


def test_arrays_it_does_not_own_are_copied() -> None:
    mine = np.zeros(10)
    grown = appended(mine[:4], 2, 7.0)  # a prefix view of someone else's array
    assert (mine == 0.0).all() and grown.tolist() == [0, 0, 0, 0, 7, 7]
    read_only = appended(np.zeros(3), 1, 1.0).view()
    read_only.flags.writeable = False
    buffer = read_only.base
    assert buffer is not None
    before = buffer.tobytes()
    copied = appended(read_only, 1, 5.0)  # a read-only view is never written past
    assert copied.base is not buffer and copied.tolist() == [0, 0, 0, 1, 5]
    assert buffer.tobytes() == before
    assert appended(np.array([], dtype=np.int32), 0, 1).dtype == np.int32
