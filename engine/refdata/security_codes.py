"""Security codes by id, shared by a universe and the universes grown from it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from engine.core.growth import appended


class SecurityCodes:
    """An append-only register of security codes, their ids and reference prices.

    A universe sees the first ``n`` entries, its own securities; one grown from it by
    ``Universe.with_securities`` appends to the same register in amortised O(k) for k codes
    and sees more. Entries are never changed or removed, so the older universe stays valid.
    Growing an older universe again (the register has moved past it) branches off a copy.

    Parameters
    ----------
    codes : sequence of str
        Codes of securities ``0 .. len(codes) - 1``.
    prev_close : ndarray of float64
        Reference price per code; copied before the first append, never written.
    """

    def __init__(self, codes: Sequence[str], prev_close: NDArray[np.float64]) -> None:
        self.codes = list(codes)
        self.ids = {code: k for k, code in enumerate(self.codes)}
        self._prev_close = prev_close

    @property
    def size(self) -> int:
        """Codes registered so far (by every universe sharing this register)."""
        return len(self.codes)

    def prefix(self, size: int) -> SecurityCodes:
        """A new register holding the first ``size`` entries of this one (copied)."""
        return SecurityCodes(self.codes[:size], self._prev_close[:size].copy())

    def append(self, codes: Sequence[str]) -> NDArray[np.float64]:
        """Register new ``codes`` (unknown, distinct) with no price.

        Returns
        -------
        ndarray of float64
            Read-only reference price per id, NaN for the new codes (a view: O(1)).
        """
        start = len(self.codes)
        self.codes.extend(codes)
        self.ids.update(zip(codes, range(start, start + len(codes)), strict=True))
        self._prev_close = appended(self._prev_close, len(codes), np.nan)
        view = self._prev_close.view()
        view.flags.writeable = False
        return view
