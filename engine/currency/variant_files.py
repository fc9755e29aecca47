"""Currency variant files: CSV ``index,base_index,currency,fx_pair,prev_close_level,fx_prev_close``.

For example ``HSI_USD,HSI,USD,HKDUSD,3315.3,0.1285``; problems stop with ``file:line: problem``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from engine.core.bounds import MAX_FX_RATE, MAX_LEVEL
from engine.core.errors import ReferenceDataError
from engine.currency.translator import CurrencyVariant, normalise_pair
from engine.refdata.reference_files import header_rows, positive_number

VARIANTS_HEADER = (
    *("index", "base_index", "currency", "fx_pair"),
    *("prev_close_level", "fx_prev_close"),
)


def load_variants(
    path: str | Path, index_codes: Sequence[str] | None = None
) -> list[CurrencyVariant]:
    """Read a variants file (CSV, header ``VARIANTS_HEADER``, extra columns after it ignored).

    Parameters
    ----------
    path : str or Path
        The CSV file.
    index_codes : sequence of str, optional
        The universe's index codes, to check ``base_index`` and code clashes line by line.

    Returns
    -------
    list of CurrencyVariant

    Raises
    ------
    ReferenceDataError
        Naming file, line and problem (duplicate or clashing code, unknown base index,
        non-positive close, a pair not quoting the variant currency, ...).
    """
    where = Path(path)
    known = set(index_codes or ())
    seen: dict[str, int] = {}
    out = []
    for line, row in header_rows(where, VARIANTS_HEADER):
        code, base, currency = row["index"], row["base_index"], row["currency"].upper()
        pair = normalise_pair(row["fx_pair"])
        problem = None
        if not (code and base and currency and pair):
            problem = "index, base_index, currency and fx_pair must not be empty"
        elif code in seen:
            problem = f"duplicate index {code} (first on line {seen[code]})"
        elif code in known:
            problem = f"index {code} is already an index of the universe"
        elif index_codes is not None and base not in known:
            problem = f"unknown base_index {base}"
        elif not pair.endswith(currency):
            problem = f"fx_pair {pair} must quote {currency} per unit of the index currency"
        if problem is not None:
            raise ReferenceDataError(str(where), line, problem)
        seen[code] = line
        level = positive_number(where, line, "prev_close_level", row["prev_close_level"], MAX_LEVEL)
        rate = positive_number(where, line, "fx_prev_close", row["fx_prev_close"], MAX_FX_RATE)
        out.append(CurrencyVariant(code, base, currency, pair, level, rate))
    return out
