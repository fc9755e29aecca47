"""Level files in Parquet or Arrow IPC, written in row groups straight from ``LevelColumns``.

Columns as in a CSV level file: ``ts`` (int64 nanoseconds), ``index`` and ``security``
(dictionary-encoded text), ``level`` (float64, the exact values), ``seq`` (int64). Levels are
buffered up to ``group_rows`` rows and handed, as the engine's own arrays, to a thread of its own
that turns them into Arrow and writes them as one row group (Parquet) or record batch (Arrow)
while the engine goes on, so memory stays bounded (``IN_FLIGHT`` groups handed over and one
filling). Compression: the codec the name says (``levels.zstd.parquet``, ``levels.snappy.parquet``,
``levels.lz4.arrow``, ``levels.none.parquet``), else zstd; in Parquet, zstd for times and levels
and lz4 for the other columns (``PARQUET_CODECS``: as small, and faster).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.ipc as pa_ipc
import pyarrow.parquet as pq

from consumers.closing import ClosingSink
from engine.core.errors import InputFileError
from engine.core.file_formats import columnar_format
from engine.kernel.columns import LevelColumns
from engine.refdata.universe import Universe

GROUP_ROWS = 1 << 18
"""Rows per Parquet row group (Arrow record batch)."""
IN_FLIGHT = 2
"""Groups handed to the writing thread and not written yet, at most (the engine waits)."""
ZSTD_LEVEL = -3
"""zstd's level: a fast one, 20% less CPU than the default for a file 7% smaller (with the
layout below: ``tickindex bench --replay-io``)."""
PARQUET_CODECS = {"ts": "zstd", "level": "zstd", "index": "lz4", "security": "lz4", "seq": "lz4"}
"""Codec per column of a Parquet level file whose name names none: lz4 is as small as zstd on
the codes and the sequence numbers, and faster."""
PARQUET_ZSTD_LEVELS = {"ts": ZSTD_LEVEL, "level": -7}
"""zstd's level per zstd column of ``PARQUET_CODECS``. Measured on 8.6M levels: all columns
zstd at -3 take 0.57 s of CPU (81 MB), these codecs at -3 0.52 s (83 MB); the levels' split
bytes at -7 rather than -3 take 0.14 s not 0.18 s for 3 MB more (86 MB in all)."""

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
PARQUET_LAYOUT: dict[str, Any] = {
    # Dictionary pages only for the codes: trying them on the numbers (a hash insert per value
    # until the dictionary overflows) took a third of the write.
    "use_dictionary": ["index", "security"],
    # Numbers' bytes split by position compress better and faster (levels, and sequence
    # numbers, which interleave the indices: their deltas are not small); times repeat per tick
    # and ascend, which plain zstd takes best (smaller and faster than deltas). Measured on
    # 8.6M levels: 0.58 s of CPU, 81 MB, against 0.72 s, 87 MB with deltas for both.
    "column_encoding": {
        "ts": "PLAIN",
        "seq": "BYTE_STREAM_SPLIT",
        "level": "BYTE_STREAM_SPLIT",
    },
    "write_statistics": ["ts"],
}
"""How level columns are laid out in Parquet (measured with ``tickindex bench --replay-io``)."""
_COMPRESSIONS = {"zstd", "snappy", "lz4", "gzip", "brotli", "none"}


def compression_of(path: str | Path) -> str | None:
    """The codec named before the suffix (``x.snappy.parquet``), default zstd; None: none."""
    codec = _named_codec(path) or "zstd"
    return None if codec == "none" else codec


def _named_codec(path: str | Path) -> str | None:
    stem_suffix = Path(str(path)).with_suffix("").suffix.lower().lstrip(".")
    return stem_suffix if stem_suffix in _COMPRESSIONS else None


def parquet_compression(path: str | Path) -> dict[str, Any]:
    """``ParquetWriter``'s compression arguments for a level file named ``path``: the codec
    its name says for every column (zstd at ``ZSTD_LEVEL``), else ``PARQUET_CODECS`` (zstd at
    ``PARQUET_ZSTD_LEVELS``)."""
    if _named_codec(path) is None:
        return {"compression": PARQUET_CODECS, "compression_level": PARQUET_ZSTD_LEVELS}
    codec = compression_of(path)
    level = {"compression_level": ZSTD_LEVEL} if codec == "zstd" else {}
    return {"compression": codec or "none", **level}


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
        self._pending: list[LevelColumns] = []
        self._pending_rows = 0
        # Building Arrow arrays, encoding and compressing run on this thread (Arrow's C++
        # without the GIL) while the engine computes the next groups on another core.
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="level-writer")
        self._writing: deque[Future[None]] = deque()
        codec = compression_of(path)
        try:
            if fmt == "parquet":
                self._parquet: pq.ParquetWriter | None = pq.ParquetWriter(
                    str(path), LEVEL_SCHEMA, **parquet_compression(path), **PARQUET_LAYOUT
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
        self._pending.append(levels)
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
        """Hand the pending levels to the writing thread (once fewer than ``IN_FLIGHT`` groups
        wait there)."""
        if not self._pending:
            return
        while len(self._writing) >= IN_FLIGHT:
            self._wait()
        self._writing.append(self._thread.submit(self._write_group, self._pending))
        self.rows_written += self._pending_rows
        self._pending, self._pending_rows = [], 0

    def _write_group(self, group: list[LevelColumns]) -> None:
        """One row group (record batch) of ``group``: on the writing thread."""
        table = pa.Table.from_batches(
            [self._record_batch(levels) for levels in group], schema=LEVEL_SCHEMA
        )
        if self._parquet is not None:
            self._parquet.write_table(table, row_group_size=max(table.num_rows, 1))
        elif self._ipc is not None:
            self._ipc.write_batch(table.combine_chunks().to_batches()[0])

    def _wait(self) -> None:
        """Wait for the oldest group handed over; its error, if any, as ``InputFileError``."""
        if not self._writing:
            return
        writing = self._writing.popleft()
        try:
            writing.result()
        except (OSError, pa.ArrowException) as exc:
            for later in self._writing:  # the file is broken: no group after this one
                later.cancel()
            self._writing.clear()
            raise InputFileError(str(self.path), None, f"write failed: {exc}") from exc

    def close(self) -> None:
        """Write what is pending and finish the file (its footer)."""
        try:
            self._flush()
            while self._writing:
                self._wait()
        finally:
            self._thread.shutdown()
            if self._parquet is not None:
                self._parquet.close()
            if self._ipc is not None:
                self._ipc.close()
