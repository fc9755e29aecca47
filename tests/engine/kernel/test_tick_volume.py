"""Tick volumes: screening keeps the tick and drops only the unusable volume (counted), and the
volume column travels with its ticks through take, slice and concat."""

from __future__ import annotations

import numpy as np

from engine.core.bounds import MAX_VOLUME
from engine.kernel.columns import TickColumns
from engine.kernel.volume import screen_volume, volume_column


def test_usable_volumes_are_kept_as_they_are() -> None:
    volume = np.array([0.0, 100.0, 2_500.0, MAX_VOLUME, np.nan])
    screened, count = screen_volume(volume, absent=1)
    assert screened is volume and count == 0


def test_negative_non_finite_and_absurd_volumes_become_nan_and_are_counted() -> None:
    volume = np.array([100.0, -1.0, np.inf, -np.inf, MAX_VOLUME * 10, np.nan, 300.0, np.nan])
    screened, count = screen_volume(volume, absent=1)
    np.testing.assert_array_equal(
        screened, [100.0, np.nan, np.nan, np.nan, np.nan, np.nan, 300.0, np.nan]
    )
    assert count == 5  # the given NaN counts, the one absent volume does not
    assert volume[1] == -1.0  # the input is left alone


def test_volume_column_of_decoded_ticks() -> None:
    assert volume_column([None, None]) == (None, 0)
    assert volume_column([]) == (None, 0)
    column, count = volume_column([None, 200.0, -5.0, 1e300])
    assert column is not None
    np.testing.assert_array_equal(column, [np.nan, 200.0, np.nan, np.nan])
    assert count == 2


def ticks(n: int, volume: bool) -> TickColumns:
    return TickColumns(
        ts_event=np.arange(1, n + 1, dtype=np.int64),
        security=np.zeros(n, dtype=np.int64),
        price=np.full(n, 10.0),
        volume=np.arange(n, dtype=np.float64) * 100 if volume else None,
    )


def test_take_and_slice_keep_the_volume() -> None:
    batch = ticks(5, volume=True)
    sliced = batch.slice(1, 3)
    assert sliced.volume is not None
    np.testing.assert_array_equal(sliced.volume, [100.0, 200.0])
    taken = batch.take(np.array([True, False, True, False, True]))
    assert taken.volume is not None
    np.testing.assert_array_equal(taken.volume, [0.0, 200.0, 400.0])
    assert TickColumns.empty().volume is None


def test_concat_keeps_volumes_when_only_some_batches_have_them() -> None:
    joined = TickColumns.concat([ticks(2, volume=True), ticks(3, volume=False)])
    assert joined.volume is not None
    np.testing.assert_array_equal(joined.volume, [0.0, 100.0, np.nan, np.nan, np.nan])
    assert TickColumns.concat([ticks(2, volume=False), ticks(1, volume=False)]).volume is None
    both = TickColumns.concat([ticks(2, volume=True), ticks(1, volume=True)])
    assert both.volume is not None and both.volume.dtype == np.float64
    np.testing.assert_array_equal(both.volume, [0.0, 100.0, 0.0])
