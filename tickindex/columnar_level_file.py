"""A Parquet or Arrow level file (``replay --out levels.parquet``) read back as ``Levels``.

Columns ``ts,index,level,seq,security`` as ``consumers.columnar_levels`` writes them; ``ts`` may
also be a ``timestamp`` (``Levels.to_arrow`` writes ``ts_event`` so), and the codes plain or
dictionary-encoded strings. Imported only for such a file: it needs pyarrow.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as pa_ipc
import pyarrow.parquet as pq
from numpy.typing import NDArray

from engine.core.errors import InputFileError
from engine.core.file_formats import ColumnarFormat
from tickindex.levels import Levels

__all__ = ["read_columnar_levels"]

_TIME_NAMES = ("ts", "ts_event")
_OTHER_NAMES = ("index", "level", "seq", "security")


def read_columnar_levels(path: str, kind: ColumnarFormat) -> Levels:
    """The rows of a Parquet (``kind`` ``"parquet"``) or Arrow IPC file (``"arrow"``,
    ``"arrows"``), in file order.

    Raises
    ------
    InputFileError
        When the file cannot be read, lacks a column, or a column has another type.
    """
    table = _read(path, kind)
    time_name = next((name for name in _TIME_NAMES if name in table.column_names), None)
    missing = [name for name in _OTHER_NAMES if name not in table.column_names]
    if time_name is None or missing:
        absent = ", ".join(([] if time_name else ["ts"]) + missing)
        raise InputFileError(path, None, f"not a level file: no column {absent}")
    return Levels(
        ts_event=_integers(path, table.column(time_name), time_name),
        index=_codes(path, table.column("index"), "index"),
        level=_floats(path, table.column("level")),
        seq=_integers(path, table.column("seq"), "seq"),
        security=_codes(path, table.column("security"), "security"),
    )


def _read(path: str, kind: ColumnarFormat) -> pa.Table:
    try:
        if kind == "parquet":
            return pq.read_table(path)
        with pa.memory_map(path) as source:
            if kind == "arrow":
                return pa_ipc.open_file(source).read_all()
            return pa_ipc.open_stream(source).read_all()
    except (pa.ArrowInvalid, OSError) as exc:
        problem = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise InputFileError(path, None, f"cannot read the level file: {problem}") from None


def _integers(path: str, column: pa.ChunkedArray, name: str) -> NDArray[np.int64]:
    kind = column.type
    if pa.types.is_timestamp(kind) and kind.unit == "ns":
        column = column.cast(pa.int64())
    elif not pa.types.is_integer(kind):
        raise InputFileError(path, None, f"column {name} must be integers, not {kind}")
    _no_nulls(path, column, name)
    return np.asarray(column.to_numpy(), dtype=np.int64)


def _floats(path: str, column: pa.ChunkedArray) -> NDArray[np.float64]:
    if not pa.types.is_floating(column.type):
        raise InputFileError(path, None, f"column level must be float64, not {column.type}")
    _no_nulls(path, column, "level")
    return np.asarray(column.to_numpy(), dtype=np.float64)


def _codes(path: str, column: pa.ChunkedArray, name: str) -> NDArray[np.str_]:
    """The codes as a numpy string array, decoded through their dictionary (a missing code
    is empty, as in a CSV level file)."""
    kind = column.type.value_type if pa.types.is_dictionary(column.type) else column.type
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        raise InputFileError(path, None, f"column {name} must be strings, not {column.type}")
    encoded = column if pa.types.is_dictionary(column.type) else pc.dictionary_encode(column)
    parts = [np.empty(0, dtype=np.str_)]
    for chunk in encoded.chunks:
        values = np.array([*pc.fill_null(chunk.dictionary, "").to_pylist(), ""], dtype=np.str_)
        rows = pc.fill_null(chunk.indices, len(values) - 1).to_numpy()
        parts.append(values[rows])
    return np.concatenate(parts)


def _no_nulls(path: str, column: pa.ChunkedArray, name: str) -> None:
    if column.null_count:
        row = int(pc.index(pc.is_null(column), True).as_py()) + 1
        raise InputFileError(path, row, f"column {name} is empty")
