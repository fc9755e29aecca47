"""Level files in Parquet or Arrow IPC, written in row groups straight from ``LevelColumns``.

Columns as in a CSV level file: ``ts`` (int64 nanoseconds), ``index`` and ``security``
(dictionary-encoded text), ``level`` (float64, the exact values), ``seq`` (int64). Levels are
buffered up to ``group_rows`` rows and written as one row group (Parquet) or record batch
(Arrow), so memory stays bounded. Compression: zstd unless the name says otherwise
(``levels.snappy.parquet``, ``levels.lz4.arrow``, ``levels.none.parquet``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.ipc as pa_ipc
import pyarrow.parquet as pq

from consumers.closing import ClosingSink
from consumers.levelfile import LevelFileWriter
from engine.core.errors import InputFileError
from engine.core.file_formats import columnar_format
from engine.kernel.columns import LevelColumns
from engine.refdata.universe import Universe

GROUP_ROWS = 1 << 20
"""Rows per Parquet row group (Arrow record batch)."""

_CODES = pa.dictionary(pa.int32(), pa.string())
LEVEL_SCHEMA = pa.schema(
    [
        ("ts", pa.int64()),
        ("index", _CODES),
        ("level", pa.float64()),
        ("seq", pa.int64()),
        ("security", _CODES),
    ]
)
_COMPRESSIONS = {"zstd", "snappy", "lz4", "gzip", "brotli", "none"}


def compression_of(path: str | Path) -> str | None:
    """The codec named before the suffix (``x.snappy.parquet``), default zstd; None: none."""
    stem_suffix = Path(str(path)).with_suffix("").suffix.lower().lstrip(".")
    codec = stem_suffix if stem_suffix in _COMPRESSIONS else "zstd"
    return None if codec == "none" else codec


class ColumnarLevelWriter(ClosingSink):
    """A ``LevelSink`` writing levels to a Parquet or Arrow IPC file.

    Parameters
    ----------
    path : str or Path
        ``.parquet``, ``.arrow``/``.feather`` (IPC file) or ``.arrows`` (IPC stream).
    universe : Universe
        Turns index and security ids back into codes.
    index_codes, security_codes : sequence of str, optional
        Codes to use instead of the universe's (currency variants extend both).
    group_rows : int
        Rows per row group.

    Raises
    ------
    InputFileError
        When the file cannot be created.
    """

    def __init__(
        self,
        path: str | Path,
        universe: Universe,
        *,
        index_codes: Sequence[str] | None = None,
        security_codes: Sequence[str] | None = None,
        group_rows: int = GROUP_ROWS,
    ) -> None:
        fmt = columnar_format(path)
        if fmt is None:
            raise InputFileError(str(path), None, "not a .parquet, .arrow or .arrows file")
        self.path = Path(path)
        self.format = fmt
        self.group_rows = group_rows
        self.rows_written = 0
        self._index_codes = pa.array(index_codes or universe.index_codes, type=pa.string())
        self._security_codes = pa.array(security_codes or universe.securities, type=pa.string())
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0
        codec = compression_of(path)
        try:
            if fmt == "parquet":
                self._parquet: pq.ParquetWriter | None = pq.ParquetWriter(
                    str(path), LEVEL_SCHEMA, compression=codec or "none"
                )
                self._ipc = None
            else:
                options = pa_ipc.IpcWriteOptions(compression=codec)
                opener = pa_ipc.new_file if fmt == "arrow" else pa_ipc.new_stream
                self._ipc = opener(str(path), LEVEL_SCHEMA, options=options)
                self._parquet = None
        except (OSError, pa.ArrowInvalid) as exc:
            raise InputFileError(str(path), None, f"cannot write: {exc}") from exc

    def write(self, levels: LevelColumns) -> None:
        """Append one batch of levels (written out once ``group_rows`` are pending)."""
        if len(levels) == 0:
            return
        self._pending.append(self._record_batch(levels))
        self._pending_rows += len(levels)
        if self._pending_rows >= self.group_rows:
            self._flush()

    def _record_batch(self, levels: LevelColumns) -> pa.RecordBatch:
        index = pa.DictionaryArray.from_arrays(
            pa.array(levels.index.astype(np.int32, copy=False)), self._index_codes
        )
        security = pa.DictionaryArray.from_arrays(
            pa.array(levels.security.astype(np.int32)), self._security_codes
        )
        return pa.RecordBatch.from_arrays(
            [
                pa.array(levels.ts_event),
                index,
                pa.array(levels.level),
                pa.array(levels.seq),
                security,
            ],
            schema=LEVEL_SCHEMA,
        )

    def _flush(self) -> None:
        if not self._pending:
            return
        table = pa.Table.from_batches(self._pending, schema=LEVEL_SCHEMA)
        if self._parquet is not None:
            self._parquet.write_table(table, row_group_size=max(self._pending_rows, 1))
        elif self._ipc is not None:
            self._ipc.write_batch(table.combine_chunks().to_batches()[0])
        self.rows_written += self._pending_rows
        self._pending, self._pending_rows = [], 0

    def close(self) -> None:
        """Write what is pending and finish the file (its footer)."""
        self._flush()
        if self._parquet is not None:
            self._parquet.close()
        if self._ipc is not None:
            self._ipc.close()


def open_level_writer(
    path: str | Path,
    universe: Universe,
    *,
    index_codes: Sequence[str] | None = None,
    security_codes: Sequence[str] | None = None,
) -> ColumnarLevelWriter | LevelFileWriter:
    """The writer of a level file by its name: Parquet or Arrow (``ColumnarLevelWriter``),
    else CSV or JSON Lines (``LevelFileWriter``, also ``-`` for standard output)."""
    if columnar_format(path) is not None:
        return ColumnarLevelWriter(
            path, universe, index_codes=index_codes, security_codes=security_codes
        )
    return LevelFileWriter(path, universe, index_codes=index_codes, security_codes=security_codes)
