"""A universe restricted to some of its indices: every security, only those indices' rows."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from numpy.typing import NDArray

from engine.refdata.universe import Membership, Universe


def restrict_universe(universe: Universe, index_codes: Iterable[str]) -> Universe:
    """``universe`` with only the indices ``index_codes`` (kept in the universe's order).

    Every security stays, with its id and previous close, so ticks of securities outside the
    kept indices still screen and apply (they move no level). Each kept index keeps its rows
    in their order and its divisor, so its levels are bitwise those of the full universe.

    Parameters
    ----------
    universe : Universe
        The full universe.
    index_codes : iterable of str
        Indices to keep; a total return index needs its underlying among them.

    Returns
    -------
    Universe

    Raises
    ------
    KeyError
        An unknown index code.
    ValueError
        A total return index without its underlying.
    """
    keep = np.unique([universe.index_id(code) for code in index_codes]).astype(np.intp)
    specs = tuple(universe.indices[i] for i in keep.tolist())
    kept = {spec.code for spec in specs}
    orphans = [s.code for s in specs if s.underlying is not None and s.underlying not in kept]
    if orphans:
        raise ValueError(f"index {orphans[0]} needs its underlying among the kept indices")
    new_id = np.full(len(universe.indices), -1, dtype=np.int32)
    new_id[keep] = np.arange(len(keep), dtype=np.int32)
    return Universe(
        indices=specs,
        securities=universe.securities,
        prev_close=universe.prev_close.copy(),
        membership=_renumbered(universe.membership, new_id),
        divisors=universe.divisors[keep].copy(),
        declared=_renumbered(universe.declared, new_id),
    )


def _renumbered(rows: Membership, new_id: NDArray[np.int32]) -> Membership:
    """The rows of kept indices (``new_id >= 0``), order kept, with their new index ids."""
    kept = rows.take(new_id[rows.index] >= 0)
    return kept.replace(index=new_id[kept.index])
