"""Loading the reference data of an index family: the ``Universe`` every entry point starts from."""

from __future__ import annotations

from os import PathLike

from engine.refdata.builtin import load_universe_or_builtin
from engine.refdata.universe import Universe

__all__ = ["Universe", "load_universe"]


def load_universe(
    indices: str | PathLike[str] | None = None, composition: str | PathLike[str] | None = None
) -> Universe:
    """The indices, their constituents and divisors, from files or built in.

    Parameters
    ----------
    indices : str or path-like, optional
        Indices CSV file (``index,name,prev_close_level,weight_cap``, README "Reference data
        formats").
    composition : str or path-like, optional
        Composition CSV file (``index,security,issued_shares,faf,cap_factor,prev_close``).
        Give both files, or neither for the built-in Hang Seng family (HSI, HSCEI, HSTECH, the
        HSCI size segments, the HSI sub-indices; approximate figures).

    Returns
    -------
    Universe
        The reference data; its ``index_codes`` and ``securities`` are the codes the API takes.

    Raises
    ------
    ValueError
        When only one of the two files is given.
    ReferenceDataError
        When a file is unusable, as ``FILE:LINE: problem``.
    """
    return load_universe_or_builtin(indices, composition)
