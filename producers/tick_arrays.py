"""Tick columns from Arrow arrays: the columns of a CSV block, a Parquet or an Arrow batch.

The same screening and reject reports as ``TickFileReader`` on the same cells, vectorised:
codes are looked up in the universe with one hash lookup per batch (``pyarrow.compute``; a
dictionary column only looks up its dictionary), numbers convert in Arrow. Only cells Arrow
cannot convert the way Python does (say ``" 1.5"`` or an ISO timestamp) fall back to the
Python conversion of ``TickFileReader``, for their batch and column only.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, overload

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from engine.core.timestamps import BAD_TIMESTAMP, parse_timestamps
from engine.kernel.columns import TickColumns
from engine.kernel.screening import RejectReason, screen_ticks
from engine.refdata.universe import Universe
from producers.chunked_file import parse_floats
from producers.tick_stats import ReadStats

_INT64_MAX = np.iinfo(np.int64).max
_NS_PER_UNIT = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}


class ArrowCells(Sequence[object]):
    """The cells of an Arrow array as Python values, converted only when read (a reject's
    detail), with ``overrides`` by position."""

    def __init__(self, array: pa.Array, overrides: Mapping[int, object] | None = None) -> None:
        self.array = array
        self.overrides = overrides or {}

    def __len__(self) -> int:
        return len(self.array)

    @overload
    def __getitem__(self, position: int) -> object: ...

    @overload
    def __getitem__(self, position: slice) -> Sequence[object]: ...

    def __getitem__(self, position: int | slice) -> object | Sequence[object]:
        if isinstance(position, slice):
            return [self[i] for i in range(*position.indices(len(self)))]
        if position in self.overrides:
            return self.overrides[position]
        value: object = self.array[position].as_py()
        return value

    def __iter__(self) -> Iterator[object]:
        return (self[i] for i in range(len(self)))


class ArrowTickConverter:
    """Turns Arrow columns into screened ``TickColumns``, counting and reporting rejects in
    ``stats`` as ``TickFileReader`` does.

    Parameters
    ----------
    universe : Universe
        Resolves security codes.
    stats : ReadStats
        Rows read and skipped; its log reports every skipped row.
    """

    def __init__(self, universe: Universe, stats: ReadStats) -> None:
        self.universe = universe
        self.stats = stats
        self._codes = pa.array(universe.securities, type=pa.string())

    def convert(
        self,
        ts: pa.Array,
        security: pa.Array,
        price: pa.Array,
        volume: pa.Array | None,
        first_row: int,
    ) -> TickColumns:
        """The usable rows of one batch; rows are numbered from ``first_row`` in reports and in
        the batch's ``origin`` (for the engine's own rejects)."""
        self.stats.rows += len(ts)
        stamps = timestamps(ts)
        ids, stripped = self._security_ids(security)
        prices = floats(price)
        reasons = screen_ticks(self.universe.n_securities, ids, prices)
        reasons[stamps < 0] = RejectReason.BAD_TIMESTAMP
        volumes, blank = volume_cells(volume)
        rows = np.arange(first_row, first_row + len(ts), dtype=np.int64)
        ticks = TickColumns(stamps, ids, prices, volume=volumes, origin=rows)
        if reasons.any():
            unknown = np.flatnonzero(reasons == RejectReason.UNKNOWN_SECURITY).tolist()
            codes = ArrowCells(security, stripped)
            self.stats.unknown_codes.update(str(codes[position]) for position in unknown)
            self.stats.note_chunk(
                reasons,
                rows.tolist(),
                [],
                undecodable=RejectReason.UNDECODABLE,
                shown={
                    RejectReason.BAD_TIMESTAMP: ArrowCells(_shown_times(ts)),
                    RejectReason.UNKNOWN_SECURITY: codes,
                },
                others=ArrowCells(price),
            )
            accepted = reasons == RejectReason.ACCEPTED
            ticks = ticks.take(accepted)
            blank = None if blank is None else blank[accepted]
        return self.stats.screen_volumes(ticks, blank)

    def _security_ids(self, codes: pa.Array) -> tuple[NDArray[np.int64], dict[int, object]]:
        """Id per code (-1: unknown) and the stripped text of the codes not found as given.

        Codes not found as they are get Python's ``str.strip`` and a second look (the few
        unknown ones: a CSV cell may be padded).
        """
        if pa.types.is_dictionary(codes.type):
            found = pc.index_in(codes.dictionary.cast(pa.string()), value_set=self._codes)
            by_entry = _filled(found, -1).astype(np.int64)
            indices = _filled(codes.indices.cast(pa.int64()), -1)
            ids = np.where(indices >= 0, by_entry[np.maximum(indices, 0)], -1)
        else:
            found = pc.index_in(codes.cast(pa.string()), value_set=self._codes)
            ids = _filled(found, -1).astype(np.int64)
        stripped: dict[int, object] = {}
        missing = np.flatnonzero(ids < 0)
        if len(missing):
            values = codes.take(pa.array(missing)).to_pylist()
            texts = [None if value is None else str(value).strip() for value in values]
            again = self.universe.security_ids([text or "" for text in texts])
            for position, text, found_id in zip(
                missing.tolist(), texts, again.tolist(), strict=True
            ):
                stripped[position] = text
                if text is not None:
                    ids[position] = found_id
        return ids, stripped


def _shown_times(ts: pa.Array) -> pa.Array:
    """Times as a reject shows them: Arrow timestamps as their integer count (Python's
    ``datetime`` has no nanoseconds)."""
    plain = _plain(ts)
    return plain.cast(pa.int64()) if pa.types.is_timestamp(plain.type) else ts


def _filled(array: pa.Array, value: int | float) -> NDArray[Any]:
    """``array`` as numpy with nulls replaced by ``value``."""
    if array.null_count:
        array = pc.fill_null(array, value)
    return np.asarray(array.to_numpy(zero_copy_only=False))


def _plain(array: pa.Array) -> pa.Array:
    """A dictionary array decoded (other arrays as they are)."""
    if pa.types.is_dictionary(array.type):
        return array.cast(array.type.value_type)
    return array


def timestamps(ts: pa.Array) -> NDArray[np.int64]:
    """Nanoseconds since the epoch per cell, ``BAD_TIMESTAMP`` where there is none.

    Integers are nanoseconds, timestamps any unit (beyond int64 nanoseconds is bad), text
    digits or ISO-8601 as ``parse_timestamps`` reads it.
    """
    ts = _plain(ts)
    kind = ts.type
    if pa.types.is_timestamp(kind):
        raw = _filled(ts.cast(pa.int64()), 0).astype(np.int64)
        factor = _NS_PER_UNIT[kind.unit]
        out = raw * factor
        out[np.abs(raw) > _INT64_MAX // factor] = BAD_TIMESTAMP
        out[_nulls(ts)] = BAD_TIMESTAMP
        return out
    if pa.types.is_integer(kind) or pa.types.is_string(kind) or pa.types.is_large_string(kind):
        digits = pa.types.is_integer(kind) or pc.all(pc.ascii_is_decimal(ts)).as_py() is not False
        if digits:
            try:
                return _filled(ts.cast(pa.int64()), BAD_TIMESTAMP).astype(np.int64)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                pass  # beyond int64: Python says which
    values = ts.to_pylist()
    return parse_timestamps(["" if value is None else value for value in values])


def _nulls(array: pa.Array) -> NDArray[np.bool_]:
    if not array.null_count:
        return np.zeros(len(array), dtype=bool)
    return np.asarray(array.is_null().to_numpy(zero_copy_only=False), dtype=bool)


def floats(values: pa.Array) -> NDArray[np.float64]:
    """Float per cell, NaN where there is none or text that is not a number (as
    ``parse_floats``)."""
    values = _plain(values)
    try:
        return _filled(values.cast(pa.float64()), np.nan).astype(np.float64, copy=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        cells = values.to_pylist()
        return parse_floats(["" if cell is None else str(cell) for cell in cells])


def volume_cells(
    volume: pa.Array | None,
) -> tuple[NDArray[np.float64] | None, NDArray[np.bool_] | None]:
    """Volumes (NaN: none or unusable text) and where a cell is blank; (None, None) when the
    batch has no volume at all.

    Text cells are stripped: blank is no volume, as in ``TickFileReader``.
    """
    if volume is None:
        return None, None
    volume = _plain(volume)
    if pa.types.is_string(volume.type) or pa.types.is_large_string(volume.type):
        blank = np.asarray(pc.equal(volume, "").to_numpy(zero_copy_only=False), dtype=bool)
        blank |= _nulls(volume)
        if blank.all():
            return None, None
        try:
            numbers = pc.if_else(pa.array(blank), pa.scalar(None, volume.type), volume)
            return floats_strict(numbers), blank
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            cells = [("" if cell is None else cell).strip() for cell in volume.to_pylist()]
            if cells.count("") == len(cells):
                return None, None
            return parse_floats(cells), np.array(cells) == ""
    blank = _nulls(volume)
    if blank.all():
        return None, None
    return floats(volume), blank


def floats_strict(values: pa.Array) -> NDArray[np.float64]:
    """Float per cell (NaN for nulls); raises ``ArrowInvalid`` on text that is not a number."""
    return _filled(values.cast(pa.float64()), np.nan).astype(np.float64, copy=False)
