"""A composition file read column by column: O(rows) numpy work, no Python object per row.

``read_composition_columns`` splits a plain file (no quotes) with ``str.split``, a chunk of
rows at a time, and any other CSV with the C ``csv`` reader; it turns each column into numpy
arrays and validates them all at once (ranges, duplicates, conflicting prices, carried cap
factors). It never reports a problem itself: on anything it does not accept it
returns None, and the caller reads the file row by row, which finds the first bad line and
names it. A good file therefore loads fast, and a bad one gives exactly the row reader's error.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from engine.core.bounds import MAX_PRICE, MAX_SHARES
from engine.core.errors import ReferenceDataError
from engine.refdata.reference_text import read_reference_text
from engine.refdata.universe import IndexSpec, Membership

CHUNK_ROWS = 100_000
COMPOSITION_HEADER = ("index", "security", "issued_shares", "faf", "cap_factor", "prev_close")


@dataclass(frozen=True)
class CompositionTable:
    """The rows of a composition file, resolved to ids.

    Attributes
    ----------
    securities : list of str
        Security codes, sorted; position is the security id.
    prev_close : ndarray of float64
        Previous close per security id.
    membership : Membership
        One row per file row, in file order; NaN cap factors where a capped index computes them.
    """

    securities: list[str]
    prev_close: NDArray[np.float64]
    membership: Membership


def numbered_codes(codes: Sequence[str]) -> tuple[list[str], NDArray[np.int32]]:
    """The distinct codes, sorted, and the position of each of ``codes`` among them."""
    distinct = sorted(set(codes))
    ids = {code: k for k, code in enumerate(distinct)}
    return distinct, np.fromiter(map(ids.__getitem__, codes), dtype=np.int32, count=len(codes))


def composition_table(
    *,
    index: NDArray[np.int32],
    securities: list[str],
    security: NDArray[np.int32],
    issued_shares: NDArray[np.float64],
    faf: NDArray[np.float64],
    cap_factor: NDArray[np.float64],
    prev_close: NDArray[np.float64],
) -> CompositionTable:
    """The table of validated rows given as columns, ``security`` positions in ``securities``."""
    prices = np.empty(len(securities), dtype=np.float64)
    prices[security] = prev_close  # every row of a security carries the same price
    membership = Membership(
        index=index,
        security=security,
        issued_shares=issued_shares,
        faf=faf,
        cap_factor=cap_factor,
    )
    return CompositionTable(securities, prices, membership)


def read_composition_columns(path: Path, specs: Sequence[IndexSpec]) -> CompositionTable | None:
    """The file's rows if every one is valid, else None (the row reader names the problem)."""
    try:
        text = read_reference_text(path)
    except ReferenceDataError:
        return None
    if "\x00" in text:
        return None  # NumPy strings would drop a trailing NUL of a code
    parts = (_plain_parts(text) if _is_plain(text) else None) or _csv_parts(text)
    if parts is None:
        return None
    parsed: list[_Parsed] = []
    for columns in parts:
        part = _parsed(columns, specs)
        if part is None:
            return None
        parsed.append(part)
    return _table([np.concatenate(column) for column in zip(*parsed, strict=True)], specs)


Columns = list[list[str]]  # the first six columns of some rows, as text


def _is_plain(text: str) -> bool:
    """Rows are lines and cells are split by commas: no quotes or carriage returns."""
    return not any(mark in text for mark in ('"', "\r"))


def _has_spaces(text: str) -> bool:
    """Whether any cell may need stripping (``str.strip``: any whitespace but the newlines)."""
    return not text.isascii() or any(mark in text for mark in " \t\x0b\x0c\x1c\x1d\x1e\x1f")


def _plain_parts(text: str) -> Iterator[Columns] | None:
    """Columns of a plain file (``_is_plain``) whose rows all have the header's width, split in
    C, ``CHUNK_ROWS`` rows at a time so that only a chunk's cells are Python strings at once."""
    lines = text.split("\n")
    header = [cell.strip() for cell in lines[0].split(",")]
    if tuple(header[: len(COMPOSITION_HEADER)]) != COMPOSITION_HEADER:
        return None
    body = [line for line in lines[1:] if line]  # empty lines are skipped
    if not body or max(map(len, body)) > csv.field_size_limit():
        return None
    commas = np.fromiter(map(str.count, body, repeat(",")), dtype=np.int64, count=len(body))
    if np.any(commas != len(header) - 1):
        return None  # rows of unequal width: the general reader
    strip = _has_spaces(text)

    def parts() -> Iterator[Columns]:
        for start in range(0, len(body), CHUNK_ROWS):
            cells = ",".join(body[start : start + CHUNK_ROWS]).split(",")
            columns = [cells[j :: len(header)] for j in range(len(COMPOSITION_HEADER))]
            yield [list(map(str.strip, column)) for column in columns] if strip else columns

    return parts()


def _csv_parts(text: str) -> list[Columns] | None:
    """The columns of any CSV text, stripped, or None if a row is not acceptable."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        rows = list(reader)
    except csv.Error:
        return None
    # One line per row, else a quoted cell runs over lines (an error the row reader reports).
    if not rows or reader.line_num != len(rows):
        return None
    width = len(rows[0])
    if tuple(cell.strip() for cell in rows[0][: len(COMPOSITION_HEADER)]) != COMPOSITION_HEADER:
        return None
    body = [row for row in rows[1:] if row]  # empty lines are skipped
    if not body:
        return None
    lengths = np.fromiter(map(len, body), dtype=np.int64, count=len(body))
    if lengths.min() < len(COMPOSITION_HEADER) or lengths.max() > width:
        return None
    columns = list(zip(*body, strict=False))[: len(COMPOSITION_HEADER)]  # extra cells dropped
    return [[list(map(str.strip, column)) for column in columns]]


_Parsed = tuple[NDArray[Any], ...]  # index, security code, shares, faf, cap factor, price


def _parsed(columns: Columns, specs: Sequence[IndexSpec]) -> _Parsed | None:
    """Some rows as arrays, each value checked on its own; None at the first bad one."""
    index_codes, security_codes, shares_text, faf_text, cap_text, price_text = columns
    own_rows = {spec.code: k for k, spec in enumerate(specs) if spec.underlying is None}
    index = np.fromiter(
        map(own_rows.get, index_codes, repeat(-1)), dtype=np.int32, count=len(index_codes)
    )
    shares = _numbers(shares_text, MAX_SHARES)
    faf = _numbers(faf_text, 1.0)
    price = _numbers(price_text, MAX_PRICE)
    cap_factor = _cap_factors(cap_text, index, specs)
    if index.min() < 0 or shares is None or faf is None or price is None or cap_factor is None:
        return None  # an unknown index code, a blank row, or a value out of range
    return index, np.array(security_codes), shares, faf, cap_factor, price


def _table(columns: list[NDArray[Any]], specs: Sequence[IndexSpec]) -> CompositionTable | None:
    """The checks across rows (codes, duplicates, prices, cap factors), then the table."""
    index, codes, shares, faf, cap_factor, price = columns
    distinct, security = np.unique(codes, return_inverse=True)
    if distinct[0] == "":
        return None  # an empty security code
    # On a capped index, cap factors are given on every row or on none.
    rows = np.bincount(index, minlength=len(specs))
    computed = np.bincount(index, weights=np.isnan(cap_factor), minlength=len(specs))
    if np.any((computed > 0) & (computed < rows)):
        return None
    table = composition_table(
        index=index,
        securities=distinct.tolist(),
        security=security.astype(np.int32),
        issued_shares=shares,
        faf=faf,
        cap_factor=cap_factor,
        prev_close=price,
    )
    m = table.membership
    if _has_duplicate_pair(m.index, m.security, len(table.securities)):
        return None
    if np.any(table.prev_close[m.security] != price):
        return None  # conflicting prev_close for a security
    return table


def _numbers(texts: list[str], upper: float) -> NDArray[np.float64] | None:
    """The cells as numbers in (0, upper] (finite), or None."""
    try:
        values = np.fromiter(map(float, texts), dtype=np.float64, count=len(texts))
    except ValueError:
        return None
    return values if np.all((values > 0.0) & (values <= upper)) else None


def _cap_factors(
    texts: list[str], index: NDArray[np.int32], specs: Sequence[IndexSpec]
) -> NDArray[np.float64] | None:
    """Cap factors: given, else 1 on an uncapped index and NaN (to compute) on a capped one."""
    given = np.fromiter(map(bool, texts), dtype=np.bool_, count=len(texts))
    capped = np.array([spec.weight_cap is not None for spec in specs], dtype=np.bool_)[index]
    factors = np.where(capped, np.nan, 1.0)
    if given.any():
        values = _numbers([text for text in texts if text], 1.0)
        if values is None:
            return None
        factors[given] = values
    return factors


def _has_duplicate_pair(
    index: NDArray[np.int32], security: NDArray[np.int32], n_securities: int
) -> bool:
    pairs = np.sort(index.astype(np.int64) * n_securities + security)
    return bool(np.any(pairs[1:] == pairs[:-1]))
