"""File formats from file names: the text formats (CSV, JSON Lines) and the columnar ones.

Columnar: ``.parquet`` (Apache Parquet), ``.arrow`` and ``.feather`` (the Arrow IPC file
format, Feather V2), ``.arrows`` (the Arrow IPC stream format). Text files may end in ``.gz`` or
``.zst``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

ColumnarFormat = Literal["parquet", "arrow", "arrows"]

_COLUMNAR: dict[str, ColumnarFormat] = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".arrow": "arrow",
    ".feather": "arrow",
    ".ipc": "arrow",
    ".arrows": "arrows",
}
COLUMNAR_SUFFIXES = tuple(_COLUMNAR)


def columnar_format(path: str | Path) -> ColumnarFormat | None:
    """The columnar format of ``path`` from its suffix, None for any other file."""
    return _COLUMNAR.get(Path(str(path)).suffix.lower())
