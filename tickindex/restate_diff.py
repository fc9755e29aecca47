"""One index's levels in two runs compared: matching rows by tick, first and largest difference."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from tickindex.coded_levels import CodedLevels

__all__ = [
    "NO_ROWS",
    "IndexDiff",
    "IndexRows",
    "LevelPoint",
    "SplitRuns",
    "compare_index",
    "match_rows",
    "split_runs",
]


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


@dataclass(frozen=True)
class IndexRows:
    """One index's rows of a run, in tick order, with each tick's security as a position in
    the table of securities of both runs compared (``SplitRuns.securities``)."""

    ts_event: NDArray[np.int64]
    level: NDArray[np.float64]
    seq: NDArray[np.int64]
    security: NDArray[np.intp]

    def __len__(self) -> int:
        return int(self.ts_event.size)


NO_ROWS = IndexRows(
    np.empty(0, np.int64), np.empty(0, np.float64), np.empty(0, np.int64), np.empty(0, np.intp)
)


@dataclass(frozen=True)
class SplitRuns:
    """Two runs' rows by index code, their securities in one table."""

    published: dict[str, IndexRows]
    corrected: dict[str, IndexRows]
    securities: NDArray[np.str_]


def split_runs(published: CodedLevels, corrected: CodedLevels) -> SplitRuns:
    """Each run's rows by index, in tick order, securities renumbered into one table for
    both runs (so rows are matched on integers)."""
    securities = np.union1d(published.security_codes, corrected.security_codes)
    return SplitRuns(_by_index(published, securities), _by_index(corrected, securities), securities)


def _by_index(levels: CodedLevels, securities: NDArray[np.str_]) -> dict[str, IndexRows]:
    """Each index's rows with securities as positions in ``securities``: one sort of
    integer ids for all indices, then a view per index with rows."""
    security = np.searchsorted(securities, levels.security_codes)[levels.security]
    order = np.argsort(levels.index, kind="stable")
    ts, level, seq = levels.ts_event[order], levels.level[order], levels.seq[order]
    by_security = security[order]
    ends = np.cumsum(np.bincount(levels.index, minlength=levels.index_codes.size)).tolist()
    starts = [0, *ends][:-1]
    return {
        code: IndexRows(ts[start:end], level[start:end], seq[start:end], by_security[start:end])
        for code, start, end in zip(levels.index_codes.tolist(), starts, ends, strict=True)
        if end > start
    }


def match_rows(
    a_ts: NDArray[np.int64],
    a_security: NDArray[np.intp],
    b_ts: NDArray[np.int64],
    b_security: NDArray[np.intp],
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
    security = np.concatenate([a_security, b_security])
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
    published: IndexRows,
    corrected: IndexRows,
    securities: NDArray[np.str_],
    *,
    divisor_before: float,
    divisor_after: float,
    tolerance: float,
) -> IndexDiff:
    """Compare one index's rows of two runs (``split_runs``; ``securities`` their table).

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
            str(securities[published.security[a[row]]]),
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
