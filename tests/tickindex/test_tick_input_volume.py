"""Volumes given through the public API's tick input: optional, checked, screened."""

from __future__ import annotations

import numpy as np
import pytest

from engine.refdata.builtin import load_builtin_universe
from tickindex.tick_input import tick_columns

UNIVERSE = load_builtin_universe()
TS = [1, 2, 3, 4]
CODES = ["0700", "0005", "0700", "0005"]
PRICES = [401.2, 61.0, 401.4, 61.2]


def test_without_volume_the_column_is_none() -> None:
    columns, _ = tick_columns(UNIVERSE, TS, CODES, PRICES)
    assert columns.volume is None


def test_volumes_are_floats_and_unusable_ones_become_nan() -> None:
    columns, _ = tick_columns(UNIVERSE, TS, CODES, PRICES, volume=[100, -5, np.nan, 1e20])
    assert columns.volume is not None and columns.volume.dtype == np.float64
    np.testing.assert_array_equal(columns.volume, [100.0, np.nan, np.nan, np.nan])
    np.testing.assert_array_equal(columns.price, PRICES)


def test_volume_of_another_type_or_length_is_refused() -> None:
    with pytest.raises(TypeError, match="volume must be numbers"):
        tick_columns(UNIVERSE, TS, CODES, PRICES, volume=["a", "b", "c", "d"])
    with pytest.raises(ValueError, match="volume must be 1-d"):
        tick_columns(UNIVERSE, TS, CODES, PRICES, volume=[1.0, 2.0])
