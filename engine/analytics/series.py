"""The named series signal rules read, taken from one boundary's figures.

Names: ``<INDEX>.<field>`` for a field of ``INDEX_FIELDS`` of an index with figures,
``<PAIR>.<field>`` for a field of ``engine.analytics.pairs.PAIR_FIELDS``,
``<SECURITY>.turnover_ratio`` and ``*.turnover_ratio`` (the watched securities together): today's
turnover so far over the average day's, scaled to the trading time elapsed. A value that cannot
be computed is NaN, and a condition on NaN does not hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from engine.analytics.errors import AnalyticsConfigError
from engine.analytics.pairs import PAIR_FIELDS, PairFigures
from engine.analytics.record_building import IndexFigures

INDEX_FIELDS = (
    "level", "prev_close", "change", "change_pct", "open", "high", "low",
    "drawdown_day", "drawdown_ref", "vol_session", "vol_rolling",
    "up", "down", "unchanged", "pct_up", "turnover",
)  # fmt: skip
TURNOVER_RATIO = "turnover_ratio"
WATCHED = "*"


@dataclass(frozen=True)
class _IndexSeries:
    name: str
    row: int  # in the figures' rows
    field: str


@dataclass(frozen=True)
class _RatioSeries:
    name: str
    security: int  # -1: the watched securities together


class SignalSeries:
    """Resolves series names once; ``values`` reads them at each boundary.

    Parameters
    ----------
    names : sequence of str
        The series the rules read (``RuleSet.series``).
    index_codes : sequence of str
        Index code per index id.
    index_ids : ndarray of intp
        Ids of the indices with figures, in the figures' row order.
    securities : sequence of str
        Security code per security id.
    pair_names : sequence of str
        The configured pairs.

    Raises
    ------
    AnalyticsConfigError
        When a name resolves to nothing (an unknown index, pair, security or field).
    """

    def __init__(
        self,
        names: Sequence[str],
        index_codes: Sequence[str],
        index_ids: NDArray[np.intp],
        securities: Sequence[str],
        pair_names: Sequence[str],
    ) -> None:
        row_of = {index_codes[i]: row for row, i in enumerate(index_ids.tolist())}
        security_of = {code: i for i, code in enumerate(securities)}
        self._index: list[_IndexSeries] = []
        self._ratios: list[_RatioSeries] = []
        self._pairs: list[str] = []
        for name in names:
            owner, _, field = name.rpartition(".")
            if field == TURNOVER_RATIO and (owner == WATCHED or owner in security_of):
                self._ratios.append(
                    _RatioSeries(name, -1 if owner == WATCHED else security_of[owner])
                )
            elif owner in row_of and field in INDEX_FIELDS:
                self._index.append(_IndexSeries(name, row_of[owner], field))
            elif owner in pair_names and field in PAIR_FIELDS:
                self._pairs.append(name)
            else:
                raise AnalyticsConfigError(
                    f"signal series {name!r}: no such index (with analytics), pair, security "
                    "or field"
                )

    @property
    def turnover(self) -> bool:
        """Whether any series is a turnover ratio."""
        return bool(self._ratios)

    def values(
        self,
        figures: IndexFigures,
        pairs: PairFigures,
        ratios: tuple[NDArray[np.float64], float] | None,
    ) -> dict[str, float]:
        """Every series' value at this boundary (NaN where it cannot be computed)."""
        values = {s.name: float(figures.field(s.field)[s.row]) for s in self._index}
        if self._pairs:
            of_pairs = pairs.series()
            values.update({name: of_pairs[name] for name in self._pairs})
        if ratios is not None:
            by_security, together = ratios
            for ratio in self._ratios:
                security = ratio.security
                values[ratio.name] = together if security < 0 else float(by_security[security])
        return values
