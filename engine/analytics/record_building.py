"""Analytics records from one boundary's columnar figures.

Every optional figure goes through ``finite_or_none`` (NaN, infinite or absurd: left out), so a
record never carries a non-finite number; the required ones (level, previous close, change,
adjusted previous close) are finite whenever the index has a published level, and the codec
refuses the record otherwise (``engine.analytics.records.validate_record``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from engine.analytics.constituents import TOP, ConstituentFigures
from engine.analytics.day_figure_types import DayFigures
from engine.analytics.hedge import HedgeLines
from engine.analytics.pairs import PairConfig, PairFigures
from engine.analytics.records import (
    HedgeLine,
    IndexAnalytics,
    Mover,
    PairAnalytics,
    SignalEvent,
    finite_or_none,
)
from engine.analytics.returns import Volatility
from engine.analytics.signals import SignalEvent as RuleChange


@dataclass(frozen=True)
class IndexFigures:
    """Everything known of the analysed indices at one boundary, one row per index."""

    day: DayFigures
    volatility: Volatility
    constituents: ConstituentFigures
    turnover: NDArray[np.float64] | None

    def field(self, name: str) -> NDArray[np.float64]:
        """One figure of every row by its record field name (``engine.analytics.series``)."""
        if name == "turnover":
            return self.turnover if self.turnover is not None else np.full(len(self.day), np.nan)
        if name in ("vol_session", "vol_rolling"):
            source: object = self.volatility
            name = name.removeprefix("vol_")
        elif name in ("up", "down", "unchanged", "pct_up"):
            source = self.constituents.breadth
        else:
            source = self.day
        column: NDArray[np.float64] = np.asarray(getattr(source, name), dtype=np.float64)
        return column


def index_records(
    ts: int,
    final: bool,
    index_codes: Sequence[str],
    securities: Sequence[str],
    figures: IndexFigures,
) -> list[IndexAnalytics]:
    """One ``IndexAnalytics`` per analysed index."""
    day, vol = figures.day, figures.volatility
    breadth, points = figures.constituents.breadth, figures.constituents.points
    movers = _movers_by_row(figures.constituents, securities, len(day))
    turnover = figures.turnover
    records = []
    for row, index in enumerate(day.index.tolist()):
        top, bottom = movers[row]
        records.append(
            IndexAnalytics(
                index=index_codes[index],
                ts_event=ts,
                final=final,
                level=float(day.level[row]),
                prev_close=float(day.prev_close[row]),
                change=float(day.change[row]),
                change_pct=float(day.change_pct[row]),
                open=finite_or_none(day.open[row]),
                high=finite_or_none(day.high[row]),
                low=finite_or_none(day.low[row]),
                vol_session=finite_or_none(vol.session[row]),
                vol_rolling=finite_or_none(vol.rolling[row]),
                returns_in_window=int(vol.returns_in_window[row]),
                drawdown_day=finite_or_none(day.drawdown_day[row]),
                drawdown_ref=finite_or_none(day.drawdown_ref[row]),
                ref_high=finite_or_none(day.ref_high[row]),
                up=int(breadth.up[row]),
                down=int(breadth.down[row]),
                unchanged=int(breadth.unchanged[row]),
                pct_up=finite_or_none(breadth.pct_up[row]),
                adjusted_prev_close=float(points.adjusted_prev_close[row]),
                top=top,
                bottom=bottom,
                turnover=None if turnover is None else finite_or_none(turnover[row]),
            )
        )
    return records


def _movers_by_row(
    constituents: ConstituentFigures, securities: Sequence[str], rows: int
) -> list[tuple[list[Mover], list[Mover]]]:
    """Top and bottom movers of each figures row (movers come in row, side, rank order)."""
    movers = constituents.movers
    row_of = {int(index): row for row, index in enumerate(constituents.breadth.index.tolist())}
    lists: list[tuple[list[Mover], list[Mover]]] = [([], []) for _ in range(rows)]
    for index, side, security, contribution, price, change in zip(
        movers.index.tolist(),
        movers.side.tolist(),
        movers.security.tolist(),
        movers.contribution.tolist(),
        movers.price.tolist(),
        movers.change_pct.tolist(),
        strict=True,
    ):
        mover = Mover(securities[security], contribution, price, change)
        lists[row_of[index]][0 if side == TOP else 1].append(mover)
    return lists


def pair_records(
    ts: int, figures: PairFigures, pairs: Sequence[PairConfig], index_codes: Sequence[str]
) -> list[PairAnalytics]:
    """One ``PairAnalytics`` per configured pair, with its hedge line when it has a notional."""
    hedges = figures.hedge()
    return [
        PairAnalytics(
            pair=pair.name,
            a=pair.a,
            b=pair.b,
            ts_event=ts,
            rs=finite_or_none(figures.rs[row]),
            rs_change=finite_or_none(figures.rs_change[row]),
            rs_change_day=finite_or_none(figures.rs_change_day[row]),
            beta=finite_or_none(figures.beta[row]),
            corr=finite_or_none(figures.corr[row]),
            returns_in_window=int(figures.returns_in_window[row]),
            hedge=_hedge_line(hedges, row, pair),
        )
        for row, pair in enumerate(pairs)
    ]


def _hedge_line(hedges: HedgeLines, row: int, pair: PairConfig) -> HedgeLine | None:
    if not hedges.valid[row]:
        return None
    return HedgeLine(
        hedge_index=pair.hedge_with,
        sleeve_notional=float(hedges.sleeve_notional[row]),
        hedge_notional=float(hedges.hedge_notional[row]),
        futures=int(hedges.futures[row]),
        minis=int(hedges.minis[row]),
        residual_notional=float(hedges.residual_notional[row]),
    )


def signal_records(changes: Sequence[RuleChange]) -> list[SignalEvent]:
    """The wire form of the rules that changed state."""
    return [
        SignalEvent(
            name=change.name,
            kind=change.kind,
            active=change.active,
            ts_event=change.ts_event,
            sentence=change.sentence,
            values={k: v for k, v in change.values.items() if finite_or_none(v) is not None},
        )
        for change in changes
    ]
