"""``Columnar``: take, concat and empty derived from a dataclass's array fields."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from engine.core.columnar import Columnar


@dataclass(frozen=True)
class _Rows(Columnar):
    label: str
    key: NDArray[np.int32]
    value: NDArray[np.float64]
    extra: NDArray[np.int64] | None = None
    count: int = 0


def _rows(keys: list[int], extra: bool = False, label: str = "a") -> _Rows:
    key = np.array(keys, dtype=np.int32)
    more = np.array(keys, dtype=np.int64) * 10 if extra else None
    return _Rows(label, key, np.asarray(key, dtype=np.float64) * 0.5, more)


def test_columns_read_from_annotations() -> None:
    names = [(c.name, c.dtype, c.optional) for c in _Rows.column_fields()]
    assert names == [
        ("key", np.dtype(np.int32), False),
        ("value", np.dtype(np.float64), False),
        ("extra", np.dtype(np.int64), True),
    ]


def test_take_selects_rows_of_every_column_and_keeps_other_fields() -> None:
    rows = _rows([1, 2, 3], extra=True, label="x")
    got = rows.take(np.array([True, False, True]))
    assert (got.label, got.key.tolist(), got.value.tolist()) == ("x", [1, 3], [0.5, 1.5])
    assert got.extra is not None and got.extra.tolist() == [10, 30]
    assert rows.take(slice(1, 2)).key.tolist() == [2]
    assert _rows([1, 2]).take(np.array([1])).extra is None


def test_concat_keeps_optional_column_only_when_every_part_has_it() -> None:
    both = _Rows.concat([_rows([1], extra=True, label="first"), _rows([2, 3], extra=True)])
    assert len(both) == 3 and both.label == "first"
    assert both.extra is not None and both.extra.tolist() == [10, 20, 30]
    assert _Rows.concat([_rows([1], extra=True), _rows([2])]).extra is None


def test_concat_casts_to_the_declared_dtype() -> None:
    wide = _Rows("w", np.array([7], dtype=np.int64), np.array([1.0]))
    assert _Rows.concat([wide, _rows([8])]).key.dtype == np.int32


def test_empty_has_declared_dtypes_and_no_optional_columns() -> None:
    empty = _Rows.empty(label="e")
    assert len(empty) == 0 and empty.label == "e" and empty.extra is None
    assert (empty.key.dtype, empty.value.dtype) == (np.dtype(np.int32), np.dtype(np.float64))
    assert len(_Rows.concat([_rows([])])) == 0
