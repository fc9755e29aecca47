"""``open_tick_file``: the reader of a tick file by its name.

Parquet and Arrow IPC files are read by ``producers.columnar_ticks``, imported (with pyarrow)
only when such a file is opened: a CSV or JSON Lines replay does not need it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from engine.core.file_formats import columnar_format
from engine.refdata.universe import Universe
from producers.chunked_file import ProgressCallback
from producers.tickfile import TickFileReader

if TYPE_CHECKING:
    from producers.columnar_ticks import ColumnarTickReader

__all__ = ["open_tick_file"]


def open_tick_file(
    path: str | Path,
    universe: Universe,
    *,
    progress: ProgressCallback | None = None,
    strict: bool = False,
    rejects: TextIO | None = None,
    chunk_bytes: int | None = None,
) -> TickFileReader | ColumnarTickReader:
    """The reader of a tick file by its name: Parquet or Arrow (``ColumnarTickReader``), else
    CSV or JSON Lines, optionally ``.gz``/``.zst`` (``TickFileReader``).

    ``progress`` gets rows of a columnar file, bytes of a text file; ``chunk_bytes`` sizes the
    batches of a text file.
    """
    if columnar_format(path) is not None:
        from producers.columnar_ticks import ColumnarTickReader  # noqa: PLC0415

        return ColumnarTickReader(path, universe, progress=progress, strict=strict, rejects=rejects)
    if chunk_bytes is None:
        return TickFileReader(path, universe, progress=progress, strict=strict, rejects=rejects)
    return TickFileReader(
        path, universe, chunk_bytes=chunk_bytes, progress=progress, strict=strict, rejects=rejects
    )
