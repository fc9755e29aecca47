"""Tick files in Parquet or Arrow IPC, streamed in bounded record batches as ``TickColumns``.

Columns as in a CSV tick file: ``ts`` (or ``ts_event``) as integer nanoseconds since the epoch,
an Arrow timestamp of any unit, or text (digits or ISO-8601 with offset); ``security`` as text
(dictionary encoded or not); ``price`` as a number (or text); optionally ``volume``, null for a
tick without one. Other columns are not read. Rows are screened and skipped as in
``TickFileReader``; a skipped row is reported as ``FILE:ROW: reason: detail``, rows numbered
from 1 in file order.

Memory stays bounded whatever the file size: Parquet is read ``batch_rows`` rows at a time
(one row group's column chunks at most), an Arrow file is memory mapped and sliced.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import pyarrow as pa
import pyarrow.ipc as pa_ipc
import pyarrow.parquet as pq

from engine.core.errors import InputFileError
from engine.core.file_formats import columnar_format
from engine.kernel.columns import TickColumns
from engine.refdata.universe import Universe
from producers.chunked_file import ProgressCallback
from producers.reject_log import RejectLog
from producers.tick_arrays import ArrowTickConverter
from producers.tick_stats import ReadStats
from producers.tickfile import REQUIRED_COLUMNS, VOLUME_COLUMN

BATCH_ROWS = 65_536
"""Rows per batch read (Parquet) or sliced (Arrow): the batch of in-memory replays; the
engine's working set per batch (levels, orderings) is what bounds a replay's memory."""

_TS_ALIASES = ("ts", "ts_event")
_FORMAT_NAMES = {"parquet": "a Parquet", "arrow": "an Arrow IPC", "arrows": "an Arrow IPC stream"}


class ColumnarTickReader:
    """Iterates a Parquet or Arrow IPC tick file as ``TickColumns`` batches.

    Parameters
    ----------
    path : str or Path
        ``.parquet``, ``.arrow``/``.feather`` (IPC file) or ``.arrows`` (IPC stream).
    universe : Universe
        Resolves security codes (unknown codes are skipped and counted in ``stats``).
    batch_rows : int
        Rows per batch.
    progress : callable, optional
        Called as ``progress(rows_done, rows_total)`` after each batch (total 0 when unknown:
        Arrow IPC).
    strict : bool
        The first row that cannot be used raises ``InputFileError`` (default: skip it).
    rejects : text stream, optional
        Receives a ``FILE:ROW: reason: detail`` line per skipped row.

    Raises
    ------
    InputFileError
        When the file cannot be opened, is not of its format or lacks a column.
    """

    def __init__(
        self,
        path: str | Path,
        universe: Universe,
        *,
        batch_rows: int = BATCH_ROWS,
        progress: ProgressCallback | None = None,
        strict: bool = False,
        rejects: TextIO | None = None,
    ) -> None:
        self.path = Path(path)
        fmt = columnar_format(path)
        if fmt is None:
            raise InputFileError(str(path), None, "not a .parquet, .arrow or .arrows file")
        self.format = fmt
        self.universe = universe
        self.batch_rows = batch_rows
        self.progress = progress
        self.rejects = RejectLog(str(path), strict=strict, sink=rejects)
        self.stats = ReadStats(log=self.rejects)
        self._convert = ArrowTickConverter(universe, self.stats)
        schema, self.total_rows = self._open_schema()
        self.columns = _tick_columns(str(path), schema)

    def __iter__(self) -> Iterator[TickColumns]:
        row = 1
        try:
            for batch in self._batches():
                ts, security, price, *volume = (batch.column(name) for name in self.columns)
                ticks = self._convert.convert(
                    ts, security, price, volume[0] if volume else None, row
                )
                row += batch.num_rows
                if self.progress is not None:
                    self.progress(row - 1, self.total_rows)
                if len(ticks):
                    yield ticks
        except (pa.ArrowInvalid, OSError) as exc:
            raise InputFileError(str(self.path), None, f"read failed (row {row}): {exc}") from None

    def _open_schema(self) -> tuple[pa.Schema, int]:
        """The file's schema and row count (0: unknown), or ``InputFileError``."""
        if not self.path.is_file():
            problem = "is a directory" if self.path.is_dir() else "no such file"
            raise InputFileError(str(self.path), None, f"cannot open: {problem}")
        try:
            if self.format == "parquet":
                meta = pq.ParquetFile(self.path)
                return meta.schema_arrow, int(meta.metadata.num_rows)
            with pa.memory_map(str(self.path)) as source:
                # Counting an IPC file's rows would decompress it: no total.
                if self.format == "arrow":
                    return pa_ipc.open_file(source).schema, 0
                return pa_ipc.open_stream(source).schema, 0
        except (pa.ArrowInvalid, OSError) as exc:
            raise InputFileError(
                str(self.path), None, f"not {_FORMAT_NAMES[self.format]} file: {exc}"
            ) from None

    def _batches(self) -> Iterator[pa.RecordBatch]:
        if self.format == "parquet":
            # Pre-buffered column chunks stay allocated until the file is closed: RSS grew
            # with the file (160 MB over 20M ticks). A 1 MB read buffer keeps it flat.
            parquet = pq.ParquetFile(
                self.path,
                read_dictionary=[self.columns[1]],
                pre_buffer=False,
                buffer_size=1 << 20,
            )
            yield from parquet.iter_batches(batch_size=self.batch_rows, columns=self.columns)
            return
        with pa.memory_map(str(self.path)) as source:
            if self.format == "arrow":
                reader = pa_ipc.open_file(source)
                parts = (reader.get_batch(i) for i in range(reader.num_record_batches))
            else:
                parts = iter(pa_ipc.open_stream(source))
            for part in parts:
                wanted = part.select(self.columns)
                for start in range(0, wanted.num_rows, self.batch_rows):
                    yield wanted.slice(start, self.batch_rows)


def _tick_columns(path: str, schema: pa.Schema) -> list[str]:
    """The columns to read: ts (or ts_event), security, price and volume when there."""
    names = schema.names
    ts = next((name for name in _TS_ALIASES if name in names), None)
    missing = [name for name in REQUIRED_COLUMNS[1:] if name not in names]
    if ts is None or missing:
        lacks = ",".join(([] if ts else ["ts"]) + missing)
        raise InputFileError(path, None, f"lacks {lacks} (has {','.join(names) or 'nothing'})")
    kind = schema.field(ts).type
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    if not (
        pa.types.is_integer(kind)
        or pa.types.is_timestamp(kind)
        or pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
    ):
        raise InputFileError(
            path, None, f"{ts} is {kind}: expected integer nanoseconds, a timestamp or text"
        )
    return [ts, *REQUIRED_COLUMNS[1:], *([VOLUME_COLUMN] if VOLUME_COLUMN in names else [])]
