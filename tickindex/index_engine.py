"""``Engine``: the calculation core driven by security codes, returning levels by index code."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from engine.kernel.calculator import IndexCalculator
from engine.kernel.screening import RejectReason, screen_ticks
from engine.pipeline.chain import IndexPipeline
from engine.refdata.universe import Universe
from tickindex.errors import BadTickError, UnknownCodeError
from tickindex.levels import LevelCollector, Levels
from tickindex.reference_data import load_universe
from tickindex.tick_input import SecurityCodes, tick_columns

__all__ = ["MAX_CONFLATE_MS", "Engine", "conflation_ns"]

MAX_CONFLATE_MS = 366 * 86_400_000
"""Longest conflation interval: a year of event time."""


def conflation_ns(conflate_ms: int | None) -> int | None:
    """A conflation interval in milliseconds as nanoseconds (None: no conflation).

    Raises
    ------
    ValueError
        When it is not 1 to ``MAX_CONFLATE_MS`` milliseconds.
    """
    if conflate_ms is None:
        return None
    if not 0 < conflate_ms <= MAX_CONFLATE_MS:
        raise ValueError(f"must be a positive number of milliseconds, got {conflate_ms}")
    return conflate_ms * 1_000_000


class Engine:
    """Index levels after every tick, for ticks keyed by security code.

    Wraps the engine's processing chain (calculator, conflation); the integer ids it uses
    inside never show: ticks name securities by code and levels name indices by code. Prices
    start at the previous close, so levels start at the previous closing levels.

    Parameters
    ----------
    universe : Universe, optional
        The index family (``load_universe``); None: the built-in Hang Seng family.
    conflate_ms : int, optional
        At most one level per index per this many milliseconds of event time: the last one of
        each interval, released when event time moves past it (or by ``close``).

    Examples
    --------
    >>> engine = Engine()
    >>> levels = engine.apply([1_795_138_200_000_000_000], ["0700"], [630.0])
    >>> "HSI" in levels.index, levels.of("HSI").seq.tolist()
    (True, [1])
    >>> engine.level("HSI") == levels.last()["HSI"]
    True
    """

    def __init__(self, universe: Universe | None = None, *, conflate_ms: int | None = None) -> None:
        self.universe = load_universe() if universe is None else universe
        self._collector = LevelCollector(self.universe.index_codes, self.universe.securities)
        self._pipeline = IndexPipeline(
            IndexCalculator(self.universe), self._collector, conflate_ns=conflation_ns(conflate_ms)
        )

    @property
    def index_codes(self) -> tuple[str, ...]:
        """Codes of the indices this engine computes."""
        return self.universe.index_codes

    def apply(self, ts_event: ArrayLike, security: SecurityCodes, price: ArrayLike) -> Levels:
        """Apply ticks in event order and return every index level they move, in tick order.

        Parameters
        ----------
        ts_event : array_like of int
            Event time of each tick, integer nanoseconds since the epoch.
        security : sequence of str
            Security code of each tick (``"0700"``).
        price : array_like of float
            Traded price of each tick.

        Returns
        -------
        Levels
            One row per (tick, index containing its security); conflated when asked.

        Raises
        ------
        UnknownCodeError
            When a code is not in the universe; nothing is applied.
        BadTickError
            When a price is not finite, not positive or too large; nothing is applied.
        TypeError
            When times are not integers, codes not strings or prices not numbers.
        ValueError
            When the three are not 1-d and of equal length.
        """
        ticks, codes = tick_columns(self.universe, ts_event, security, price)
        unknown = ticks.security < 0
        if unknown.any():
            raise UnknownCodeError("security", codes[unknown].tolist())
        reasons = screen_ticks(self.universe.n_securities, ticks.security, ticks.price)
        if reasons.any():
            first = int(np.flatnonzero(reasons)[0])
            raise BadTickError(
                f"tick {first} ({codes[first]} at {ticks.price[first]!r}): "
                f"{RejectReason(int(reasons[first])).label}; nothing applied"
            )
        self._pipeline.process(ticks)
        return self._collector.take()

    def close(self) -> Levels:
        """End of stream: the levels still held by conflation (none without it)."""
        self._pipeline.close()
        return self._collector.take()

    def level(self, index: str) -> float:
        """The current published level of one index.

        Parameters
        ----------
        index : str
            An index code (``"HSI"``).

        Returns
        -------
        float
            Its level after the last tick applied (the previous close before any).

        Raises
        ------
        UnknownCodeError
            When the index is not in the universe.
        """
        if index not in self.universe.index_codes:
            raise UnknownCodeError("index", [index])
        published = self._pipeline.calculator.published_levels
        return float(published[self.universe.index_id(index)])

    def levels(self) -> dict[str, float]:
        """The current published level of every index, by index code."""
        published = self._pipeline.calculator.published_levels.tolist()
        return dict(zip(self.universe.index_codes, published, strict=True))
