"""``replay_batches``: a replay's levels as a stream of Arrow record batches, in bounded memory.

The replay runs in a thread of its own and hands its levels over a bounded queue: when the
reader of the batches falls behind, the replay waits (at most ``queue_batches`` batches are
held), so a tick file larger than memory replays into, say, a Parquet writer or a running
aggregate. Stopping early (leaving the loop) stops the replay.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from os import PathLike, fspath

import numpy as np
import pyarrow as pa

from engine.kernel.columns import LevelColumns
from engine.pipeline.chain import LevelSink
from tickindex.arrow_tables import LEVEL_SCHEMA, time_array
from tickindex.reference_data import load_universe
from tickindex.replay_api import Ticks, tick_opener
from tickindex.replaying import ReplaySettings, run_replay

__all__ = ["LEVEL_SCHEMA", "replay_batches"]


class _ReaderLeftError(Exception):
    """The reader of the batches left: the replay ends here."""


_END = object()


class _BatchSink:
    """A ``LevelSink`` turning the engine's levels into record batches of ``rows`` rows (the
    last one shorter) and putting them on ``out`` (waiting while it is full)."""

    def __init__(
        self,
        index_codes: Sequence[str],
        security_codes: Sequence[str],
        rows: int,
        out: queue.Queue[object],
        stop: threading.Event,
    ) -> None:
        self._index_codes = pa.array(list(index_codes), type=pa.string())
        self._security_codes = pa.array(list(security_codes), type=pa.string())
        self._rows = rows
        self._out = out
        self._stop = stop
        self._held: list[LevelColumns] = []
        self._held_rows = 0

    def write(self, levels: LevelColumns) -> None:
        if not len(levels):
            return
        self._held.append(levels)
        self._held_rows += len(levels)
        if self._held_rows < self._rows:
            return
        columns = LevelColumns.concat(self._held)
        whole = len(columns) - len(columns) % self._rows
        for start in range(0, whole, self._rows):
            self._put(columns.take(slice(start, start + self._rows)))
        rest = columns.take(slice(whole, None))
        self._held, self._held_rows = ([rest], len(rest)) if len(rest) else ([], 0)

    def flush(self) -> None:
        """Hand on what is held (at the replay's end)."""
        if self._held:
            self._put(LevelColumns.concat(self._held))
            self._held, self._held_rows = [], 0

    def _put(self, columns: LevelColumns) -> None:
        batch = pa.record_batch(
            [
                time_array(columns.ts_event),
                pa.DictionaryArray.from_arrays(
                    pa.array(columns.index.astype(np.int32)), self._index_codes
                ),
                pa.array(columns.level),
                pa.array(columns.seq),
                pa.DictionaryArray.from_arrays(
                    pa.array(columns.security.astype(np.int32)), self._security_codes
                ),
            ],
            schema=LEVEL_SCHEMA,
        )
        while True:
            if self._stop.is_set():
                raise _ReaderLeftError
            try:
                self._out.put(batch, timeout=0.1)
                return
            except queue.Full:
                continue


def replay_batches(
    ticks: Ticks,
    *,
    indices: str | PathLike[str] | None = None,
    composition: str | PathLike[str] | None = None,
    events: str | PathLike[str] | None = None,
    conflate_ms: int | None = None,
    batch_rows: int = 65_536,
    queue_batches: int = 4,
) -> Iterator[pa.RecordBatch]:
    """The levels of ``tickindex.replay`` as Arrow record batches, streamed.

    Parameters
    ----------
    ticks : path, TickBatch or iterable of (int, str, float) or Tick
        As ``tickindex.replay`` takes them; a tick file (CSV, JSON Lines, Parquet, Arrow) is
        read batch by batch, so it may be larger than memory.
    indices, composition, events, conflate_ms
        As ``tickindex.replay``.
    batch_rows : int
        Levels per batch (the last one fewer).
    queue_batches : int
        Most batches waiting for the reader; the replay pauses while that many wait.

    Yields
    ------
    pyarrow.RecordBatch
        Levels in tick order, columns ``LEVEL_SCHEMA``: the same rows as ``replay(...).levels``.

    Raises
    ------
    TickIndexError
        As ``tickindex.replay`` (raised from the loop, where the replay failed).
    """
    if batch_rows < 1 or queue_batches < 1:
        raise ValueError("batch_rows and queue_batches must be at least 1")
    universe = load_universe(indices, composition)
    settings = ReplaySettings(
        events=None if events is None else fspath(events), conflate_ms=conflate_ms
    )
    out: queue.Queue[object] = queue.Queue(maxsize=queue_batches)
    stop = threading.Event()

    def open_levels(
        index_codes: Sequence[str], security_codes: Sequence[str]
    ) -> AbstractContextManager[LevelSink]:
        sinks.append(_BatchSink(index_codes, security_codes, batch_rows, out, stop))
        return nullcontext(sinks[-1])

    sinks: list[_BatchSink] = []

    def run() -> None:
        try:
            run_replay(universe, tick_opener(ticks), open_levels, settings)
            sinks[-1].flush()
            ended: object = _END
        except _ReaderLeftError:
            return
        except BaseException as exc:  # handed to the reader, raised there
            ended = exc
        while not stop.is_set():
            try:
                out.put(ended, timeout=0.1)
                return
            except queue.Full:
                continue

    worker = threading.Thread(target=run, name="tickindex-replay", daemon=True)
    worker.start()
    try:
        while True:
            item = out.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, pa.RecordBatch)
            yield item
    finally:
        stop.set()
        worker.join()
