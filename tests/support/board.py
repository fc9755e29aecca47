"""Helpers of the board tests: a movable monotonic clock and a small three-index universe."""

from __future__ import annotations

from engine.refdata.universe import Universe
from tests.support.scalar_reference import RefIndex, RefRow
from tests.support.universes import universe_from_rows


class FakeClock:
    """A monotonic clock (seconds) the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def small_universe(closes: dict[str, float]) -> Universe:
    """One index per code at its previous close, each of the same two securities."""
    indices = [RefIndex(code, close) for code, close in closes.items()]
    rows = [RefRow(code, security, 1e6, 1.0, None, 10.0) for code in closes for security in "AB"]
    return universe_from_rows(indices, rows)
