"""Reading a CSV or JSON Lines file (optionally gzipped) in chunks of lines, with progress.

A row that cannot be read (invalid UTF-8, bad CSV quoting, a cell over the CSV field limit,
the wrong number of cells, bad JSON, JSON nested too deep) is handed to the subclass with its
line number, to be skipped and reported (``producers.reject_log``); a file that cannot be read
at all (missing, a directory, not gzip, truncated gzip, no header) raises ``InputFileError``.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import stat
import zlib
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence, Sized
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import IO, Generic, TextIO, TypeVar, cast

import msgspec
import numpy as np
from numpy.typing import NDArray

from engine.core.errors import InputFileError, TickInputError
from engine.currency.fx_ticks import FxRejectReason
from engine.kernel.screening import RejectReason
from producers.reject_log import RejectLog, short

ProgressCallback = Callable[[int, int], None]

BatchT = TypeVar("BatchT", bound=Sized)
RecordT = TypeVar("RecordT")
ReasonT = TypeVar("ReasonT", RejectReason, FxRejectReason)

BadRows = list[tuple[int, str]]
"""(line, problem) of rows that could not be read."""

_BOM = b"\xef\xbb\xbf"


@dataclass
class RowStats(Generic[ReasonT]):
    """What a reader saw: rows read and rows skipped by reason.

    ``rows`` counts every non-blank data line; ``used == rows - sum(skipped.values())``.
    """

    rows: int = 0
    skipped: Counter[ReasonT] = field(default_factory=Counter)
    log: RejectLog = field(default_factory=lambda: RejectLog("-"))

    @property
    def used(self) -> int:
        """Rows passed on."""
        return self.rows - sum(self.skipped.values())

    def note(self, reason: ReasonT, line: int, detail: str) -> None:
        """Count one skipped row and report it (raises in strict mode)."""
        self.log.note(line, reason.label, detail)
        self.skipped[reason] += 1

    def note_chunk(
        self,
        reasons: NDArray[np.uint8],
        lines: list[int],
        bad: BadRows,
        *,
        undecodable: ReasonT,
        shown: Mapping[ReasonT, Sequence[object]],
        others: Sequence[object],
    ) -> None:
        """Report a chunk's skipped rows in line order (so strict mode stops at the first).

        ``reasons`` holds a reason code per parsed row (0: used), ``bad`` the rows that could
        not be parsed (reported as ``undecodable``); the detail of a skipped row is its cell in
        ``shown[reason]``, else in ``others``.
        """
        skipped = [(number, undecodable, problem) for number, problem in bad]
        for position in np.flatnonzero(reasons).tolist():
            reason = type(undecodable)(int(reasons[position]))
            skipped.append((lines[position], reason, short(shown.get(reason, others)[position])))
        for number, reason, detail in sorted(skipped, key=lambda item: item[0]):
            self.note(reason, number, detail)


def parse_floats(values: Sequence[float | str]) -> NDArray[np.float64]:
    """Floats; text that is not a number becomes NaN (screening then rejects it)."""
    try:
        return np.array(values, dtype=np.float64)
    except (ValueError, OverflowError):
        out = np.empty(len(values), dtype=np.float64)
        for position, value in enumerate(values):
            try:
                out[position] = float(value)
            except (ValueError, OverflowError):
                out[position] = np.nan
        return out


def file_format(path: str | Path, what: str) -> str:
    """``csv`` or ``jsonl`` from the file name (a ``.gz`` or ``.zst`` suffix is allowed)."""
    name = str(path).lower().removesuffix(".gz").removesuffix(".zst")
    if name.endswith(".csv"):
        return "csv"
    if name.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    raise TickInputError(
        f"{path}: unknown {what} file type, expected .csv or .jsonl (optionally .gz or .zst)"
    )


class ChunkedFileReader(Generic[BatchT]):
    """Iterates a file as batches parsed from chunks of about ``chunk_bytes`` of lines.

    Subclasses parse: ``_csv`` and ``_jsonl`` turn the open binary handle into batches, using
    ``_csv_header``, ``_csv_rows`` and ``_json_records``. Empty batches are not yielded;
    ``progress(done, total)`` is called after each batch with bytes of the (possibly
    compressed) file read so far. Skipped rows go to ``rejects``.
    """

    what = "input"

    def __init__(
        self,
        path: str | Path,
        *,
        chunk_bytes: int = 4 << 20,
        progress: ProgressCallback | None = None,
        strict: bool = False,
        rejects: TextIO | None = None,
    ) -> None:
        self.path = Path(path)
        self.format = file_format(path, self.what)
        self.chunk_bytes = chunk_bytes
        self.progress = progress
        self.rejects = RejectLog(str(path), strict=strict, sink=rejects)
        self._line = 0
        try:
            status = os.stat(self.path)
        except OSError as exc:
            raise InputFileError(str(path), None, f"cannot open: {exc.strerror}") from exc
        if stat.S_ISDIR(status.st_mode):
            raise InputFileError(str(path), None, "cannot open: is a directory")
        self.size = status.st_size

    def __iter__(self) -> Iterator[BatchT]:
        try:
            raw = self.path.open("rb")
        except OSError as exc:
            raise InputFileError(str(self.path), None, f"cannot open: {exc.strerror}") from exc
        with raw:
            suffix = self.path.suffix.lower()
            gzipped = suffix in (".gz", ".zst")
            handle: IO[bytes] = raw
            if suffix == ".gz":
                handle = cast(IO[bytes], gzip.GzipFile(fileobj=raw))
            elif suffix == ".zst":
                handle = _zstd_reader(raw)
            chunks = self._csv(handle) if self.format == "csv" else self._jsonl(handle)
            try:
                for batch in chunks:
                    if self.progress is not None:
                        self.progress(raw.tell(), self.size)
                    if len(batch):
                        yield batch
            except EOFError:
                problem = f"gzip data ends early (truncated after line {self._line})"
                raise InputFileError(str(self.path), None, problem) from None
            except (OSError, zlib.error) as exc:
                compression = "gzip" if suffix == ".gz" else "zstd"
                what = f"not a valid {compression} file" if gzipped else "read failed"
                detail = getattr(exc, "strerror", None) or str(exc)
                raise InputFileError(
                    str(self.path), None, f"{what} (after line {self._line}): {detail}"
                ) from None

    def _lines(self, handle: IO[bytes]) -> Iterator[tuple[int, list[bytes]]]:
        """Chunks of raw lines with the file line number of their first line."""
        first_line = self._line + 1
        while lines := handle.readlines(self.chunk_bytes):
            if first_line == 1 and lines[0].startswith(_BOM):
                lines[0] = lines[0][len(_BOM) :]
            self._line = first_line + len(lines) - 1
            yield first_line, lines
            first_line += len(lines)

    def _blocks(self, handle: IO[bytes]) -> Iterator[tuple[int, bytes, int]]:
        """Chunks of whole lines as one ``bytes`` each (no object per line): the line number
        of the first, the chunk and its number of lines."""
        first_line = self._line + 1
        rest = b""
        while True:
            data = handle.read(self.chunk_bytes)
            if not data:
                if rest:
                    self._line = first_line
                    yield first_line, rest, 1
                return
            data = rest + data
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                rest = data
                continue
            block, rest = data[:cut], data[cut:]
            count = block.count(b"\n")
            self._line = first_line + count - 1
            yield first_line, block, count
            first_line += count

    def _text_lines(self, first_line: int, lines: list[bytes]) -> tuple[list[str], BadRows]:
        """The chunk's lines decoded from UTF-8 (one string per line, undecodable ones empty)
        and the undecodable ones with their numbers."""
        try:
            texts = b"".join(lines).decode("utf-8").splitlines()
            if len(texts) == len(lines):
                return texts, []
        except UnicodeDecodeError:
            pass
        # Undecodable bytes, or a character splitlines() splits on that is not "\n".
        texts, bad = [], []
        for number, line in enumerate(lines, start=first_line):
            try:
                texts.append(line.decode("utf-8").rstrip("\r\n"))
            except UnicodeDecodeError as exc:
                texts.append("")
                bad.append((number, f"invalid UTF-8 at byte {exc.start}"))
        return texts, bad

    def _csv_header(self, handle: IO[bytes], required: tuple[str, ...]) -> list[str]:
        """The header row (cells stripped); raises unless it names every ``required`` column."""
        self._line = 1
        first = handle.readline()
        try:
            cells = next(csv.reader([first.decode("utf-8-sig").rstrip("\r\n")]), [])
        except UnicodeDecodeError as exc:
            raise InputFileError(
                str(self.path), 1, f"header is not UTF-8 (byte {exc.start})"
            ) from None
        except csv.Error as exc:
            raise InputFileError(str(self.path), 1, f"header is not CSV: {exc}") from None
        header = [name.strip() for name in cells]
        missing = [name for name in required if name not in header]
        if missing:
            got = short(",".join(header)) if header else "nothing"
            raise InputFileError(
                str(self.path),
                1,
                f"header lacks {','.join(missing)} (needs {','.join(required)}, got {got})",
            )
        return header

    def _csv_columns(
        self, handle: IO[bytes], required: tuple[str, ...]
    ) -> Iterator[tuple[list[list[str]], list[int], BadRows]]:
        """Per chunk: the cells of the ``required`` columns (one list per column, in that
        order), the line number of each row and the rows that could not be read."""
        header = self._csv_header(handle, required)
        positions = [header.index(name) for name in required]
        for rows, lines, bad in self._csv_rows(handle, len(header)):
            yield [list(map(itemgetter(p), rows)) for p in positions], lines, bad

    def _csv_rows(
        self, handle: IO[bytes], width: int
    ) -> Iterator[tuple[list[list[str]], list[int], BadRows]]:
        """Per chunk: rows of ``width`` cells, their line numbers and the rows that are not.

        Each row is one line: a quoted field spanning lines is two malformed rows. Blank lines
        are left out.
        """
        for first_line, lines in self._lines(handle):
            yield self._csv_chunk(first_line, lines, width)

    def _csv_chunk(
        self, first_line: int, lines: list[bytes], width: int
    ) -> tuple[list[list[str]], list[int], BadRows]:
        """One chunk of ``_csv_rows``: its rows, their line numbers and the bad rows."""
        texts, bad = self._text_lines(first_line, lines)
        rows = _parse_chunk(texts)
        if not bad and rows is not None and set(map(len, rows)) == {width}:
            return rows, list(range(first_line, first_line + len(rows))), []
        kept_rows: list[list[str]] = []
        kept: list[int] = []
        undecodable = {number for number, _ in bad}
        for number, text in enumerate(texts, start=first_line):
            if number in undecodable:
                continue
            try:
                row = next(csv.reader([text]), [])
            except csv.Error as exc:
                bad.append((number, f"not CSV: {exc}"))
                continue
            if len(row) == width:
                kept_rows.append(row)
                kept.append(number)
            elif any(cell.strip() for cell in row):
                bad.append((number, f"expected {width} columns, got {len(row)}"))
        return kept_rows, kept, sorted(bad)

    def _json_records(
        self, handle: IO[bytes], record_type: type[RecordT]
    ) -> Iterator[tuple[list[RecordT], list[int], BadRows]]:
        """Decoded records of each chunk with their line numbers, and the lines that are not.

        A chunk decodes as one JSON array (one C call); only a chunk with a bad line falls back
        to line by line, to find it.
        """
        chunk_decoder = msgspec.json.Decoder(list[record_type])  # type: ignore[valid-type]
        line_decoder = msgspec.json.Decoder(record_type)
        for first_line, lines in self._lines(handle):
            numbered = [(first_line + i, line) for i, line in enumerate(lines) if line.strip()]
            try:
                records: list[RecordT] = chunk_decoder.decode(
                    b"[" + b",".join(line for _, line in numbered) + b"]"
                )
                if len(records) == len(numbered):
                    yield records, [number for number, _ in numbered], []
                    continue
            except (msgspec.DecodeError, RecursionError):
                pass
            records, kept, bad = [], [], []
            for number, line in numbered:
                try:
                    records.append(line_decoder.decode(line))
                    kept.append(number)
                except msgspec.DecodeError as exc:
                    bad.append((number, short(str(exc))))
                except RecursionError:
                    bad.append((number, "JSON nested too deep"))
            yield records, kept, bad

    def _csv(self, handle: IO[bytes]) -> Iterator[BatchT]:
        raise NotImplementedError

    def _jsonl(self, handle: IO[bytes]) -> Iterator[BatchT]:
        raise NotImplementedError


def _zstd_reader(raw: IO[bytes]) -> IO[bytes]:
    """``raw`` decompressed as zstd, by Arrow (imported with the first ``.zst`` file)."""
    import pyarrow as pa  # noqa: PLC0415

    stream = pa.CompressedInputStream(raw, "zstd")
    return cast(IO[bytes], io.BufferedReader(stream, buffer_size=1 << 20))


def _parse_chunk(texts: list[str]) -> list[list[str]] | None:
    """One row per line with one C reader, or None when a line is not CSV or a quoted field
    runs over a line end (then the caller parses line by line)."""
    try:
        rows = list(csv.reader(texts))
    except csv.Error:
        return None
    return rows if len(rows) == len(texts) else None
