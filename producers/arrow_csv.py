"""CSV blocks parsed by Arrow's C++ reader, when it reads them exactly as Python's ``csv`` does.

``TickFileReader`` hands over blocks of whole lines. A block Arrow might read differently from
the line-by-line ``csv`` module (quotes, a NUL byte, invalid UTF-8, a blank line, a row with
the wrong number of cells, a line over the ``csv`` field size limit) is not parsed here: the
caller parses it the Python way, which reports each bad row with its line.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

_NEWLINE = ord("\n")


class ArrowCsvBlocks:
    """Parses blocks of a CSV file whose header is ``header`` into text columns.

    Parameters
    ----------
    header : sequence of str
        The file's column names (stripped), in file order.
    columns : sequence of str
        The columns wanted; ``codes`` among them is dictionary encoded.
    codes : str
        The column of security codes.
    """

    def __init__(self, header: Sequence[str], columns: Sequence[str], codes: str) -> None:
        self.header = list(header)
        self.columns = list(columns)
        self.usable = len(set(self.header)) == len(self.header)
        types = {name: pa.string() for name in columns}
        types[codes] = pa.dictionary(pa.int32(), pa.string())
        self._convert = pa_csv.ConvertOptions(
            include_columns=self.columns,
            column_types=types,
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        )

    def read(self, block: bytes, lines: int) -> pa.Table | None:
        """The wanted columns of the ``lines`` rows of ``block``, or None when the block must be
        read line by line with Python's ``csv`` to get the same cells and rejects."""
        if not self.usable or b"\x00" in block:
            return None
        if not block.isascii():
            try:
                block.decode("utf-8")
            except UnicodeDecodeError:
                return None
        invalid: list[object] = []

        def skip(row: object) -> str:
            invalid.append(row)
            return "skip"

        try:
            table = pa_csv.read_csv(
                io.BytesIO(block),
                read_options=pa_csv.ReadOptions(
                    column_names=self.header, use_threads=False, block_size=len(block) + 1
                ),
                parse_options=pa_csv.ParseOptions(invalid_row_handler=skip),
                convert_options=self._convert,
            )
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return None
        if invalid or table.num_rows != lines or _cell_over_limit(block, table, lines):
            return None
        return table


def _cell_over_limit(block: bytes, table: pa.Table, lines: int) -> bool:
    """Whether a cell may be longer than ``csv.field_size_limit()`` (Python's reader rejects
    it): checked on the wanted columns, and on whole lines when other columns are long."""
    limit = csv.field_size_limit()
    wanted = 0
    for column in table.columns:
        values = column.combine_chunks()
        if pa.types.is_dictionary(values.type):
            lengths = np.asarray(pc.binary_length(values.dictionary).to_numpy(), dtype=np.int64)
            lengths = lengths[np.asarray(values.indices.to_numpy(), dtype=np.int64)]
        else:
            lengths = np.asarray(pc.binary_length(values).to_numpy(), dtype=np.int64)
        if len(lengths) and int(lengths.max()) > limit:
            return True
        wanted += int(lengths.sum())
    # Bytes not in a wanted cell: separators, line ends and the other columns.
    others = len(block) - wanted - lines * len(table.columns)
    if others <= limit:
        return False
    ends = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == _NEWLINE)
    starts = np.concatenate(([0], ends[:-1] + 1)) if len(ends) else np.array([0])
    stops = ends if len(ends) else np.array([len(block)])
    return bool(np.max(stops - starts) > limit)
