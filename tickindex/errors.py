"""Errors of the public API, in the project's error tree (``engine.core.errors``)."""

from __future__ import annotations

from collections.abc import Iterable

from engine.core.errors import TickIndexError

__all__ = ["BadTickError", "UnknownCodeError"]

SHOWN_CODES = 5


class UnknownCodeError(TickIndexError, LookupError):
    """A security or index code the universe does not know.

    Parameters
    ----------
    kind : str
        ``"security"`` or ``"index"``.
    codes : iterable of object
        The unknown codes (each distinct one once, first seen first).

    Attributes
    ----------
    codes : tuple of object
        The distinct unknown codes, in order of first appearance.
    """

    def __init__(self, kind: str, codes: Iterable[object]) -> None:
        self.codes = tuple(dict.fromkeys(codes))
        shown = ", ".join(repr(code) for code in self.codes[:SHOWN_CODES])
        more = len(self.codes) - SHOWN_CODES
        suffix = f" and {more} more" if more > 0 else ""
        plural = "s" if len(self.codes) > 1 else ""
        super().__init__(f"unknown {kind} code{plural}: {shown}{suffix}")


class BadTickError(TickIndexError, ValueError):
    """A tick the engine cannot apply (a price that is not finite, not positive or too large)."""
