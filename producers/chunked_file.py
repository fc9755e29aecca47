"""Reading a CSV or JSON Lines file (optionally gzipped) in chunks of lines, with progress."""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable, Iterator, Sized
from pathlib import Path
from typing import IO, Generic, TypeVar, cast

import msgspec

from engine.errors import TickInputError

ProgressCallback = Callable[[int, int], None]

BatchT = TypeVar("BatchT", bound=Sized)
RecordT = TypeVar("RecordT")


def file_format(path: str | Path, what: str) -> str:
    """``csv`` or ``jsonl`` from the file name (a ``.gz`` suffix is allowed)."""
    name = str(path).lower().removesuffix(".gz")
    if name.endswith(".csv"):
        return "csv"
    if name.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    raise TickInputError(
        f"{path}: unknown {what} file type, expected .csv or .jsonl (optionally .gz)"
    )


class ChunkedFileReader(Generic[BatchT]):
    """Iterates a file as batches parsed from chunks of about ``chunk_bytes`` of lines.

    Subclasses parse: ``_csv`` and ``_jsonl`` turn the open binary handle into batches, using
    ``_lines`` for numbered chunks. Empty batches are not yielded; ``progress(done, total)`` is
    called after each batch with bytes of the (possibly compressed) file read so far.
    """

    what = "input"

    def __init__(
        self,
        path: str | Path,
        *,
        chunk_bytes: int = 4 << 20,
        progress: ProgressCallback | None = None,
    ) -> None:
        self.path = Path(path)
        self.format = file_format(path, self.what)
        self.chunk_bytes = chunk_bytes
        self.progress = progress
        try:
            self.size = os.path.getsize(self.path)
        except OSError as exc:
            raise TickInputError(f"{path}: cannot open: {exc.strerror}") from exc

    def __iter__(self) -> Iterator[BatchT]:
        with self.path.open("rb") as raw:
            handle = (
                cast(IO[bytes], gzip.GzipFile(fileobj=raw)) if self.path.suffix == ".gz" else raw
            )
            chunks = self._csv(handle) if self.format == "csv" else self._jsonl(handle)
            for batch in chunks:
                if self.progress is not None:
                    self.progress(raw.tell(), self.size)
                if len(batch):
                    yield batch

    def _lines(self, handle: IO[bytes]) -> Iterator[tuple[int, list[bytes]]]:
        """Chunks of raw lines with the file line number of their first line."""
        first_line = 1
        while lines := handle.readlines(self.chunk_bytes):
            yield first_line, lines
            first_line += len(lines)

    def _json_records(
        self,
        handle: IO[bytes],
        record_type: type[RecordT],
        undecodable: Callable[[int, str], None],
    ) -> Iterator[tuple[list[RecordT], list[int]]]:
        """Decoded records of each chunk with their line numbers; bad lines go to ``undecodable``.

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
                yield records, [number for number, _ in numbered]
                continue
            except msgspec.DecodeError:
                pass
            records, kept = [], []
            for number, line in numbered:
                try:
                    records.append(line_decoder.decode(line))
                    kept.append(number)
                except msgspec.DecodeError as exc:
                    undecodable(number, str(exc))
            yield records, kept

    def _csv(self, handle: IO[bytes]) -> Iterator[BatchT]:
        raise NotImplementedError

    def _jsonl(self, handle: IO[bytes]) -> Iterator[BatchT]:
        raise NotImplementedError
