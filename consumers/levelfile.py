"""Level files: CSV (``ts,index,level,seq,security``) or JSON Lines.

A level is written as the shortest decimal that reads back as the same float64 (Python's
``repr``, msgspec's JSON floats): reading the file gives the engine's levels bitwise, and no
digit is printed that the value does not need. A level that is not a round number in binary
shows as such (``37100.00000000001``): that is the level the engine computed, not noise of the
file, and a fixed number of decimals would change it.
"""

from __future__ import annotations

import gzip
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any, cast

import msgspec
import numpy as np

from consumers.closing import ClosingSink
from engine.core.errors import InputFileError, TickInputError
from engine.kernel.columns import LevelColumns
from engine.refdata.universe import Universe

CSV_HEADER = "ts,index,level,seq,security"


def open_output_file(path: str | Path, mode: str) -> IO[Any]:
    """``open(path, mode)`` for a file the command writes (``w``/``wb``, ``.gz`` compressed).

    Raises
    ------
    InputFileError
        Naming the file when it cannot be created (a directory, a missing folder, no access).
    """
    try:
        gzipped = str(path).lower().endswith(".gz")
        if gzipped and "b" in mode:
            return cast(IO[Any], gzip.open(path, mode))
        if gzipped:
            return cast(IO[Any], gzip.open(path, mode + "t", newline="", encoding="utf-8"))
        if "b" in mode:
            return open(path, mode)
        return open(path, mode, newline="", encoding="utf-8")
    except OSError as exc:
        raise InputFileError(str(path), None, f"cannot write: {exc.strerror}") from exc


class LevelRecord(msgspec.Struct, frozen=True):
    """One published level as written to a JSON Lines file."""

    ts: int
    index: str
    level: float
    seq: int
    security: str


class LevelFileWriter(ClosingSink):
    """A ``LevelSink`` writing every level it receives to a CSV or JSON Lines file.

    Levels are written with Python's shortest round-trip float repr, so reading the file back
    gives the exact same float64 values.

    Parameters
    ----------
    path : str or Path
        Output file (``.csv``, ``.jsonl``, optionally ``.gz``), or ``-`` for CSV on stdout.
    universe : Universe
        Turns index and security ids back into codes.
    index_codes, security_codes : sequence of str, optional
        Codes to use instead of the universe's (currency variants extend both).
    """

    def __init__(
        self,
        path: str | Path,
        universe: Universe,
        *,
        index_codes: Sequence[str] | None = None,
        security_codes: Sequence[str] | None = None,
    ) -> None:
        name = str(path).lower().removesuffix(".gz")
        self.format = "jsonl" if name.endswith((".jsonl", ".ndjson")) else "csv"
        if str(path) != "-" and not name.endswith((".csv", ".jsonl", ".ndjson")):
            raise TickInputError(f"{path}: unknown level file type, expected .csv or .jsonl")
        self._index_codes = np.array(index_codes or universe.index_codes, dtype=object)
        self._security_codes = np.array(security_codes or universe.securities, dtype=object)
        self._encoder = msgspec.json.Encoder()
        self._handle: IO[bytes]
        if str(path) == "-":
            self._handle = sys.stdout.buffer
            self._owned = False
        else:
            # The writer owns the file until close(); it is itself the context manager.
            self._handle = open_output_file(path, "wb")
            self._owned = True
        if self.format == "csv":
            self._handle.write(CSV_HEADER.encode() + b"\n")

    def write(self, levels: LevelColumns) -> None:
        """Append one batch of levels."""
        if len(levels) == 0:
            return
        ts = levels.ts_event.tolist()
        index = self._index_codes[levels.index].tolist()
        level = levels.level.tolist()
        seq = levels.seq.tolist()
        security = self._security_codes[levels.security].tolist()
        if self.format == "csv":
            rows = map(repr, level)
            text = "".join(
                f"{t},{i},{lv},{q},{s}\n"
                for t, i, lv, q, s in zip(ts, index, rows, seq, security, strict=True)
            )
            self._handle.write(text.encode())
        else:
            records = [
                LevelRecord(t, i, lv, q, s)
                for t, i, lv, q, s in zip(ts, index, level, seq, security, strict=True)
            ]
            self._handle.write(self._encoder.encode_lines(records))

    def close(self) -> None:
        """Flush, and close the file unless it is stdout."""
        self._handle.flush()
        if self._owned:
            self._handle.close()
