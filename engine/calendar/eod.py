"""The end-of-day roll: tomorrow's opening reference files from today's closing state.

After the closing auction the calculator holds the closing prices, the current composition
(with every maintenance event of the day applied) and the closing divisors. The roll writes
them in the provider formats ``engine.refdata.reference_files`` reads:

- indices file: ``index,name,prev_close_level,weight_cap`` (plus ``return_type,underlying,
  withholding_rate`` when the family has a total return index), ``prev_close_level`` = today's
  closing level;
- composition file: ``index,security,issued_shares,faf,cap_factor,prev_close``, one row per
  price index constituent (a total return index takes its underlying's rows), ``prev_close`` =
  the security's closing price and ``cap_factor`` written on every row, capped indices
  included, so cap factors are carried until the next review instead of being recomputed.

Every float is written with ``repr`` (shortest round trip), so loading the files gives exactly
today's prices, shares, FAFs and cap factors, and divisors sum(P x IS x FAF x CF) / close equal
to the closing divisors up to the rounding of that sum (far below 1e-12 relative): levels
continue from the close. Files are written to a temporary name and renamed into place.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray

from engine.core.errors import TickIndexError
from engine.kernel.calculator import IndexCalculator
from engine.refdata.reference_files import COMPOSITION_HEADER, INDICES_HEADER, load_universe
from engine.refdata.universe import Membership, Universe

INDICES_FILE = "indices.csv"
COMPOSITION_FILE = "composition.csv"
RETURN_COLUMNS = ("return_type", "underlying", "withholding_rate")

CLOSING_LEVEL_RTOL = 1e-9
"""Largest relative gap allowed between given closing levels and the calculator's levels."""
DIVISOR_RTOL = 1e-12
"""Largest relative gap the verification allows between carried and reloaded divisors."""


class EodRollError(TickIndexError):
    """The written files would not reproduce today's closing state."""


def write_next_day_files(
    calculator: IndexCalculator,
    out_dir: str | Path,
    *,
    closing_levels: ArrayLike | None = None,
    verify: bool = True,
) -> tuple[Path, Path]:
    """Write the next trading day's opening indices and composition files.

    Parameters
    ----------
    calculator : IndexCalculator
        The engine state at the close (after the closing auction, before any later tick).
    out_dir : str or Path
        Folder for ``indices.csv`` and ``composition.csv`` (created if missing; existing files
        are replaced).
    closing_levels : array_like of float, optional
        Official closing level per index id, e.g. ``OhlcTracker.finish_day(day).close``.
        Default: ``calculator.levels``. They must be the levels at the calculator's prices
        (relative gap at most ``CLOSING_LEVEL_RTOL``): a published level may differ from the
        re-anchored one in the last digits, a level of another moment may not.
    verify : bool, default True
        Load the written files back and check divisors (``DIVISOR_RTOL``), prices and cap
        factors against the calculator's.

    Returns
    -------
    indices_path, composition_path : Path

    Raises
    ------
    ValueError
        When ``closing_levels`` do not fit the calculator, or an index has no constituent or
        no positive level, or a constituent has no price.
    EodRollError
        When verification fails.
    ReferenceDataError
        When verification cannot load the written files (e.g. a FAF the loader refuses).
    """
    universe = calculator.universe
    levels = _closing_levels(calculator, closing_levels)
    prices = calculator.prices
    price_index = np.array([spec.underlying is None for spec in universe.indices])
    rows = _composition_rows(universe, price_index)
    security = universe.declared.security[rows]
    priced = np.isfinite(prices[security]) & (prices[security] > 0)
    if not priced.all():
        bad = int(security[~priced][0])
        raise ValueError(f"constituent {universe.securities[bad]} has no positive price")
    empty = np.flatnonzero(
        price_index & (np.bincount(universe.declared.index, minlength=price_index.size) == 0)
    )
    if empty.size:
        raise ValueError(f"index {universe.indices[int(empty[0])].code} has no constituents")

    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    indices_path = folder / INDICES_FILE
    composition_path = folder / COMPOSITION_FILE
    _write_csv(indices_path, _indices_table(universe, levels))
    _write_csv(composition_path, _composition_table(universe, rows, prices))
    if verify:
        expected = calculator.divisors * (calculator.levels / levels)
        loaded = load_universe(indices_path, composition_path)
        _verify(loaded, universe, rows, prices, expected)
    return indices_path, composition_path


def _closing_levels(
    calculator: IndexCalculator, closing_levels: ArrayLike | None
) -> NDArray[np.float64]:
    current = calculator.levels.copy()
    if closing_levels is None:
        levels = current
    else:
        levels = np.asarray(closing_levels, dtype=np.float64)
        if levels.shape != current.shape:
            raise ValueError(f"closing_levels must have {current.size} elements")
        gap = np.abs(levels - current) > CLOSING_LEVEL_RTOL * np.abs(current)
        if np.any(gap | ~np.isfinite(levels)):
            k = int(np.flatnonzero(gap | ~np.isfinite(levels))[0])
            raise ValueError(
                f"closing level {float(levels[k])!r} of {calculator.universe.indices[k].code} "
                f"is not the level at the calculator's prices ({float(current[k])!r}): "
                "roll at the close, before later ticks"
            )
    if not np.all(levels > 0):
        k = int(np.flatnonzero(~(levels > 0))[0])
        raise ValueError(f"index {calculator.universe.indices[k].code} has no positive level")
    return levels


def _composition_rows(universe: Universe, price_index: NDArray[np.bool_]) -> NDArray[np.intp]:
    """Declared rows of price indices, ordered by index id then security code."""
    declared = universe.declared
    codes = np.array(universe.securities, dtype=object)
    rank = np.empty(len(codes), dtype=np.int64)
    rank[np.argsort(codes.astype(str), kind="stable")] = np.arange(len(codes))
    keep = np.flatnonzero(price_index[declared.index])
    order = np.lexsort((rank[declared.security[keep]], declared.index[keep]))
    return keep[order]


def _indices_table(universe: Universe, levels: NDArray[np.float64]) -> list[list[str]]:
    total_return = any(spec.underlying is not None for spec in universe.indices)
    header = [*INDICES_HEADER, *(RETURN_COLUMNS if total_return else ())]
    table = [header]
    for spec, level in zip(universe.indices, levels.tolist(), strict=True):
        row = [
            spec.code,
            spec.name,
            repr(float(level)),
            "" if spec.weight_cap is None else repr(float(spec.weight_cap)),
        ]
        if total_return:
            derived = spec.underlying is not None
            row += [
                spec.return_type,
                spec.underlying or "",
                repr(float(spec.withholding_rate)) if derived else "",
            ]
        table.append(row)
    return table


def _composition_table(
    universe: Universe, rows: NDArray[np.intp], prices: NDArray[np.float64]
) -> list[list[str]]:
    m = universe.declared
    codes = universe.index_codes
    table = [list(COMPOSITION_HEADER)]
    for index, security, shares, faf, factor in zip(
        m.index[rows].tolist(),
        m.security[rows].tolist(),
        m.issued_shares[rows].tolist(),
        m.faf[rows].tolist(),
        m.cap_factor[rows].tolist(),
        strict=True,
    ):
        table.append(
            [
                codes[index],
                universe.securities[security],
                repr(shares),
                repr(faf),
                repr(factor),
                repr(float(prices[security])),
            ]
        )
    return table


def _write_csv(path: Path, table: list[list[str]]) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    with temporary.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, lineterminator="\n").writerows(table)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def _verify(
    loaded: Universe,
    universe: Universe,
    rows: NDArray[np.intp],
    prices: NDArray[np.float64],
    expected_divisors: NDArray[np.float64],
) -> None:
    if loaded.index_codes != universe.index_codes:
        raise EodRollError("reloaded indices differ from the calculator's")
    gap = np.abs(loaded.divisors - expected_divisors) / np.abs(expected_divisors)
    if np.any(~(gap <= DIVISOR_RTOL)):
        k = int(np.flatnonzero(~(gap <= DIVISOR_RTOL))[0])
        raise EodRollError(
            f"reloaded divisor of {universe.index_codes[k]} is {float(loaded.divisors[k])!r}, "
            f"expected {float(expected_divisors[k])!r}"
        )
    ids = np.array([universe.security_id(code) for code in loaded.securities], dtype=np.intp)
    if not np.array_equal(loaded.prev_close, prices[ids]):
        raise EodRollError("reloaded closing prices differ from the calculator's")
    if _row_keys(universe, universe.declared.take(rows)) != _row_keys(loaded, loaded.declared):
        raise EodRollError("reloaded composition rows differ from the calculator's")


def _row_keys(universe: Universe, m: Membership) -> list[tuple[int, str, float, float, float]]:
    """Rows as sortable tuples (index id, security code, shares, FAF, cap factor)."""
    codes = [universe.securities[s] for s in m.security.tolist()]
    columns = (m.issued_shares.tolist(), m.faf.tolist(), m.cap_factor.tolist())
    return sorted(zip(m.index.tolist(), codes, *columns, strict=True))
