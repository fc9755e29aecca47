"""Readers for the opening composition files index providers publish.

Indices file, header ``index,name,prev_close_level,weight_cap`` (empty cap = uncapped), with
optional columns ``return_type`` (price, gross or net), ``underlying`` (the price index a total
return index follows; it has no composition rows of its own) and ``withholding_rate`` (net).
Composition file, header ``index,security,issued_shares,faf,cap_factor,prev_close``, one row per
(index, constituent). ``cap_factor`` on an uncapped index defaults to 1. On a capped index it is
empty on every row (computed from the weight cap at previous closing prices) or given on every
row (factors carried between reviews, as an end-of-day roll writes them).
Every problem is reported as a ``ReferenceDataError`` naming file and line, among them: a row
with more cells than the header or fewer than the required columns, invalid UTF-8, numbers that
are not finite or out of bounds (prices and ``prev_close_level`` in (0, 1e12], shares in
(0, 1e15], FAF, cap factor and weight cap in (0, 1]).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.core.bounds import MAX_LEVEL, MAX_PRICE, MAX_SHARES
from engine.core.errors import CappingError, ReferenceDataError
from engine.refdata.composition_columns import (
    COMPOSITION_HEADER,
    CompositionTable,
    composition_table,
    numbered_codes,
    read_composition_columns,
)
from engine.refdata.reference_text import read_reference_text, reference_rows
from engine.refdata.universe import IndexSpec, Universe, build_universe

__all__ = [
    "COMPOSITION_HEADER",
    "INDICES_HEADER",
    "header_rows",
    "load_universe",
    "positive_number",
]

INDICES_HEADER = ("index", "name", "prev_close_level", "weight_cap")


def load_universe(indices_path: str | Path, composition_path: str | Path) -> Universe:
    """Read and validate an indices file and a composition file.

    Parameters
    ----------
    indices_path, composition_path : str or Path
        CSV files in the formats described in this module.

    Returns
    -------
    Universe

    Raises
    ------
    ReferenceDataError
        Naming the file, the line and the problem.
    """
    specs, spec_lines = _read_indices(Path(indices_path))
    path = Path(composition_path)
    table = read_composition_columns(path, specs) or _read_composition(path, specs)
    membership = table.membership
    members_per_index = np.bincount(membership.index, minlength=len(specs))
    derived = np.array([spec.underlying is not None for spec in specs])
    for index_id in np.flatnonzero((members_per_index == 0) & ~derived):
        code = specs[index_id].code
        raise ReferenceDataError(
            str(indices_path), spec_lines[code], f"index {code} has no constituents"
        )
    try:
        return build_universe(specs, table.securities, table.prev_close, membership)
    except CappingError as exc:
        line = spec_lines.get(exc.index_code or "")
        raise ReferenceDataError(str(indices_path), line, f"weight_cap: {exc}") from exc


@dataclass(frozen=True)
class _CompositionRow:
    index: str
    security: str
    issued_shares: float
    faf: float
    cap_factor: float
    prev_close: float
    line: int


def header_rows(path: Path, header: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    """Rows of a reference CSV file as ``(line, {column: text})``, its header checked first."""
    rows = reference_rows(path, read_reference_text(path))
    first = next(rows, None)
    if first is None:
        raise ReferenceDataError(str(path), None, "empty file, expected a header row")
    found = tuple(column.strip() for column in first[1])
    if found[: len(header)] != header:
        got = ",".join(found)
        got = got if len(got) <= 200 else got[:200] + "..."
        raise ReferenceDataError(
            str(path), first[0], f"header must start with {','.join(header)}, got {got}"
        )
    for line, values in rows:
        if not any(value.strip() for value in values):
            continue
        if not len(header) <= len(values) <= len(found):
            expected = (
                f"{len(found)}" if len(found) == len(header) else f"{len(header)} to {len(found)}"
            )
            raise ReferenceDataError(
                str(path), line, f"expected {expected} columns, got {len(values)}"
            )
        yield line, {name: value.strip() for name, value in zip(found, values, strict=False)}


def _number(path: Path, line: int, column: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        shown = repr(text) if len(text) <= 40 else repr(text[:40]) + "..."
        raise ReferenceDataError(str(path), line, f"{column} is not a number: {shown}") from None
    if not math.isfinite(value):
        raise ReferenceDataError(str(path), line, f"{column} must be finite, got {text!r}")
    return value


def positive_number(path: Path, line: int, column: str, text: str, upper: float) -> float:
    """A number in (0, upper]."""
    value = _number(path, line, column, text)
    if not 0 < value <= upper:
        raise ReferenceDataError(
            str(path), line, f"{column} must be in (0, {upper:g}], got {value!r}"
        )
    return value


def _read_indices(path: Path) -> tuple[list[IndexSpec], dict[str, int]]:
    specs: list[IndexSpec] = []
    lines: dict[str, int] = {}
    for line, row in header_rows(path, INDICES_HEADER):
        code = row["index"]
        if not code:
            raise ReferenceDataError(str(path), line, "index code is empty")
        if code in lines:
            raise ReferenceDataError(
                str(path), line, f"duplicate index {code} (first on line {lines[code]})"
            )
        level = positive_number(path, line, "prev_close_level", row["prev_close_level"], MAX_LEVEL)
        cap: float | None = None
        if row["weight_cap"]:
            cap = positive_number(path, line, "weight_cap", row["weight_cap"], 1.0)
        lines[code] = line
        specs.append(
            IndexSpec(
                code=code,
                name=row["name"],
                prev_close_level=level,
                weight_cap=cap,
                **_return_columns(path, line, row),
            )
        )
    if not specs:
        raise ReferenceDataError(str(path), None, "no indices defined")
    price_indices = {spec.code for spec in specs if spec.return_type == "price"}
    for spec in specs:
        if spec.underlying is not None and spec.underlying not in price_indices:
            raise ReferenceDataError(
                str(path),
                lines[spec.code],
                f"underlying {spec.underlying!r} of {spec.code} is not a price index in this file",
            )
    return specs, lines


def _return_columns(path: Path, line: int, row: dict[str, str]) -> dict[str, Any]:
    """The optional total return columns of an indices row."""
    return_type = row.get("return_type") or "price"
    underlying = row.get("underlying") or None
    if return_type not in ("price", "gross", "net"):
        raise ReferenceDataError(
            str(path), line, f"return_type must be price, gross or net, got {return_type!r}"
        )
    if (return_type == "price") != (underlying is None):
        raise ReferenceDataError(
            str(path), line, "a gross or net index needs an underlying, a price index has none"
        )
    withholding = 0.0
    if row.get("withholding_rate"):
        withholding = _number(path, line, "withholding_rate", row["withholding_rate"])
        if not 0.0 <= withholding < 1.0:
            raise ReferenceDataError(
                str(path), line, f"withholding_rate must be in [0, 1), got {withholding}"
            )
    return {"return_type": return_type, "underlying": underlying, "withholding_rate": withholding}


def _read_composition(path: Path, specs: list[IndexSpec]) -> CompositionTable:
    """The file read row by row: slower than by columns, but it names the first bad line."""
    by_code = {spec.code: spec for spec in specs}
    seen: dict[tuple[str, str], int] = {}
    price_seen: dict[str, tuple[float, int]] = {}
    rows: list[_CompositionRow] = []
    for line, row in header_rows(path, COMPOSITION_HEADER):
        code, security = row["index"], row["security"]
        spec = by_code.get(code)
        if spec is None:
            raise ReferenceDataError(str(path), line, f"unknown index {code!r}")
        if spec.underlying is not None:
            raise ReferenceDataError(
                str(path),
                line,
                f"{code} is a {spec.return_type} total return index of {spec.underlying}: "
                "it takes its constituents from there and has no rows of its own",
            )
        if not security:
            raise ReferenceDataError(str(path), line, "security code is empty")
        if (code, security) in seen:
            raise ReferenceDataError(
                str(path),
                line,
                f"duplicate row for {code}/{security} (first on line {seen[code, security]})",
            )
        seen[code, security] = line
        shares = positive_number(path, line, "issued_shares", row["issued_shares"], MAX_SHARES)
        faf = positive_number(path, line, "faf", row["faf"], 1.0)
        price = positive_number(path, line, "prev_close", row["prev_close"], MAX_PRICE)
        if security in price_seen and price_seen[security][0] != price:
            earlier, earlier_line = price_seen[security]
            raise ReferenceDataError(
                str(path),
                line,
                f"conflicting prev_close for {security}: {price} here, "
                f"{earlier} on line {earlier_line}",
            )
        price_seen.setdefault(security, (price, line))
        rows.append(
            _CompositionRow(
                index=code,
                security=security,
                issued_shares=shares,
                faf=faf,
                cap_factor=_cap_factor(path, line, spec, row["cap_factor"]),
                prev_close=price,
                line=line,
            )
        )
    if not rows:
        raise ReferenceDataError(str(path), None, "no constituents defined")
    _check_carried_cap_factors(path, specs, rows)
    index_ids = {spec.code: i for i, spec in enumerate(specs)}
    securities, security_ids = numbered_codes([r.security for r in rows])
    return composition_table(
        index=np.array([index_ids[r.index] for r in rows], dtype=np.int32),
        securities=securities,
        security=security_ids,
        issued_shares=np.array([r.issued_shares for r in rows], dtype=np.float64),
        faf=np.array([r.faf for r in rows], dtype=np.float64),
        cap_factor=np.array([r.cap_factor for r in rows], dtype=np.float64),
        prev_close=np.array([r.prev_close for r in rows], dtype=np.float64),
    )


def _check_carried_cap_factors(
    path: Path, specs: list[IndexSpec], rows: list[_CompositionRow]
) -> None:
    """On a capped index, cap factors are given on every row or on none (one pass over rows)."""
    first_computed: dict[str, bool] = {}
    odd: dict[str, _CompositionRow] = {}
    for row in rows:
        computed = math.isnan(row.cap_factor)
        if first_computed.setdefault(row.index, computed) != computed:
            odd.setdefault(row.index, row)
    for spec in specs:  # the first index in file order with an odd row is reported
        if spec.weight_cap is not None and spec.code in odd:
            raise ReferenceDataError(
                str(path),
                odd[spec.code].line,
                f"cap_factor must be given on every row of {spec.code} or on none "
                f"(it has a weight_cap of {spec.weight_cap})",
            )


def _cap_factor(path: Path, line: int, spec: IndexSpec, text: str) -> float:
    if not text:
        return math.nan if spec.weight_cap is not None else 1.0
    return positive_number(path, line, "cap_factor", text, 1.0)
