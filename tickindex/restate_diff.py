"""One index's levels in two runs compared: matching rows by tick, first and largest difference."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from tickindex.levels import Levels

__all__ = ["IndexDiff", "LevelPoint", "compare_index", "match_rows", "split_by_index"]


@dataclass(frozen=True)
class LevelPoint:
    """One matched row: the tick that moved the index and its level in both runs.

    Attributes
    ----------
    ts_event : int
        Event time of the tick, ns since the epoch.
    seq : int
        The published (reference) run's sequence number of the level.
    security : str
        The tick's security.
    published, corrected : float
        The level in each run.
    """

    ts_event: int
    seq: int
    security: str
    published: float
    corrected: float

    @property
    def abs_diff(self) -> float:
        """``|corrected - published|``."""
        return abs(self.corrected - self.published)

    @property
    def rel_diff(self) -> float:
        """``|corrected - published| / |published|``."""
        return self.abs_diff / abs(self.published)


@dataclass(frozen=True)
class IndexDiff:
    """How one index's levels differ between the published (reference) and corrected runs.

    Attributes
    ----------
    index : str
        Index code.
    published_rows, corrected_rows, matched : int
        Rows of each run, and rows matched by tick (the rest are in one run only).
    differing : int
        Matched rows differing by more than the tolerance.
    first : LevelPoint or None
        The first matched row (in tick order) differing beyond the tolerance; None: none.
    max_abs, max_rel : LevelPoint or None
        The matched rows with the largest absolute and relative difference (None: no match).
    divisor_before, divisor_after : float
        The index's divisor at the end of the published run and of the corrected one.
    close_published, close_corrected : float
        The last level of the index in each run (NaN: no level in that run).
    """

    index: str
    published_rows: int
    corrected_rows: int
    matched: int
    differing: int
    first: LevelPoint | None
    max_abs: LevelPoint | None
    max_rel: LevelPoint | None
    divisor_before: float
    divisor_after: float
    close_published: float
    close_corrected: float


def split_by_index(levels: Levels) -> dict[str, Levels]:
    """Each index's rows, in tick order (one sort of integer ids for all indices, not a pass
    per index), by index code."""
    found, ids = factorize(levels.index)
    order = np.argsort(ids, kind="stable")
    ends = np.cumsum(np.bincount(ids, minlength=found.size)).tolist()
    starts = [0, *ends[:-1]][: len(ends)]
    return {
        code: _rows(levels, order[start:end], code)
        for code, start, end in zip(found.tolist(), starts, ends, strict=True)
    }


def factorize(values: NDArray[np.str_]) -> tuple[NDArray[np.str_], NDArray[np.intp]]:
    """The distinct values, sorted, and the position of each value among them: what
    ``np.unique(values, return_inverse=True)`` gives, by hashing instead of sorting strings
    (8.6M codes: 1 s, not 10 s)."""
    if not values.size:
        return np.empty(0, np.str_), np.empty(0, np.intp)
    import pyarrow as pa  # noqa: PLC0415  (restate's parser, like every command's, loads none)
    import pyarrow.compute as pc  # noqa: PLC0415

    strings = pa.array(values, type=pa.string())
    if isinstance(strings, pa.ChunkedArray):  # pyarrow converts a large array in chunks
        strings = strings.combine_chunks()
    encoded = pc.dictionary_encode(strings)
    found = np.array(encoded.dictionary.to_pylist(), dtype=np.str_)
    rank = np.argsort(found, kind="stable")
    position = np.empty(found.size, np.intp)
    position[rank] = np.arange(found.size)
    return found[rank], position[encoded.indices.to_numpy()]


def _rows(levels: Levels, rows: NDArray[np.intp], code: str) -> Levels:
    """``rows`` of ``levels``, all of index ``code`` (a read-only view repeats it)."""
    return Levels(
        levels.ts_event[rows],
        np.broadcast_to(np.array(code, dtype=levels.index.dtype), rows.shape),
        levels.level[rows],
        levels.seq[rows],
        levels.security[rows],
    )


def empty_levels() -> Levels:
    """No rows."""
    no_ints, no_codes = np.empty(0, np.int64), np.empty(0, np.str_)
    return Levels(no_ints, no_codes, np.empty(0, np.float64), no_ints, no_codes)


def match_rows(
    a_ts: NDArray[np.int64],
    a_security: NDArray[np.str_],
    b_ts: NDArray[np.int64],
    b_security: NDArray[np.str_],
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Positions of the rows of ``a`` and ``b`` (one index each, tick order) moved by the same
    tick: the same event time, security and occurrence of that pair; in ``a``'s order.

    Returns
    -------
    tuple of ndarray
        Positions in ``a`` and the matching positions in ``b``.
    """
    if np.array_equal(a_ts, b_ts) and np.array_equal(a_security, b_security):
        same = np.arange(a_ts.size, dtype=np.intp)
        return same, same
    n_a = a_ts.size
    ts = np.concatenate([a_ts, b_ts])
    _, security = factorize(np.concatenate([a_security, b_security]))
    side = np.repeat(np.array([0, 1], dtype=np.int8), [n_a, b_ts.size])
    position = np.arange(ts.size)
    # Occurrence of each (ts, security) within its run: rank within the group of equal keys.
    order = np.lexsort((position, security, ts, side))
    starts = np.ones(ts.size, dtype=bool)
    starts[1:] = (
        (np.diff(side[order]) != 0) | (np.diff(ts[order]) != 0) | (np.diff(security[order]) != 0)
    )
    group_start = np.maximum.accumulate(np.where(starts, position, 0))
    occurrence = np.empty(ts.size, dtype=np.int64)
    occurrence[order] = position - group_start
    # A key occurs at most once per run: equal neighbours in key order are a match (a, then b).
    order = np.lexsort((side, occurrence, security, ts))
    key_ts, key_security, key_occurrence = ts[order], security[order], occurrence[order]
    pair = (
        (key_ts[1:] == key_ts[:-1])
        & (key_security[1:] == key_security[:-1])
        & (key_occurrence[1:] == key_occurrence[:-1])
    )
    a_rows = order[:-1][pair]
    b_rows = order[1:][pair] - n_a
    in_a_order = np.argsort(a_rows, kind="stable")
    return a_rows[in_a_order].astype(np.intp), b_rows[in_a_order].astype(np.intp)


def compare_index(
    code: str,
    published: Levels,
    corrected: Levels,
    *,
    divisor_before: float,
    divisor_after: float,
    tolerance: float,
) -> IndexDiff:
    """Compare one index's rows of two runs (``Levels.of(code)`` of each).

    Two levels differ when ``|corrected - published| > tolerance x |published|``.
    """
    a, b = match_rows(
        published.ts_event, published.security, corrected.ts_event, corrected.security
    )
    old, new = published.level[a], corrected.level[b]
    abs_diff = np.abs(new - old)
    rel_diff = abs_diff / np.abs(old)  # published levels are positive (the engine's)
    beyond = np.flatnonzero(abs_diff > tolerance * np.abs(old))

    def point(row: int) -> LevelPoint:
        return LevelPoint(
            int(published.ts_event[a[row]]),
            int(published.seq[a[row]]),
            str(published.security[a[row]]),
            float(old[row]),
            float(new[row]),
        )

    matched = int(a.size)
    return IndexDiff(
        index=code,
        published_rows=len(published),
        corrected_rows=len(corrected),
        matched=matched,
        differing=int(beyond.size),
        first=point(int(beyond[0])) if beyond.size else None,
        max_abs=point(int(np.argmax(abs_diff))) if matched else None,
        max_rel=point(int(np.argmax(rel_diff))) if matched else None,
        divisor_before=divisor_before,
        divisor_after=divisor_after,
        close_published=float(published.level[-1]) if len(published) else float("nan"),
        close_corrected=float(corrected.level[-1]) if len(corrected) else float("nan"),
    )
