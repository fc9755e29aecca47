"""``Columnar``: take, concat and empty derived from a frozen dataclass's numpy array fields.

A column type is a frozen dataclass whose fields annotated ``NDArray[dtype]`` (optionally
``| None``) are parallel columns, one element per row; any other field (a code table, a
counter) is carried along unchanged. The column fields and their dtypes are read once per
class from its annotations, so each operation is one numpy call per column, no Python per row.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Sequence
from typing import Any, ClassVar, NamedTuple, Self

import numpy as np
from numpy.typing import NDArray

Rows = NDArray[np.intp] | NDArray[np.bool_] | slice


class _Column(NamedTuple):
    name: str
    dtype: np.dtype[Any]
    optional: bool


class Columnar:
    """Mixin for a frozen dataclass of parallel numpy columns (see the module docstring).

    Optional columns (``NDArray[...] | None``) stay None in ``take`` and survive ``concat``
    only when every part has them; ``empty`` leaves them None.
    """

    _columns: ClassVar[tuple[_Column, ...]]

    @classmethod
    def column_fields(cls) -> tuple[_Column, ...]:
        """Name, dtype and optionality of each column field, in field order."""
        columns: tuple[_Column, ...] | None = cls.__dict__.get("_columns")
        if columns is None:
            hints = typing.get_type_hints(cls)
            fields = dataclasses.fields(cls)  # type: ignore[arg-type]
            found = (_column(f.name, hints[f.name]) for f in fields)
            columns = tuple(column for column in found if column is not None)
            cls._columns = columns
        return columns

    def __len__(self) -> int:
        return int(getattr(self, self.column_fields()[0].name).size)

    def take(self, rows: Rows) -> Self:
        """The rows selected by an index array, boolean mask or slice (views), order kept."""
        columns = {}
        for column in self.column_fields():
            values = getattr(self, column.name)
            columns[column.name] = None if values is None else values[rows]
        return dataclasses.replace(self, **columns)  # type: ignore[type-var]

    @classmethod
    def concat(cls, parts: Sequence[Self]) -> Self:
        """Join batches in order; other fields come from the first part (``empty()`` if none)."""
        if not parts:
            return cls.empty()
        columns: dict[str, NDArray[Any] | None] = {}
        for column in cls.column_fields():
            values = [getattr(part, column.name) for part in parts]
            if column.optional and any(v is None for v in values):
                columns[column.name] = None
            else:
                columns[column.name] = np.concatenate(values).astype(column.dtype, copy=False)
        return dataclasses.replace(parts[0], **columns)  # type: ignore[type-var]

    @classmethod
    def empty(cls, **others: Any) -> Self:
        """No rows; ``others`` gives the non-column fields that have no default."""
        columns: dict[str, Any] = {
            column.name: None if column.optional else np.empty(0, dtype=column.dtype)
            for column in cls.column_fields()
        }
        return cls(**columns, **others)


def _column(name: str, hint: Any) -> _Column | None:
    """The column a field annotation declares, None for a field that is not a column."""
    optional = False
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        members = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        if len(members) != 1:
            return None
        optional, hint = True, members[0]
    if typing.get_origin(hint) is not np.ndarray:
        return None
    (scalar,) = typing.get_args(typing.get_args(hint)[-1])
    return _Column(name, np.dtype(scalar), optional)
