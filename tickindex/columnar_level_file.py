"""A Parquet, Arrow or CSV level file (``replay --out levels.parquet``) read back as
``CodedLevels``, through pyarrow.

Columns ``ts,index,level,seq,security`` as ``consumers.columnar_levels`` writes them; ``ts`` may
also be a ``timestamp`` (``Levels.to_arrow`` writes ``ts_event`` so), and the codes plain or
dictionary-encoded strings, numbered from the file's dictionaries (no string per row).
Imported only for such a file: it needs pyarrow.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.ipc as pa_ipc
import pyarrow.parquet as pq
from numpy.typing import NDArray

from engine.core.errors import InputFileError
from engine.core.file_formats import ColumnarFormat
from tickindex.coded_levels import CodedLevels

__all__ = ["read_columnar_levels"]

_TIME_NAMES = ("ts", "ts_event")
_OTHER_NAMES = ("index", "level", "seq", "security")
_CSV_COLUMNS = ("ts", *_OTHER_NAMES)


def read_columnar_levels(path: str, kind: ColumnarFormat) -> CodedLevels:
    """The rows of a Parquet (``kind`` ``"parquet"``) or Arrow IPC file (``"arrow"``,
    ``"arrows"``), in file order.

    Raises
    ------
    InputFileError
        When the file cannot be read, lacks a column, or a column has another type.
    """
    return levels_from_table(path, _read(path, kind))


def read_csv_levels(path: str) -> CodedLevels | None:
    """The rows of a CSV level file (optionally ``.gz``; its header checked already) through
    Arrow's CSV reader: typed columns, codes dictionary-encoded, no Python step per row. None
    when a row is not a level (a missing or extra cell, a number that does not parse, invalid
    UTF-8): read it row by row then, to name the line."""
    codes = pa.dictionary(pa.int32(), pa.string())
    types = {"ts": pa.int64(), "index": codes, "level": pa.float64(), "seq": pa.int64()}
    convert = pacsv.ConvertOptions(
        column_types={**types, "security": codes},
        null_values=[],
        strings_can_be_null=False,
        check_utf8=True,
    )
    try:
        table = pacsv.read_csv(path, convert_options=convert)
    except (pa.ArrowInvalid, OSError):
        return None
    if table.column_names != list(_CSV_COLUMNS):
        return None
    return levels_from_table(path, table)


def levels_from_table(path: str, table: pa.Table) -> CodedLevels:
    """A table with the level columns as ``CodedLevels`` (``path`` names it in errors).

    Raises
    ------
    InputFileError
        When a column is missing or has another type.
    """
    time_name = next((name for name in _TIME_NAMES if name in table.column_names), None)
    missing = [name for name in _OTHER_NAMES if name not in table.column_names]
    if time_name is None or missing:
        absent = ", ".join(([] if time_name else ["ts"]) + missing)
        raise InputFileError(path, None, f"not a level file: no column {absent}")
    index_codes, index = _codes(path, table.column("index"), "index")
    security_codes, security = _codes(path, table.column("security"), "security")
    return CodedLevels(
        ts_event=_integers(path, table.column(time_name), time_name),
        index=index,
        level=_floats(path, table.column("level")),
        seq=_integers(path, table.column("seq"), "seq"),
        security=security,
        index_codes=index_codes,
        security_codes=security_codes,
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
    if not (pa.types.is_integer(kind) or (pa.types.is_timestamp(kind) and kind.unit == "ns")):
        raise InputFileError(path, None, f"column {name} must be integers, not {kind}")
    _no_nulls(path, column, name)
    try:
        signed = column.cast(pa.int64())  # a safe cast: an unsigned value past int64 raises
    except pa.ArrowInvalid:
        raise InputFileError(path, None, f"column {name} has a value outside int64") from None
    return np.asarray(signed.to_numpy(), dtype=np.int64)


def _floats(path: str, column: pa.ChunkedArray) -> NDArray[np.float64]:
    if not pa.types.is_floating(column.type):
        raise InputFileError(path, None, f"column level must be float64, not {column.type}")
    _no_nulls(path, column, "level")
    return np.asarray(column.to_numpy(), dtype=np.float64)


def _codes(
    path: str, column: pa.ChunkedArray, name: str
) -> tuple[NDArray[np.str_], NDArray[np.intp]]:
    """The distinct codes, sorted, and each row's position among them, from the chunks'
    dictionaries (a missing code is empty, as in a CSV level file)."""
    kind = column.type.value_type if pa.types.is_dictionary(column.type) else column.type
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        raise InputFileError(path, None, f"column {name} must be strings, not {column.type}")
    encoded = column if pa.types.is_dictionary(column.type) else pc.dictionary_encode(column)
    tables, rows = [], []
    for chunk in encoded.chunks:
        table = np.array([*pc.fill_null(chunk.dictionary, "").to_pylist(), ""], dtype=np.str_)
        tables.append(table)
        rows.append(pc.fill_null(chunk.indices, len(table) - 1).to_numpy())
    codes = np.unique(np.concatenate([np.empty(0, np.str_), *tables]))
    parts = [np.searchsorted(codes, table)[at] for table, at in zip(tables, rows, strict=True)]
    return codes, np.concatenate([np.empty(0, np.intp), *parts])


def _no_nulls(path: str, column: pa.ChunkedArray, name: str) -> None:
    if column.null_count:
        row = int(pc.index(pc.is_null(column), True).as_py()) + 1
        raise InputFileError(path, row, f"column {name} is empty")
