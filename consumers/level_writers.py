"""``open_level_writer``: the writer of a level file by its name.

Parquet and Arrow IPC files are written by ``consumers.columnar_levels``, imported (with pyarrow)
only when such a file is opened: CSV and JSON Lines level files do not need it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from consumers.levelfile import LevelFileWriter
from engine.core.file_formats import columnar_format
from engine.refdata.universe import Universe

if TYPE_CHECKING:
    from consumers.columnar_levels import ColumnarLevelWriter

__all__ = ["open_level_writer"]


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
        from consumers.columnar_levels import ColumnarLevelWriter  # noqa: PLC0415

        return ColumnarLevelWriter(
            path, universe, index_codes=index_codes, security_codes=security_codes
        )
    return LevelFileWriter(path, universe, index_codes=index_codes, security_codes=security_codes)
